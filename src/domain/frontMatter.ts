/** Front matter as real sites write it (YAML `---`, TOML `+++`, JSON `{…}`, or none): split, read, and edit in place. */
// A file is `head + body`. The head is every byte before the body (BOM, fences, the front matter, one blank
// line after the closing fence); it is kept as read, so an item whose fields did not change is written back
// byte for byte. An edit replaces only the changed fields' text in the head (see `patchFrontMatter`); every
// edit is checked by reading the result back, and falls back to a coarser rewrite rather than a wrong one.
import { Either } from "effect"
import { parse as parseToml, stringify as stringifyToml, TomlDate, TomlError } from "smol-toml"
import {
  isMap,
  isNode,
  isScalar,
  LineCounter,
  type Node,
  type Pair,
  parseDocument,
  stringify,
  type YAMLMap
} from "yaml"
import { InvalidInput } from "../errors.js"
import { fastParseYaml, fastRenderYaml } from "./fastYaml.js"
import type { Json } from "./model.js"

export type FrontMatterFormat = "yaml" | "toml" | "json" | "none"

/** An ordered map of front-matter fields. */
export type Fields = { readonly [key: string]: Json }

export interface SplitFile {
  readonly format: FrontMatterFormat
  /** Every byte before the body; "" when the file has no front matter (and no BOM). */
  readonly head: string
  /** The front matter's own text: between the fences, or the JSON object. */
  readonly inner: string
  /** Where `inner` starts in `head`, and on which line of the file (1-based). */
  readonly innerStart: number
  readonly innerLine: number
  readonly body: string
}

/** A problem of a file, at a line and a field where known. */
export const problem = (file: string, reason: string, line?: number, field?: string): InvalidInput =>
  new InvalidInput({
    file,
    reason,
    ...(line === undefined ? {} : { line }),
    ...(field === undefined ? {} : { field })
  })

const FENCES: Record<string, { readonly format: "yaml" | "toml"; readonly close: ReadonlyArray<string> }> = {
  "---": { format: "yaml", close: ["---", "..."] },
  "+++": { format: "toml", close: ["+++"] }
}

/** A line without its end and trailing blanks (Jekyll accepts `--- ` as a fence). */
const bare = (line: string) => line.replace(/[ \t\r\n]+$/, "")

/** The end of the line starting at `pos`, past its newline (or the end of the text). */
const lineEnd = (text: string, pos: number) => {
  const nl = text.indexOf("\n", pos)
  return nl === -1 ? text.length : nl + 1
}

/** One blank line after the front matter belongs to the head, so the body starts where the writer's text does. */
const withBlankLine = (text: string, pos: number) =>
  text.startsWith("\r\n", pos) ? pos + 2 : text.startsWith("\n", pos) ? pos + 1 : pos

/** The end of a JSON object starting at `start` (after its `}`), or -1 when it never closes. */
const jsonObjectEnd = (text: string, start: number): number => {
  let depth = 0
  let inString = false
  for (let i = start; i < text.length; i++) {
    const c = text[i]
    if (inString) {
      if (c === "\\") i++
      else if (c === '"') inString = false
    } else if (c === '"') inString = true
    else if (c === "{" || c === "[") depth++
    else if (c === "}" || c === "]") {
      depth--
      if (depth === 0) return i + 1
    }
  }
  return -1
}

/**
 * Splits a Markdown file into its head (front matter in whichever format) and its body. Without `json` (an MDX
 * page, where a leading `{` is an expression such as `{/* comment *\/}`), a leading brace is body text.
 */
export const splitFrontMatter = (path: string, text: string, json = true): Either.Either<SplitFile, InvalidInput> => {
  const bom = text.startsWith("\uFEFF") ? 1 : 0
  const firstEnd = lineEnd(text, bom)
  const fence = FENCES[bare(text.slice(bom, firstEnd))]
  if (fence !== undefined) {
    let pos = firstEnd
    while (pos < text.length) {
      const end = lineEnd(text, pos)
      if (fence.close.includes(bare(text.slice(pos, end)))) {
        const headEnd = withBlankLine(text, end)
        return Either.right({
          format: fence.format,
          head: text.slice(0, headEnd),
          inner: text.slice(firstEnd, pos),
          innerStart: firstEnd,
          innerLine: 2,
          body: text.slice(headEnd)
        })
      }
      pos = end
    }
    const open = bare(text.slice(bom, firstEnd))
    return Either.left(problem(path, `front matter opened here is never closed (no closing '${open}' line)`, 1))
  }
  if (json && text[bom] === "{") {
    const close = jsonObjectEnd(text, bom)
    if (close === -1)
      return Either.left(problem(path, "JSON front matter opened here is never closed (no matching '}')", 1))
    const headEnd = withBlankLine(text, lineEnd(text, close))
    return Either.right({
      format: "json",
      head: text.slice(0, headEnd),
      inner: text.slice(bom, close),
      innerStart: bom,
      innerLine: 1,
      body: text.slice(headEnd)
    })
  }
  return Either.right({
    format: "none",
    head: text.slice(0, bom),
    inner: "",
    innerStart: bom,
    innerLine: 1,
    body: text.slice(bom)
  })
}

