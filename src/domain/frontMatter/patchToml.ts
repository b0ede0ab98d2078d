/** TOML front matter edited in place: a changed value's own text is replaced in the style its old text had, a removed entry's lines cut, a new entry added to its table. */
import { stringify as stringifyToml } from "smol-toml"
import type { Json } from "../model.js"
import { groups } from "../text.js"
import { applyEdits, type Change, changes, type Edit } from "./changes.js"
import { isFields } from "./read.js"
import { type Fields, lineEnd } from "./split.js"

const TOML_BARE_KEY = /^[A-Za-z0-9_-]+$/
const TOML_DATE = /^\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})?)?$/
// A key as written before `=`: bare, or quoted either way (no escapes in a basic one).
const KEY_VALUE = /^[ \t]*([A-Za-z0-9_-]+|"[^"\\\n]*"|'[^'\n]*')[ \t]*=[ \t]*/

/** One `key = value` of the text: its table, its key, where its line starts, where its value is, where its last line ends. */
interface Entry {
  readonly table: string
  readonly key: string
  readonly start: number
  readonly valueStart: number
  readonly valueEnd: number
  readonly end: number
}

/** Where the closing `'''` or `"""` of a multi-line string opened at `i` ends (up to two quotes of the text before it), or -1. */
const multiLineEnd = (text: string, i: number, quote: "'" | '"'): number => {
  let k = i + 3
  while (k < text.length) {
    if (quote === '"' && text[k] === "\\") k += 2
    else if (text.startsWith(quote.repeat(3), k)) {
      let close = k + 3
      while (close < k + 5 && text[close] === quote) close++
      return close
    } else k++
  }
  return -1
}

/** Where a one-line string opened at `i` ends (after its quote), or -1 when it does not close on its line. */
const stringEnd = (text: string, i: number): number => {
  const quote = text[i]
  for (let k = i + 1; k < text.length && text[k] !== "\n"; k++) {
    if (quote === '"' && text[k] === "\\") k++
    else if (text[k] === quote) return k + 1
  }
  return -1
}

/**
 * Where the TOML value starting at `i` ends: past a string's closing quote (multi-line ones too), an array's or
 * inline table's closing bracket (over lines, strings and comments in it), else before a comment or the line's end.
 * -1 when it never ends.
 */
export const valueEnd = (text: string, i: number): number => {
  if (text.startsWith("'''", i)) return multiLineEnd(text, i, "'")
  if (text.startsWith('"""', i)) return multiLineEnd(text, i, '"')
  const c = text[i]
  if (c === "'" || c === '"') return stringEnd(text, i)
  if (c === "[" || c === "{") {
    let depth = 0
    for (let k = i; k < text.length; ) {
      const d = text[k]
      if (d === "'" || d === '"') {
        k = valueEnd(text, k)
        if (k === -1) return -1
      } else if (d === "#") k = text.indexOf("\n", k) === -1 ? text.length : text.indexOf("\n", k)
      else {
        if (d === "[" || d === "{") depth++
        else if (d === "]" || d === "}") depth--
        k++
        if (depth === 0) return k
      }
    }
    return -1
  }
  let k = i
  while (k < text.length && text[k] !== "#" && text[k] !== "\n") k++
  while (k > i && /\s/.test(text[k - 1]!)) k--
  return k
}

/** A key as written, unquoted. */
const keyOf = (written: string) => (written.startsWith('"') || written.startsWith("'") ? written.slice(1, -1) : written)

