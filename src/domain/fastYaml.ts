/** A fast path for the flat YAML agentsync renders itself: parse and render it, declining anything else. */
// The `yaml` library costs ~150 µs per small document, which dominates a sync of thousands of content files.
// These functions cover only flat maps of scalars and block lists of scalars, exactly as `yaml.stringify`
// writes them with the options of formats.ts; on anything else they return undefined and the caller uses the
// library. Both are property-tested against it (test/domain/fastYaml.test.ts): a result, when given, is
// always the library's.

export type FlatValue = string | number | boolean | null | ReadonlyArray<string> | Readonly<Record<string, never>>
export type FlatMap = Readonly<Record<string, FlatValue>>

// YAML 1.2 core schema tags other than str, as the `yaml` library tests plain scalars (schema/core, common/null).
const CORE_TAGS: ReadonlyArray<RegExp> = [
  /^(?:~|[Nn]ull|NULL)?$/,
  /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/,
  /^0o[0-7]+$/,
  /^[-+]?[0-9]+$/,
  /^0x[0-9a-fA-F]+$/,
  /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/,
  /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/,
  /^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/
]
const isCoreTag = (s: string) => CORE_TAGS.some((t) => t.test(s))

/** Characters neither path handles: controls, any whitespace but the space, lone surrogates. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to find them
const UNUSUAL = /[\x00-\x1f\x7f-\x9f]|[^\S ]|\p{Cs}/u
/** What the library will not write plain (stringifyString.js `plainString`), for a one-line value. */
const NOT_PLAIN = /^[\n\t ,[\]{}#&*!|>'"%@`]|^[?-]$|^[?-][ \t]|[\n:][ \t]|[ \t]\n|[\n\t ]#|[\n\t :]$/
/** A line the library may treat as a document marker or directive. */
const DOC_MARKER = /^(%|---|\.\.\.)/
/** Keys real front matter uses (`linkTitle`, `allowed-tools`, `redirect_from`): never a YAML indicator first. */
const KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/
/** A decimal integer the core schema reads as one, small enough to be exact as a JavaScript number. */
const INT = /^-?(?:0|[1-9][0-9]{0,14})$/

// ---------------------------------------------------------------------------------------------------------
// Parse

/** A one-line scalar, or undefined when its meaning is not plainly a string, null or boolean. */
const scalar = (s: string): string | number | boolean | null | undefined => {
  const first = s[0]
  if (first === '"') {
    if (s.length < 2 || s[s.length - 1] !== '"') return undefined
    const inner = s.slice(1, -1)
    return inner.includes('"') || inner.includes("\\") ? undefined : inner
  }
  if (first === "'") {
    if (s.length < 2 || s[s.length - 1] !== "'") return undefined
    const inner = s.slice(1, -1)
    return inner.replace(/''/g, "").includes("'") ? undefined : inner.replace(/''/g, "'")
  }
  // Plain: stricter than YAML (no leading '?', ':' or '-' at all), so that what is left means itself.
  if (s === "" || first === "?" || first === ":" || first === "-" || NOT_PLAIN.test(s) || DOC_MARKER.test(s))
    return undefined
  if (INT.test(s)) return Number(s)
  if (isCoreTag(s)) return s === "null" ? null : s === "true" ? true : s === "false" ? false : undefined
  return s
}

/**
 * Parses a flat YAML map (`key: scalar`, `key: []`, `key: {}`, `key:` followed by `  - scalar` lines), or
 * returns undefined for anything else, including everything that would be an error.
 */
export const fastParseYaml = (text: string): FlatMap | undefined => {
  if (text === "" || UNUSUAL.test(text.replace(/\n/g, ""))) return undefined
  const lines = text.split("\n")
  if (lines[lines.length - 1] === "") lines.pop()
  const out: Record<string, FlatValue> = {}
  let list: Array<string> | undefined
  for (const line of lines) {
    if (line.startsWith("  - ")) {
      if (list === undefined) return undefined
      const v = scalar(line.slice(4))
      if (typeof v !== "string") return undefined
      list.push(v)
      continue
    }
    if (list !== undefined && list.length === 0) return undefined
    list = undefined
    const colon = line.indexOf(":")
    if (colon <= 0) return undefined
    const key = line.slice(0, colon)
    if (!KEY.test(key) || isCoreTag(key) || key === "__proto__" || Object.hasOwn(out, key)) return undefined
    if (colon === line.length - 1) {
      list = []
      out[key] = list
      continue
    }
    if (line[colon + 1] !== " ") return undefined
    const rest = line.slice(colon + 2)
    if (rest === "[]") out[key] = []
    else if (rest === "{}") out[key] = {}
    else {
      const v = scalar(rest)
      if (v === undefined) return undefined
      out[key] = v
    }
  }
  if (list !== undefined && list.length === 0) return undefined
  return lines.length === 0 ? undefined : out
}

// ---------------------------------------------------------------------------------------------------------
// Render

/** A string exactly as the library writes it at a map value or list item, or undefined when unsure. */
const renderString = (s: string): string | undefined => {
  if (UNUSUAL.test(s) || DOC_MARKER.test(s)) return undefined
  if (s !== "" && !NOT_PLAIN.test(s) && !isCoreTag(s)) return s
  // Quoted (stringifyString.js `quotedString`): double quotes unless the value has '"' and no "'".
  if (s.includes("\\")) return undefined
  const dq = s.includes('"')
  if (!dq) return `"${s}"`
  return s.includes("'") ? undefined : `'${s}'`
}

/**
 * Renders a flat map byte for byte as `yaml.stringify` does with formats.ts's options, or returns undefined
 * when a value is outside the subset (the caller then uses the library).
 */
export const fastRenderYaml = (value: Readonly<Record<string, unknown>>): string | undefined => {
  let out = ""
  for (const key in value) {
    const v = value[key]
    if (!KEY.test(key) || isCoreTag(key)) return undefined
    if (v === null || v === true || v === false) out += `${key}: ${v}\n`
    else if (typeof v === "string") {
      const s = renderString(v)
      if (s === undefined) return undefined
      out += `${key}: ${s}\n`
    } else if (Array.isArray(v)) {
      if (v.length === 0) {
        out += `${key}: []\n`
        continue
      }
      out += `${key}:\n`
      const items: ReadonlyArray<unknown> = v
      for (const item of items) {
        if (typeof item !== "string") return undefined
        const s = renderString(item)
        if (s === undefined) return undefined
        out += `  - ${s}\n`
      }
    } else return undefined
  }
  return out === "" ? undefined : out
}