// ---------------------------------------------------------------------------------------------------------
// Reading

/** What a field holds that a JSON column cannot (an infinite number, binary, a date object), or undefined. */
const notJson = (v: unknown): string | undefined => {
  if (v === null || typeof v === "string" || typeof v === "boolean") return undefined
  if (typeof v === "number") return Number.isFinite(v) ? undefined : `the number ${String(v)}`
  if (Array.isArray(v)) {
    for (const x of v) {
      const bad = notJson(x)
      if (bad !== undefined) return bad
    }
    return undefined
  }
  if (typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) {
    for (const x of Object.values(v as object)) {
      const bad = notJson(x)
      if (bad !== undefined) return bad
    }
    return undefined
  }
  return typeof v === "bigint"
    ? "an integer too large to store exactly"
    : `a value of type ${v instanceof Uint8Array ? "binary" : typeof v}`
}

/** TOML values as JSON: dates as their ISO text, tables as plain objects (smol-toml makes null-prototype ones). */
const fromToml = (v: unknown): unknown => {
  if (v instanceof TomlDate) return v.toISOString()
  if (Array.isArray(v)) return v.map(fromToml)
  if (typeof v === "object" && v !== null) {
    const out: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v)) out[k] = fromToml(x)
    return out
  }
  return v
}

const isFields = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)

/** The line of `offset` in `text`, 1-based. */
const lineOf = (text: string, offset: number) => {
  let line = 1
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++
  return line
}

/** Reads a YAML document's map of fields, with the line of every problem. */
const readYaml = (
  path: string,
  text: string,
  firstLine: number
): Either.Either<Fields, ReadonlyArray<InvalidInput>> => {
  const fast = fastParseYaml(text)
  if (fast !== undefined) return Either.right(fast as Fields)
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true })
  const at = (pos: number) => lines.linePos(pos).line + firstLine - 1
  if (doc.errors.length > 0) {
    return Either.left(
      doc.errors.map((e) => problem(path, `invalid YAML: ${e.message.split("\n")[0] ?? e.message}`, at(e.pos[0] ?? 0)))
    )
  }
  if (doc.contents === null) return Either.right({})
  if (!isMap(doc.contents)) {
    return Either.left([
      problem(path, "front matter must be a map of fields (key: value lines)", at(doc.contents.range?.[0] ?? 0))
    ])
  }
  let value: unknown
  try {
    value = doc.toJS({ maxAliasCount: 100 })
  } catch (e) {
    return Either.left([problem(path, `invalid YAML: ${e instanceof Error ? e.message : String(e)}`, firstLine)])
  }
  const errors: Array<InvalidInput> = []
  for (const pair of doc.contents.items) {
    const key = isScalar(pair.key) ? String(pair.key.value) : undefined
    if (key === undefined) {
      errors.push(
        problem(
          path,
          "a field name must be plain text, not a list or a map",
          at(isNode(pair.key) ? (pair.key.range?.[0] ?? 0) : 0)
        )
      )
      continue
    }
    const bad = notJson((value as Record<string, unknown>)[key])
    if (bad !== undefined) {
      const pos = isNode(pair.value) ? (pair.value.range?.[0] ?? 0) : isNode(pair.key) ? (pair.key.range?.[0] ?? 0) : 0
      errors.push(problem(path, `${bad} cannot be stored; quote it to keep it as text`, at(pos), key))
    }
  }
  return errors.length > 0 ? Either.left(errors) : Either.right(value as Fields)
}

const readToml = (
  path: string,
  text: string,
  firstLine: number
): Either.Either<Fields, ReadonlyArray<InvalidInput>> => {
  try {
    const value = fromToml(parseToml(text))
    const bad = notJson(value)
    return bad === undefined
      ? Either.right(value as Fields)
      : Either.left([problem(path, `${bad} cannot be stored`, firstLine)])
  } catch (e) {
    if (e instanceof TomlError) {
      return Either.left([
        problem(
          path,
          `invalid TOML: ${e.message.split("\n")[0]?.replace(/^Invalid TOML document: /, "") ?? "parse error"}`,
          e.line + firstLine - 1
        )
      ])
    }
    return Either.left([problem(path, `invalid TOML: ${e instanceof Error ? e.message : String(e)}`, firstLine)])
  }
}

