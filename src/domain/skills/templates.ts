/** Layout templates and globs: `{name}`, `*` and `**` templates as RegExps over paths and filled back, and the path and unit-name globs. */

/** A template is literal text and captures: `{name}` and `*` one path segment, `**` one or more. */
export type Token = { readonly lit: string } | { readonly cap: string; readonly multi: boolean }

export const TOKEN = /\{([A-Za-z_][A-Za-z0-9_]*)\}|\*\*|\*/g

/** Anonymous captures are numbered in order of appearance; named ones keep their name. */
export const parseTemplate = (template: string): ReadonlyArray<Token> => {
  const out: Array<Token> = []
  let anonymous = 0
  let last = 0
  for (const m of template.matchAll(TOKEN)) {
    if (m.index > last) out.push({ lit: template.slice(last, m.index) })
    out.push(m[1] !== undefined ? { cap: m[1], multi: false } : { cap: `${++anonymous}`, multi: m[0] === "**" })
    last = m.index + m[0].length
  }
  if (last < template.length) out.push({ lit: template.slice(last) })
  return out
}

export const captures = (tokens: ReadonlyArray<Token>): ReadonlyArray<string> =>
  tokens.flatMap((t) => ("cap" in t ? [t.cap] : []))

export const escapeRe = (s: string) => s.replace(/[.+^${}()|[\]\\?*]/g, "\\$&")

/** A RegExp over paths whose groups are the template's captures (a repeated capture must repeat its value). */
export const templateRe = (tokens: ReadonlyArray<Token>, tail = ""): RegExp => {
  const seen = new Set<string>()
  let re = ""
  for (const t of tokens) {
    if ("lit" in t) re += escapeRe(t.lit)
    else {
      const group = `c${t.cap}`
      if (seen.has(t.cap)) re += `\\k<${group}>`
      else {
        seen.add(t.cap)
        re += `(?<${group}>${t.multi ? ".+?" : "[^/]+"})`
      }
    }
  }
  return new RegExp(`^${re}${tail}$`)
}

export const groupsOf = (m: RegExpExecArray): ReadonlyMap<string, string> => {
  const out = new Map<string, string>()
  for (const [k, v] of Object.entries(m.groups ?? {})) if (v !== undefined) out.set(k.slice(1), v)
  return out
}

export const fill = (tokens: ReadonlyArray<Token>, values: ReadonlyMap<string, string>): string =>
  tokens.map((t) => ("lit" in t ? t.lit : (values.get(t.cap) ?? ""))).join("")

/** The literal text before the first capture. */
export const literalPrefix = (tokens: ReadonlyArray<Token>): string => {
  const first = tokens[0]
  return first !== undefined && "lit" in first ? first.lit : ""
}

/**
 * A glob over repo paths: `*` within a segment, `**` across segments, `?` one character; a pattern without `/`
 * matches a file name in any folder (as in `.gitignore`).
 */
export const pathMatcher = (pattern: string): ((path: string) => boolean) => {
  const anywhere = !pattern.includes("/")
  let re = ""
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern.charAt(i)
    if (c === "*" && pattern[i + 1] === "*") {
      if (pattern[i + 2] === "/") {
        re += "(?:.*/)?"
        i += 2
      } else {
        re += ".*"
        i++
      }
    } else if (c === "*") re += "[^/]*"
    else if (c === "?") re += "[^/]"
    else re += escapeRe(c)
  }
  const compiled = new RegExp(anywhere ? `(?:^|/)${re}$` : `^${re}$`)
  return (path) => compiled.test(path)
}

export const extOf = (path: string) => /\.[^./*{}]+$/.exec(path)?.[0] ?? ""

/** A glob over unit names: `*` within a segment, `**` across segments. */
export const unitNameMatcher = (pattern: string): ((name: string) => boolean) => {
  if (!pattern.includes("*") && !pattern.includes("?")) return (name) => name === pattern
  let re = ""
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern.charAt(i)
    if (c === "*") {
      if (pattern[i + 1] === "*") {
        re += ".*"
        i++
      } else re += "[^/]*"
    } else if (c === "?") re += "[^/]"
    else re += escapeRe(c)
  }
  const compiled = new RegExp(`^${re}$`)
  return (name) => compiled.test(name)
}
