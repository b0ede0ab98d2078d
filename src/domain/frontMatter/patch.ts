/** Front matter edited in place (`patchFrontMatter`): only the changed fields' text is replaced, and every edit is read back, falling back to a coarser rewrite rather than a wrong one. */
import { stringify as stringifyToml } from "smol-toml"
import { isMap, isNode, isScalar, type Pair, parseDocument, Scalar, stringify } from "yaml"
import type { Json } from "../model.js"
import { editScript, linesOf } from "../patch.js"
import { groups } from "../text.js"
import { isFields, readBack } from "./read.js"
import { freshHead, renderYaml, sameJson, YAML_OPTIONS } from "./render.js"
import { type Fields, firstText, lineBreakOf, lineEnd, type SplitFile } from "./split.js"

/** One change between two maps of fields: the key, the keys of the maps it sits in, and the new value or removal. */
type Change =
  | { readonly at: ReadonlyArray<string>; readonly key: string; readonly value: Json }
  | { readonly at: ReadonlyArray<string>; readonly key: string; readonly remove: true }

/** The keys from the top down to a change's own. */
const pathOf = (c: Change): ReadonlyArray<string> => [...c.at, c.key]

/**
 * The changes from `from` to `to`, as deep as both sides are maps; lists change whole. `from` may be any map a
 * parser gave: only `to`'s values are carried.
 */
const changes = (
  from: { readonly [key: string]: unknown },
  to: Fields,
  at: ReadonlyArray<string> = []
): Array<Change> => {
  const out: Array<Change> = []
  for (const key of Object.keys(from)) if (!Object.hasOwn(to, key)) out.push({ at, key, remove: true })
  for (const [key, value] of Object.entries(to)) {
    if (!Object.hasOwn(from, key)) out.push({ at, key, value })
    else {
      const old = from[key]
      if (sameJson(old, value, true)) continue
      if (
        isFields(old) &&
        isFields(value) &&
        sameJson(
          Object.keys(old).filter((k) => Object.hasOwn(value, k)),
          Object.keys(value).filter((k) => Object.hasOwn(old, k))
        )
      ) {
        out.push(...changes(old, value, [...at, key]))
      } else out.push({ at, key, value })
    }
  }
  return out
}

/** Replaces [start, end) of `text`. */
const splice = (text: string, start: number, end: number, insert: string) =>
  text.slice(0, start) + insert + text.slice(end)

const lineStart = (text: string, pos: number) => text.lastIndexOf("\n", pos - 1) + 1

/**
 * A new string in the style of the scalar it replaces: quoted as it was, or a block (`|`, `>`); a folded one
 * that was folded keeps its lines no wider than the widest it had, one that was not is written unfolded. The library falls back to another style where this one cannot hold the
 * text (a plain scalar that would read as a map, say); anything but a string is rendered as YAML chooses.
 */
const styled = (old: unknown, value: Json, text: string, column: number) => {
  if (typeof value !== "string" || !isScalar(old) || old.type === undefined || old.type === Scalar.PLAIN)
    return { node: value, options: YAML_OPTIONS }
  const node = new Scalar(value)
  node.type = old.type
  const block = old.type === Scalar.BLOCK_LITERAL || old.type === Scalar.BLOCK_FOLDED
  const oldLines = old.range ? text.slice(old.range[0], old.range[1]).split("\n").slice(1) : []
  const widest = Math.max(0, ...oldLines.map((l) => l.trimEnd().length))
  // Only a value that was folded (two content lines one after the other) shows a width; any other `>` block is
  // written on one line, as a short summary's width says nothing of how wide its lines may be.
  const wasFolded = oldLines.some((l, i) => i > 0 && l.trim() !== "" && (oldLines[i - 1] ?? "").trim() !== "")
  const lineWidth = old.type === Scalar.BLOCK_FOLDED && wasFolded && widest > column ? widest - column : 0
  // A double-quoted value on one line (a subagent's description with its `\n` escapes) stays on one line.
  const doubleQuotedAsJSON = old.type === Scalar.QUOTE_DOUBLE && oldLines.length === 0
  return { node, options: { ...YAML_OPTIONS, blockQuote: block, lineWidth, doubleQuotedAsJSON } }
}