/** The entries of a TOML text and, per table, where its last entry (or its header) ends; undefined where a value never ends. */
const entriesOf = (text: string) => {
  const entries: Array<Entry> = []
  const lastEnd = new Map<string, number>()
  let firstHeader = -1
  let table = ""
  let arrayTable = false
  for (let pos = 0; pos < text.length; ) {
    const next = lineEnd(text, pos)
    const line = text.slice(pos, next)
    const header = groups(/^\[(\[?)\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$/, line.trim(), 2)
    if (header) {
      if (firstHeader === -1) firstHeader = pos
      const [bracket, name] = header
      arrayTable = bracket !== ""
      table = name
        .split(".")
        .map((s) => s.trim())
        .join(".")
      if (!lastEnd.has(table)) lastEnd.set(table, next)
      pos = next
      continue
    }
    const kv = KEY_VALUE.exec(line)
    if (kv === null) {
      pos = next
      continue
    }
    const valueStart = pos + kv[0].length
    const end = valueEnd(text, valueStart)
    if (end === -1) return undefined
    const last = lineEnd(text, end)
    entries.push({
      table: arrayTable ? "\0" : table,
      key: keyOf(kv[1]!),
      start: pos,
      valueStart,
      valueEnd: end,
      end: last
    })
    if (!arrayTable) lastEnd.set(table, last)
    pos = last
  }
  return { entries, lastEnd, firstHeader }
}

// A control character (C0, DEL, C1): a literal string holds none but a tab, a multi-line one none but a tab and a line break.
const CONTROL = /\p{Cc}/gu
const NOT_LITERAL = (s: string) => s.replace(/\t/g, "").search(CONTROL) !== -1
const NOT_MULTI_LITERAL = (s: string) => s.replace(/\r\n|[\t\n]/g, "").search(CONTROL) !== -1

/** A basic string on one line, escaped as TOML writes it. */
const basic = (s: string) => stringifyToml({ v: s }).trim().slice(4)

const keyText = (key: string) => (TOML_BARE_KEY.test(key) ? key : basic(key))

/** A multi-line basic string: line breaks kept as written, backslashes, controls and runs of quotes escaped. */
const multiBasic = (s: string, newlineFirst: boolean) => {
  const escaped = s
    .replace(/\\/g, "\\\\")
    // A tab and a line break (CRLF too, which TOML reads as the text's own) are written as they are.
    .replace(/\r\n|\p{Cc}/gu, (c) =>
      c === "\r\n" || c === "\n" || c === "\t" ? c : `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`
    )
    .replace(/"""/g, '""\\"')
    .replace(/"$/, '\\"')
  return `"""${newlineFirst || s.startsWith("\n") ? "\n" : ""}${escaped}"""`
}

/** Whether a line of `s` (its trailing blanks aside) is a fence line: written as it is, it would close the front matter. */
const holdsFence = (s: string) => s.split("\n").some((l) => ["+++", "---", "..."].includes(l.replace(/[ \t\r]+$/, "")))

/** A string in the style of the one it replaces where that style can hold it, else the next plainer one. */
const stringIn = (old: string, s: string): string => {
  if ((old.startsWith("'''") || old.startsWith('"""')) && !holdsFence(s)) {
    const newlineFirst = /^('''|""")\r?\n/.test(old)
    if (old.startsWith("'''") && !NOT_MULTI_LITERAL(s) && !s.includes("'''") && !s.endsWith("'"))
      return `'''${newlineFirst || s.startsWith("\n") ? "\n" : ""}${s}'''`
    return multiBasic(s, newlineFirst)
  }
  if (old.startsWith("'") && !NOT_LITERAL(s) && !s.includes("'")) return `'${s}'`
  return basic(s)
}

/** A value as TOML writes it on one line (undefined for a map, or where it takes more). */
const plainValue = (value: Json): string | undefined => {
  if (isFields(value)) return undefined
  const line = stringifyToml({ v: value }).trim()
  return line.startsWith("v = ") && !line.includes("\n") ? line.slice(4) : undefined
}

/** A map as an inline table (`{ a = 1 }`), its padding as the old one had it. */
const inlineTable = (old: string, value: Fields): string | undefined => {
  const pad = /^\{[ \t]/.test(old) || old === "" ? " " : ""
  const items: Array<string> = []
  for (const [k, v] of Object.entries(value)) {
    const text = isFields(v) ? inlineTable("", v) : plainValue(v)
    if (text === undefined) return undefined
    items.push(`${keyText(k)} = ${text}`)
  }
  return items.length === 0 ? "{}" : `{${pad}${items.join(", ")}${pad}}`
}

/** A list in the layout of the one it replaces: its spacing, its strings' quotes, one item a line where it had that. */
const arrayIn = (old: string, value: ReadonlyArray<Json>): string | undefined => {
  const firstString = /^\[[\s,]*(['"])/.exec(old)?.[1] ?? /["']/.exec(old)?.[0] ?? '"'
  const items: Array<string> = []
  for (const v of value) {
    const text = typeof v === "string" ? stringIn(firstString, v) : plainValue(v)
    if (text === undefined || text.includes("\n")) return plainValue(value as Json)
    items.push(text)
  }
  if (items.length === 0) return "[]"
  if (old.includes("\n")) {
    const indent = /\n([ \t]*)[^\s\]]/.exec(old)?.[1] ?? "  "
    const closing = /\n([ \t]*)\]$/.exec(old)?.[1]
    const trailing = /,\s*(?:#[^\n]*\s*)*\]$/.test(old) ? "," : ""
    const lines = items.map((t) => `${indent}${t}`).join(",\n")
    return closing === undefined ? `[\n${lines}${trailing}]` : `[\n${lines}${trailing}\n${closing}]`
  }
  const pad = /^\[[ \t]/.test(old) ? " " : ""
  const separator = /,[^ \t\n]/.test(old) && !/,[ \t]/.test(old) ? "," : ", "
  return `[${pad}${items.join(separator)}${pad}]`
}

/**
 * A value's text where `old` stood (undefined for a new entry): a string in the old string's style (literal,
 * basic, multi-line either way), a date literal where a date literal was, a list in the old list's layout;
 * with `asWritten` false, every value as TOML writes it on one line.
 */
const valueText = (value: Json, old: string | undefined, asWritten: boolean): string | undefined => {
  if (old === undefined || !asWritten) return plainValue(value)
  if (typeof value === "string") return TOML_DATE.test(old) && TOML_DATE.test(value) ? value : stringIn(old, value)
  if (Array.isArray(value) && old.startsWith("[")) return arrayIn(old, value)
  if (isFields(value) && old.startsWith("{")) return inlineTable(old, value)
  return plainValue(value)
}

/**
 * Changes of fields inside an inline table (`params = { a = 1 }`) as one change of that whole table, written again
 * where it stood: its fields have no lines of their own.
 */
const wholeInlineTables = (entries: ReadonlyArray<Entry>, list: ReadonlyArray<Change>, to: Fields) => {
  const out = new Map<string, Change>()
  for (const c of list) {
    // The shortest path of the change's that is an entry of the text; the rest of its path is inside that entry's value.
    const at = c.at.findIndex((key, i) => entries.some((e) => e.key === key && e.table === c.at.slice(0, i).join(".")))
    const value =
      at === -1 ? undefined : c.at.slice(0, at + 1).reduce<unknown>((o, k) => (isFields(o) ? o[k] : undefined), to)
    const change: Change =
      at === -1 || !isFields(value) ? c : { at: c.at.slice(0, at), key: c.at[at]!, value: value as Fields }
    out.set(JSON.stringify([...change.at, change.key]), change)
  }
  return [...out.values()]
}

/**
 * Edits TOML in place: a changed field's value text is replaced (in its old style with `asWritten`), a removed
 * entry loses its lines, a new one goes after the last entry of its table. Undefined for anything else (a
 * dotted key, an inline table's field, a table that is not there yet).
 */
export const patchTomlText = (text: string, from: Fields, to: Fields, asWritten = true): string | undefined => {
  const scanned = entriesOf(text)
  if (scanned === undefined) return undefined
  const { entries, lastEnd, firstHeader } = scanned
  const edits: Array<Edit> = []
  const added = new Map<number, Array<string>>()
  for (const c of wholeInlineTables(entries, changes(from, to), to)) {
    const { at: tablePath, key } = c
    if (tablePath.some((p) => !TOML_BARE_KEY.test(p))) return undefined
    const t = tablePath.join(".")
    const entry = entries.find((e) => e.table === t && e.key === key)
    if ("remove" in c) {
      if (entry === undefined) return undefined
      edits.push({ start: entry.start, end: entry.end, text: "" })
      continue
    }
    const old = entry === undefined ? undefined : text.slice(entry.valueStart, entry.valueEnd)
    const value = valueText(c.value, old, asWritten)
    if (value === undefined) return undefined
    if (entry !== undefined) {
      edits.push({ start: entry.valueStart, end: entry.valueEnd, text: value })
      continue
    }
    // A new top-level key goes after the last one, before the first table; a new key of a table after its last.
    const at = lastEnd.get(t) ?? (t === "" ? (firstHeader === -1 ? text.length : firstHeader) : undefined)
    if (at === undefined) return undefined
    added.set(at, [...(added.get(at) ?? []), `${keyText(key)} = ${value}\n`])
  }
  for (const [at, lines] of added) {
    const written = lines.join("")
    // After a last line without a line break, the new lines go on lines of their own and leave none after them.
    const broken = at > 0 && text[at - 1] !== "\n"
    edits.push({ start: at, end: at, text: broken ? `\n${written.slice(0, -1)}` : written })
  }
  return applyEdits(text, edits)
}