const readJson = (
  path: string,
  text: string,
  firstLine: number
): Either.Either<Fields, ReadonlyArray<InvalidInput>> => {
  try {
    const value: unknown = JSON.parse(text)
    if (!isFields(value)) return Either.left([problem(path, "JSON front matter must be an object", firstLine)])
    return Either.right(value as Fields)
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e)
    const pos = /position (\d+)/.exec(message)
    return Either.left([
      problem(
        path,
        `invalid JSON: ${message.replace(/ in JSON at position \d+.*$/, "")}`,
        pos ? lineOf(text, Number(pos[1])) + firstLine - 1 : firstLine
      )
    ])
  }
}

/** The fields of a split file's front matter, in their written order ({} without front matter). */
export const readFrontMatter = (path: string, split: SplitFile): Either.Either<Fields, ReadonlyArray<InvalidInput>> => {
  switch (split.format) {
    case "yaml":
      return readYaml(path, split.inner, split.innerLine)
    case "toml":
      return readToml(path, split.inner, split.innerLine)
    case "json":
      return readJson(path, split.inner, split.innerLine)
    case "none":
      return Either.right({})
  }
}

/** Reads a config file that is a YAML map as a whole (config.yaml). */
export const readYamlFields = (path: string, text: string) => readYaml(path, text, 1)

// ---------------------------------------------------------------------------------------------------------
// Writing

const YAML_OPTIONS = {
  lineWidth: 0,
  minContentWidth: 0,
  indent: 2,
  aliasDuplicateObjects: false,
  blockQuote: false
} as const

/** YAML for a map of fields: the fast renderer where it applies (byte-identical, see fastYaml.ts), else the library. */
export const renderYaml = (value: Fields): string =>
  fastRenderYaml(value as Record<string, string | boolean | null | ReadonlyArray<string>>) ??
  (Object.keys(value).length === 0 ? "" : stringify(value, YAML_OPTIONS))

/** Front matter written fresh, for an item that was never read from a file: YAML between `---` fences. */
export const freshHead = (fields: Fields): string => `---\n${renderYaml(fields)}---\n\n`

/** Deep equality of JSON values, key order included where `ordered`. */
export const sameJson = (a: unknown, b: unknown, ordered = false): boolean => {
  if (a === b) return true
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  if (Array.isArray(a)) {
    const bb = b as ReadonlyArray<unknown>
    return a.length === bb.length && a.every((x, i) => sameJson(x, bb[i], ordered))
  }
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  if (ka.length !== kb.length) return false
  if (ordered && ka.some((k, i) => kb[i] !== k)) return false
  return ka.every(
    (k) =>
      Object.hasOwn(b, k) && sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], ordered)
  )
}

/** One change between two maps of fields: a path of keys and the new value, or removal. */
type Change =
  | { readonly path: ReadonlyArray<string>; readonly value: Json }
  | { readonly path: ReadonlyArray<string>; readonly remove: true }

/** The changes from `from` to `to`, as deep as both sides are maps; lists change whole. */
const changes = (from: Fields, to: Fields, at: ReadonlyArray<string> = []): Array<Change> => {
  const out: Array<Change> = []
  for (const key of Object.keys(from)) if (!Object.hasOwn(to, key)) out.push({ path: [...at, key], remove: true })
  for (const [key, value] of Object.entries(to)) {
    if (!Object.hasOwn(from, key)) out.push({ path: [...at, key], value })
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
        out.push(...changes(old as Fields, value as Fields, [...at, key]))
      } else out.push({ path: [...at, key], value })
    }
  }
  return out
}

/** Replaces [start, end) of `text`. */
const splice = (text: string, start: number, end: number, insert: string) =>
  text.slice(0, start) + insert + text.slice(end)

const lineStart = (text: string, pos: number) => text.lastIndexOf("\n", pos - 1) + 1

/** `key: value` rendered as YAML at an indent, without its final newline. */
const yamlPair = (key: string, value: Json, indent: number): string => {
  const text = stringify({ [key]: value }, YAML_OPTIONS).replace(/\n$/, "")
  const pad = " ".repeat(indent)
  return text
    .split("\n")
    .map((l, i) => (i === 0 ? l : pad + l))
    .join("\n")
}

