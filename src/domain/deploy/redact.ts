/** The redactor: removes every known secret (and the forms it travels in) from a line of output or an error. */

export const MASK = "***"
/** What a line becomes when masking cannot make it safe (a secret rebuilt by the masks themselves). */
export const WITHHELD = "[line withheld: it contains a secret]"

export interface Redactor {
  /** The text with every occurrence of every secret masked; never contains a secret. */
  (text: string): string
  /** How many secrets it knows (their values stay inside). */
  readonly size: number
}

/** The forms a registry password takes on the way: itself, URL-encoded, and Docker's base64 `user:password`. */
export const credentialForms = (username: string, password: string): ReadonlyArray<string> => [
  password,
  encodeURIComponent(password),
  Buffer.from(`${username}:${password}`).toString("base64")
]

/**
 * A redactor over the given secrets (empty strings ignored; a multi-line secret also per line). Longer secrets
 * are masked first; masking repeats until no secret is left, and a line a mask could rebuild a secret in (a
 * secret made of `*`) is withheld whole (an empty line when the marker itself holds a secret), so the result never
 * holds a secret, whatever the secrets are.
 */
export const makeRedactor = (secrets: Iterable<string>): Redactor => {
  const all = new Set<string>()
  for (const s of secrets) {
    if (s === "") continue
    all.add(s)
    for (const part of s.split(/\r?\n/)) if (part.length >= 4) all.add(part)
  }
  const list = [...all].sort((a, b) => b.length - a.length)
  const holds = (text: string) => list.some((s) => text.includes(s))
  const redact = (text: string): string => {
    let out = text
    for (let round = 0; round < 4 && holds(out); round++) {
      for (const s of list) out = out.split(s).join(MASK)
    }
    if (!holds(out)) return out
    // The marker is text too: a secret it holds (a word of it, a space) would be shown by it, so then nothing is.
    return holds(WITHHELD) ? "" : WITHHELD
  }
  return Object.assign(redact, { size: list.length })
}

/** A redactor that knows nothing. */
export const noRedaction: Redactor = makeRedactor([])

const SAFE_ARG = /^[A-Za-z0-9_@%+=:,./-]+$/

/** An argv as one line for people: redacted, each argument quoted where a shell would need it (a mask is shown bare). */
export const showArgv = (argv: ReadonlyArray<string>, redact: Redactor = noRedaction): string =>
  argv
    .map((a) => redact(a))
    .map((a) => (a === "" || !SAFE_ARG.test(a.split(MASK).join("x")) ? `'${a.replace(/'/g, `'\\''`)}'` : a))
    .join(" ")

/** A copy of an error (or any record) with every string field redacted; its class, and so its message, kept. */
export const redactFields = <E extends object>(value: E, redact: Redactor): E => {
  const copy = Object.create(Object.getPrototypeOf(value)) as Record<string, unknown>
  for (const [key, field] of Object.entries(value)) copy[key] = typeof field === "string" ? redact(field) : field
  return copy as E
}
