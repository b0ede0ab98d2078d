/** How an edited YAML value is written where an old one stood: in the old one's style (quotes, block, plain, flow, indent) wherever that style can hold it. */
import { Document, isCollection, isMap, isScalar, isSeq, parseDocument, Scalar, type ToStringOptions } from "yaml"
import type { Json } from "../model.js"
import { isFields } from "./read.js"
import { YAML_OPTIONS } from "./render.js"

/**
 * The kind of value a plain scalar's text reads as where YAML 1.1 is read (Jekyll's Psych, go-yaml v2): `yes` and
 * `on` a boolean, `~` null, `1_000` a number, `2024-01-02` a date; "string" for text.
 */
const kindIn11 = (text: string): string => {
  // One letter `y` or `n` is text to Psych and go-yaml v3 alike; only the oldest readers took it for a boolean.
  if (/^[yYnN]$/.test(text)) return "string"
  const doc = parseDocument(text, { version: "1.1", logLevel: "silent" })
  if (doc.errors.length > 0) return "error"
  const v: unknown = doc.toJS()
  return v === null ? "null" : v instanceof Date ? "date" : Array.isArray(v) ? "list" : typeof v
}

/** Whether a plain scalar's text reads as a string where YAML 1.2 is read (this library, the database's value). */
const stringIn12 = (text: string) => typeof parseDocument(text, { logLevel: "silent" }).toJS() === "string"

/**
 * Whether a string may be written plain where a plain scalar stood: only when a YAML 1.1 reader reads it as text,
 * or as the same kind of value as the old text where that text was a string to YAML 1.2 (a date edited to a date
 * stays plain). A boolean or number edited to text it would read as another value (`draft: true` to "yes",
 * `w: 12` to "1_000" or "1:20") is quoted. Whether plain can hold it at all (a leading indicator, `: `, ` #`, a
 * YAML 1.2 boolean, null or number) is the `yaml` library's check, which quotes such a value itself.
 */
const plainKeepsKind = (value: string, oldText: string) => {
  const kind = kindIn11(value)
  return kind === "string" || (kind === kindIn11(oldText) && stringIn12(oldText))
}

/** The columns between a key and its block collection's first item: 0 for a list written at the key's own column. */
const childIndent = (
  old: { readonly range?: readonly [number, number, number] | null },
  text: string,
  column: number
) => {
  if (!old.range) return undefined
  const start = old.range[0]
  const own = start - (text.lastIndexOf("\n", start - 1) + 1)
  return own - column
}

/** The line and paragraph separators and NEL: line breaks to YAML 1.1, which libyaml refuses inside a scalar written raw. */
const UNICODE_BREAK = /[\u0085\u2028\u2029]/

/** Such characters escaped (`\u2028`), for a text where they stand only inside a double-quoted value. */
export const escapeUnicodeBreaks = (text: string): string =>
  text.replace(/[\u0085\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)

type Styled = { readonly node: unknown; readonly options: ToStringOptions }

/** A list or map where a collection stood: flow where it was flow (its bracket padding kept), else block at its indent. */
const collection = (old: unknown, value: Json, text: string, column: number): Styled | undefined => {
  if (!isCollection(old) || !(Array.isArray(value) ? isSeq(old) : isFields(value) && isMap(old))) return undefined
  const node = new Document().createNode(value)
  if (!isCollection(node)) return undefined
  if (old.flow) {
    node.flow = true
    const source = old.range ? text.slice(old.range[0], old.range[1]) : ""
    return { node, options: { ...YAML_OPTIONS, flowCollectionPadding: /^[[{][ \t]/.test(source) } }
  }
  const indent = childIndent(old, text, column)
  if (indent === undefined) return { node, options: YAML_OPTIONS }
  // A list at its key's own column (`tags:\n- a`, as Jekyll's sites often have it) stays there.
  if (isSeq(old)) return { node, options: { ...YAML_OPTIONS, indentSeq: indent > 0, indent: Math.max(indent, 2) } }
  return { node, options: { ...YAML_OPTIONS, indent: Math.max(indent, 1) } }
}

/**
 * A new value in the style of the one it replaces: a string quoted as it was, plain where it was plain and can be
 * (over several lines too), or a block (`|`, `>`); a folded one that was folded keeps its lines no wider than the
 * widest it had, one that was not is written unfolded. A list or map stays flow or block at its indent. The
 * library falls back to another style where this one cannot hold the text (a plain scalar that would read as a
 * map, say); anything else is rendered as YAML chooses.
 */
export const styled = (old: unknown, value: Json, text: string, column: number): Styled => {
  if (typeof value !== "string") return collection(old, value, text, column) ?? { node: value, options: YAML_OPTIONS }
  if (UNICODE_BREAK.test(value)) {
    // libyaml (Jekyll) refuses these raw: double-quoted, and escaped by `escapeUnicodeBreaks` once written.
    const node = new Scalar(value)
    node.type = Scalar.QUOTE_DOUBLE
    return { node, options: { ...YAML_OPTIONS, doubleQuotedAsJSON: true } }
  }
  if (!isScalar(old) || old.type === undefined) return { node: value, options: YAML_OPTIONS }
  const node = new Scalar(value)
  const source = old.range ? text.slice(old.range[0], old.range[1]) : ""
  if (old.type === Scalar.PLAIN) {
    node.type = plainKeepsKind(value, source) ? Scalar.PLAIN : Scalar.QUOTE_DOUBLE
    return { node, options: YAML_OPTIONS }
  }
  node.type = old.type
  const block = old.type === Scalar.BLOCK_LITERAL || old.type === Scalar.BLOCK_FOLDED
  const oldLines = source.split("\n").slice(1)
  const widest = Math.max(0, ...oldLines.map((l) => l.trimEnd().length))
  // Only a value that was folded (two content lines one after the other) shows a width; any other `>` block is
  // written on one line, as a short summary's width says nothing of how wide its lines may be.
  const wasFolded = oldLines.some((l, i) => i > 0 && l.trim() !== "" && (oldLines[i - 1] ?? "").trim() !== "")
  const lineWidth = old.type === Scalar.BLOCK_FOLDED && wasFolded && widest > column ? widest - column : 0
  // A double-quoted value on one line (a subagent's description with its `\n` escapes) stays on one line.
  const doubleQuotedAsJSON = old.type === Scalar.QUOTE_DOUBLE && oldLines.length === 0
  return { node, options: { ...YAML_OPTIONS, blockQuote: block, lineWidth, doubleQuotedAsJSON } }
}