/** Where a pair's text ends: after its value (a block value's last newline excluded). */
const pairEnd = (text: string, pair: Pair): number => {
  const v = pair.value
  const end = isNode(v) && v.range ? v.range[1] : isNode(pair.key) && pair.key.range ? pair.key.range[1] : 0
  return text[end - 1] === "\n" ? end - 1 : end
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
    const parentPath = change.path.slice(0, -1)
    const key = change.path[change.path.length - 1]!
    const parent = (parentPath.length === 0 ? doc.contents : doc.getIn(parentPath, true)) as Node | null
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
    const map = parent as YAMLMap
    const pair = map.items.find((p) => isScalar(p.key) && String(p.key.value) === key)
    if (pair === undefined) {
      if ("remove" in change) return undefined
      const last = map.items[map.items.length - 1]
      if (last === undefined || !isNode(last.key) || !last.key.range) return undefined
      const indent = last.key.range[0] - lineStart(text, last.key.range[0])
      const at = pairEnd(text, last)
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
      edits.push({ start, end, text: yamlPair(key, change.value, start - lineStart(text, start)) })
    }
  }
  edits.sort((a, b) => b.start - a.start)
  let out = text
  let limit = Number.POSITIVE_INFINITY
  for (const e of edits) {
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
  const from = (doc.toJS() ?? {}) as Fields
  for (const c of changes(from, to)) {
    if ("remove" in c) doc.deleteIn(c.path)
    else doc.setIn(c.path, doc.createNode(c.value))
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
  const entries: Array<{ readonly table: string; readonly key: string | undefined; readonly line: number }> = []
  const lastLine = new Map<string, number>()
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!.trim()
    const header = /^\[(\[)?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$/.exec(l)
    if (header) {
      arrayTable = header[1] !== undefined
      table = header[2]!
        .split(".")
        .map((s) => s.trim())
        .join(".")
      if (!lastLine.has(table)) lastLine.set(table, i)
      continue
    }
    const kv = /^([A-Za-z0-9_-]+)\s*=/.exec(l)
    entries.push({ table: arrayTable ? "\0" : table, key: kv?.[1], line: i })
    if (kv && !arrayTable) lastLine.set(table, i)
  }
  const insertAfter = new Map<number, Array<string>>()
  const replace = new Map<number, string | null>()
  for (const c of changes(from, to)) {
    const tablePath = c.path.slice(0, -1)
    const key = c.path[c.path.length - 1]!
    if (tablePath.some((p) => !TOML_BARE_KEY.test(p)) || !TOML_BARE_KEY.test(key)) return undefined
    const t = tablePath.join(".")
    const entry = entries.find((e) => e.table === t && e.key === key)
    if ("remove" in c) {
      if (entry === undefined) return undefined
      replace.set(entry.line, null)
      continue
    }
    const old = c.path.reduce<unknown>((o, k) => (isFields(o) ? o[k] : undefined), from)
    const value = tomlValue(
      c.value,
      typeof old === "string" && TOML_DATE.test(old) && entry !== undefined && !/=\s*["']/.test(lines[entry.line]!)
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
    const line = lines[entry.line]!
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
    for (let i = 0; i < at; i++) if (/^\s*[A-Za-z0-9_"'-]/.test(lines[i]!)) lastKey = i
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

/** JSON written with the indent the original used (two spaces when it was on several lines with no other clue). */
const rewriteJson = (original: string, to: Fields): string => {
  const indent = /\n([ \t]+)"/.exec(original)?.[1] ?? (original.includes("\n") ? "  " : "")
  return JSON.stringify(to, null, indent)
}

/** Reads front matter text back, for the check after an edit. */
const readBack = (format: FrontMatterFormat, text: string): Fields | undefined => {
  const r =
    format === "yaml"
      ? readYaml("", text, 1)
      : format === "toml"
        ? readToml("", text, 1)
        : format === "json"
          ? readJson("", text, 1)
          : undefined
  return r !== undefined && Either.isRight(r) ? r.right : undefined
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
  to: Fields
): string => {
  if (sameJson(from, to, true)) return split.head
  if (split.format === "none") return split.head + freshHead(to)
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
    const back = readBack(split.format, inner)
    if (back !== undefined && sameJson(back, to, split.format !== "toml")) {
      return split.head.slice(0, split.innerStart) + inner + split.head.slice(split.innerStart + split.inner.length)
    }
  }
  // Nothing in the file's own format reads back right (a value TOML cannot hold, say): YAML says it all.
  return (split.head.startsWith("\uFEFF") ? "\uFEFF" : "") + freshHead(to)
}