/** `key: value` rendered as YAML at an indent, without its final newline; a string keeps the style `old` had. */
const yamlPair = (key: string, value: Json, indent: number, old?: unknown, original = ""): string => {
  const { node, options } = styled(old, value, original, indent)
  const text = stringify({ [key]: node }, options).replace(/\n$/, "")
  const pad = " ".repeat(indent)
  return text
    .split("\n")
    .map((l, i) => (i === 0 || l === "" ? l : pad + l))
    .join("\n")
}

/** Where a pair's text ends: after its value (a block value's last newline excluded). */
const pairEnd = (text: string, pair: Pair): number => {
  const v = pair.value
  const end = isNode(v) && v.range ? v.range[1] : isNode(pair.key) && pair.key.range ? pair.key.range[1] : 0
  return text[end - 1] === "\n" ? end - 1 : end
}

/** Where a field added after `end` (the last field's value) goes: past a comment closing that line, which stays on it. */
const pastComment = (text: string, end: number): number => {
  const nl = text.indexOf("\n", end)
  const eol = nl === -1 ? text.length : text[nl - 1] === "\r" ? nl - 1 : nl
  return /^[ \t]+#[^\n]*$/.test(text.slice(end, eol)) ? eol : end
}

/**
 * Edits YAML in place: each changed field's `key: value` text is replaced, a removed field's lines are cut, a
 * new field is added after the last field of its map. Undefined where the text is not plain block maps.
 */
const patchYamlText = (text: string, from: Fields, to: Fields): string | undefined => {
  const doc = parseDocument(text, { uniqueKeys: true })
  if (doc.errors.length > 0 || (doc.contents !== null && !isMap(doc.contents))) return undefined
  // Edits run from the end of the text backwards, so earlier offsets stay valid.
  const edits: Array<{ readonly start: number; readonly end: number; readonly text: string }> = []
  for (const change of changes(from, to)) {
    const { at: parentPath, key } = change
    const parent: unknown = parentPath.length === 0 ? doc.contents : doc.getIn(parentPath, true)
    if (parent === null && parentPath.length === 0) {
      if ("remove" in change) return undefined
      edits.push({
        start: text.length,
        end: text.length,
        text: `${text === "" || text.endsWith("\n") ? "" : "\n"}${yamlPair(key, change.value, 0)}\n`
      })
      continue
    }
    if (!isMap(parent) || parent.flow) return undefined
    const pair = parent.items.find((p) => isScalar(p.key) && String(p.key.value) === key)
    if (pair === undefined) {
      if ("remove" in change) return undefined
      const last = parent.items[parent.items.length - 1]
      if (last === undefined || !isNode(last.key) || !last.key.range) return undefined
      const indent = last.key.range[0] - lineStart(text, last.key.range[0])
      const at = pastComment(text, pairEnd(text, last))
      edits.push({ start: at, end: at, text: `\n${" ".repeat(indent)}${yamlPair(key, change.value, indent)}` })
      continue
    }
    if (!isNode(pair.key) || !pair.key.range) return undefined
    const start = pair.key.range[0]
    const end = pairEnd(text, pair)
    if ("remove" in change) {
      const from = lineStart(text, start)
      const to = lineEnd(text, end === start ? end : end - 1 < start ? start : end)
      if (text.slice(from, start).trim() !== "") return undefined
      edits.push({ start: from, end: to, text: "" })
    } else {
      edits.push({ start, end, text: yamlPair(key, change.value, start - lineStart(text, start), pair.value, text) })
    }
  }
  // From the end backwards; of edits at one offset (new fields after one last field) the later one first, so that
  // each earlier one is spliced in before it and the fields read back in the order given.
  const order = edits.map((e, i) => ({ ...e, i })).sort((a, b) => b.start - a.start || b.i - a.i)
  let out = text
  let limit = Number.POSITIVE_INFINITY
  for (const e of order) {
    if (e.end > limit) return undefined // overlapping edits: let the caller rewrite instead
    out = splice(out, e.start, e.end, e.text)
    limit = e.start
  }
  return out
}

/** The same change through the library's Document API (comments and key order kept, formatting normalised). */
const patchYamlDocument = (text: string, to: Fields): string | undefined => {
  const doc = parseDocument(text, { uniqueKeys: true })
  if (doc.errors.length > 0) return undefined
  // Front matter that is not a map never reads back as fields: no edit of it can be right.
  const from: unknown = doc.toJS() ?? {}
  if (!isFields(from)) return undefined
  for (const c of changes(from, to)) {
    if ("remove" in c) doc.deleteIn(pathOf(c))
    else doc.setIn(pathOf(c), doc.createNode(c.value))
  }
  return doc.toString(YAML_OPTIONS)
}

const TOML_BARE_KEY = /^[A-Za-z0-9_-]+$/
const TOML_DATE = /^\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})?)?$/

/** A TOML value's text; a string that reads as a date stays a date where the old value was one. */
const tomlValue = (value: Json, wasDate: boolean): string | undefined => {
  if (typeof value === "string" && wasDate && TOML_DATE.test(value)) return value
  if (isFields(value)) return undefined
  const line = stringifyToml({ v: value }).trim()
  return line.startsWith("v = ") && !line.includes("\n") ? line.slice(4) : undefined
}

/**
 * Edits TOML line by line: a changed field whose `key = value` is one line gets a new value, a removed one
 * loses its line, a new one goes after the last key of its table. Undefined for anything else.
 */
const patchTomlText = (text: string, from: Fields, to: Fields): string | undefined => {
  const lines = text.split("\n")
  // The table each line belongs to, and the key it sets (single-line `key = value` only).
  let table = ""
  let arrayTable = false
  const entries: Array<{
    readonly table: string
    readonly key: string | undefined
    readonly line: number
    readonly text: string
  }> = []
  const lastLine = new Map<string, number>()
  for (const [i, text] of lines.entries()) {
    const l = text.trim()
    const header = groups(/^\[(\[?)\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$/, l, 2)
    if (header) {
      const [bracket, name] = header
      arrayTable = bracket !== ""
      table = name
        .split(".")
        .map((s) => s.trim())
        .join(".")
      if (!lastLine.has(table)) lastLine.set(table, i)
      continue
    }
    const kv = /^([A-Za-z0-9_-]+)\s*=/.exec(l)
    entries.push({ table: arrayTable ? "\0" : table, key: kv?.[1], line: i, text })
    if (kv && !arrayTable) lastLine.set(table, i)
  }
  const insertAfter = new Map<number, Array<string>>()
  const replace = new Map<number, string | null>()
  for (const c of changes(from, to)) {
    const { at: tablePath, key } = c
    if (tablePath.some((p) => !TOML_BARE_KEY.test(p)) || !TOML_BARE_KEY.test(key)) return undefined
    const t = tablePath.join(".")
    const entry = entries.find((e) => e.table === t && e.key === key)
    if ("remove" in c) {
      if (entry === undefined) return undefined
      replace.set(entry.line, null)
      continue
    }
    const old = pathOf(c).reduce<unknown>((o, k) => (isFields(o) ? o[k] : undefined), from)
    const value = tomlValue(
      c.value,
      typeof old === "string" && TOML_DATE.test(old) && entry !== undefined && !/=\s*["']/.test(entry.text)
    )
    if (value === undefined) return undefined
    if (entry === undefined) {
      const after = lastLine.get(t) ?? (t === "" ? -1 : undefined)
      if (after === undefined) return undefined
      const list = insertAfter.get(after) ?? []
      list.push(`${key} = ${value}`)
      insertAfter.set(after, list)
      continue
    }
    const line = entry.text
    const eq = line.indexOf("=")
    // Keep a trailing comment: the old value must be exactly what stands before it.
    const rest = line.slice(eq + 1)
    const comment = /\s+#[^"'\]]*$/.exec(rest)
    replace.set(entry.line, `${line.slice(0, eq + 1)} ${value}${comment?.[0] ?? ""}`)
  }
  const out: Array<string> = []
  const top = insertAfter.get(-1)
  if (top !== undefined) {
    // New top-level keys go before the first table header.
    const firstHeader = lines.findIndex((l) => /^\s*\[/.test(l))
    const at = firstHeader === -1 ? (lines[lines.length - 1] === "" ? lines.length - 1 : lines.length) : firstHeader
    let lastKey = -1
    for (const [i, l] of lines.slice(0, at).entries()) if (/^\s*[A-Za-z0-9_"'-]/.test(l)) lastKey = i
    insertAfter.delete(-1)
    const list = insertAfter.get(lastKey === -1 ? at - 1 : lastKey) ?? []
    insertAfter.set(lastKey === -1 ? at - 1 : lastKey, [...list, ...top])
  }
  const leading = insertAfter.get(-1)
  if (leading !== undefined) out.push(...leading)
  lines.forEach((l, i) => {
    const r = replace.get(i)
    if (r !== null) out.push(r ?? l)
    out.push(...(insertAfter.get(i) ?? []))
  })
  return out.join("\n")
}

/** TOML written whole (key order kept, comments lost): the fallback when a change is not a one-line edit. */
const rewriteToml = (to: Fields): string => {
  const text = stringifyToml(to)
  return text === "" || text.endsWith("\n") ? text : `${text}\n`
}

/**
 * JSON written with the indent the original used (two spaces when it was on several lines with no other clue),
 * and the blanks after its object (`---json` front matter ends in a newline before the closing fence).
 */
const rewriteJson = (original: string, to: Fields): string => {
  const indent = /\n([ \t]+)"/.exec(original)?.[1] ?? (original.trimEnd().includes("\n") ? "  " : "")
  return JSON.stringify(to, null, indent) + (/\s*$/.exec(original)?.[0] ?? "")
}

const unbroken = (line: string) => line.replace(/\r?\n$/, "")

/**
 * `edited` (a candidate edit of `original`) with each line it wrote ending in `lineBreak`, and each line kept from
 * the original (the common lines of the shortest edit script between them, `editScript`) ending as it did, so an
 * edit of a file of mixed line ends touches no other line.
 */
const inLineBreaks = (original: string, edited: string, lineBreak: "\r\n" | "\n"): string => {
  const was = linesOf(original)
  const now = linesOf(edited)
  // A kept line keeps its break; one that now has a break where it had none (more follows it) gets the file's.
  const kept = (i: number, j: number) =>
    now[j]!.endsWith("\n") ? (was[i]!.endsWith("\n") ? was[i]! : unbroken(now[j]!) + lineBreak) : now[j]!
  const written = (j: number) => (now[j]!.endsWith("\n") ? unbroken(now[j]!) + lineBreak : now[j]!)
  const out: Array<string> = []
  let i = 0
  let j = 0
  for (const { op } of editScript(was.map(unbroken), now.map(unbroken))) {
    if (op === " ") out.push(kept(i++, j++))
    else if (op === "-") i++
    else out.push(written(j++))
  }
  return out.join("")
}

/**
 * The head of a file whose front matter changed from `from` to `to`, edited as little as the format allows:
 * in place where it can (YAML pairs, TOML lines), else through the YAML Document API or a rewrite of the front
 * matter alone. Every candidate is read back and used only if it gives exactly `to`. A file without front
 * matter gets YAML front matter.
 */
export const patchFrontMatter = (
  split: Pick<SplitFile, "format" | "head" | "inner" | "innerStart">,
  from: Fields,
  to: Fields,
  lineBreak: "\r\n" | "\n" = lineBreakOf(split.head)
): string => {
  if (sameJson(from, to, true)) return split.head
  // Lines written in a file of CRLF lines end in CRLF too; the lines kept keep their own ends.
  const inBreaks = (text: string) => (lineBreak === "\n" ? text : text.replace(/\r?\n/g, lineBreak))
  if (split.format === "none") return split.head + inBreaks(freshHead(to))
  const candidates: Array<() => string | undefined> =
    split.format === "yaml"
      ? [() => patchYamlText(split.inner, from, to), () => patchYamlDocument(split.inner, to), () => renderYaml(to)]
      : split.format === "toml"
        ? [() => patchTomlText(split.inner, from, to), () => rewriteToml(to)]
        : [() => rewriteJson(split.inner, to)]
  for (const candidate of candidates) {
    let inner: string | undefined
    try {
      inner = candidate()
    } catch {
      inner = undefined
    }
    if (inner === undefined) continue
    const text = inLineBreaks(split.inner, inner, lineBreak)
    const back = readBack(split.format, text)
    if (back !== undefined && sameJson(back, to, split.format !== "toml")) {
      return split.head.slice(0, split.innerStart) + text + split.head.slice(split.innerStart + split.inner.length)
    }
  }
  // Nothing in the file's own format reads back right (a value TOML cannot hold, say): YAML says it all, in the
  // place of the old front matter (after a BOM and the blank lines above it, which stay as they were).
  return split.head.slice(0, firstText(split.head)) + inBreaks(freshHead(to))
}
