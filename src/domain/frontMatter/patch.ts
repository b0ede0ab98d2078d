/** Front matter edited in place (`patchFrontMatter`): only the changed fields' text is replaced, and every edit is read back with the whole file, falling back to a coarser rewrite rather than a wrong one, and to none. */

import { Either } from "effect"
import { stringify as stringifyToml } from "smol-toml"
import { type Document, isMap, isNode, isScalar, type Pair, parseDocument, stringify } from "yaml"
import type { Json } from "../model.js"
import { editScript, linesOf } from "../patch.js"
import { applyEdits, type Change, changes, type Edit, pathOf } from "./changes.js"
import { patchTomlText } from "./patchToml.js"
import { isFields, readBack } from "./read.js"
import { freshHead, renderYaml, sameJson, YAML_OPTIONS } from "./render.js"
import { type Fields, type FrontMatterFormat, lineBreakOf, lineEnd, type SplitFile, splitFrontMatter } from "./split.js"
import { escapeUnicodeBreaks, styled } from "./yamlStyle.js"

const lineStart = (text: string, pos: number) => text.lastIndexOf("\n", pos - 1) + 1

/** `key: value` rendered as YAML at an indent, without its final newline; a string keeps the style `old` had. */
const yamlPair = (key: string, value: Json, indent: number, old?: unknown, original = ""): string => {
  const { node, options } = styled(old, value, original, indent)
  const written = stringify({ [key]: node }, options).replace(/\n$/, "")
  // A string holding U+2028 and the like is double-quoted (`styled`): escaped there (a key holding one fails to read back).
  const text = typeof value === "string" ? escapeUnicodeBreaks(written) : written
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

/** The value at a path of fields. */
const valueAt = (fields: Fields, path: ReadonlyArray<string>): unknown =>
  path.reduce<unknown>((o, k) => (isFields(o) ? o[k] : undefined), fields)

/**
 * Changes of fields inside a flow map (`params: {a: 1, b: 2}`) as one change of that whole map, written again on
 * its line in its flow style: its fields have no lines of their own.
 */
const wholeFlowMaps = (doc: Document, list: ReadonlyArray<Change>, to: Fields): ReadonlyArray<Change> => {
  const out = new Map<string, Change>()
  for (const c of list) {
    const flowAt = c.at.findIndex((_, i) => {
      const node: unknown = doc.getIn(c.at.slice(0, i + 1), true)
      return isMap(node) && node.flow
    })
    const lifted = flowAt === -1 ? undefined : valueAt(to, c.at.slice(0, flowAt + 1))
    const change: Change =
      flowAt === -1 || !isFields(lifted)
        ? c
        : { at: c.at.slice(0, flowAt), key: c.at[flowAt]!, value: lifted as Fields }
    out.set(JSON.stringify(pathOf(change)), change)
  }
  return [...out.values()]
}

/**
 * Edits YAML in place: each changed field's `key: value` text is replaced, a removed field's lines are cut, a
 * new field is added after the last field of its map. Undefined where the text is not plain block maps.
 */
const patchYamlText = (text: string, from: Fields, to: Fields): string | undefined => {
  const doc = parseDocument(text, { uniqueKeys: true })
  if (doc.errors.length > 0 || (doc.contents !== null && !isMap(doc.contents))) return undefined
  // Edits run from the end of the text backwards, so earlier offsets stay valid.
  const edits: Array<Edit> = []
  for (const change of wholeFlowMaps(doc, changes(from, to), to)) {
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
  // Overlapping edits give undefined: the caller rewrites instead. New fields after one last field come out in the
  // order given (applyEdits splices edits at one offset latest first).
  return applyEdits(text, edits)
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
 * Whether `head` (a candidate head of the file `head + body`) splits back out of that file as itself, with the same
 * format and front matter `inner`: a value whose line is a fence (`+++`, `---`) would close the block early.
 */
const splitsBack = (format: FrontMatterFormat, head: string, inner: string, body: string) => {
  const again = splitFrontMatter("", head + body)
  return (
    Either.isRight(again) && again.right.format === format && again.right.head === head && again.right.inner === inner
  )
}

/**
 * The head of a file whose front matter changed from `from` to `to`, edited as little as the format allows:
 * in place where it can (YAML pairs, TOML lines), else through the YAML Document API or a rewrite of the front
 * matter alone. Every candidate is used only if the whole file (`split.body` after it, when given: a config file
 * has none, its text is all front matter) splits back into that head and its front matter reads back as exactly
 * `to`. Undefined when no candidate does: the edit cannot be written in the file's format. A file without front
 * matter gets YAML front matter.
 */
export const patchFrontMatter = (
  split: Pick<SplitFile, "format" | "head" | "inner" | "innerStart"> & { readonly body?: string },
  from: Fields,
  to: Fields,
  lineBreak: "\r\n" | "\n" = lineBreakOf(split.head)
): string | undefined => {
  if (sameJson(from, to, true)) return split.head
  // Lines written in a file of CRLF lines end in CRLF too; the lines kept keep their own ends.
  const inBreaks = (text: string) => (lineBreak === "\n" ? text : text.replace(/\r?\n/g, lineBreak))
  const body = split.body
  const accepted = (format: FrontMatterFormat, head: string, inner: string) => {
    if (body !== undefined && !splitsBack(format, head, inner, body)) return false
    const back = readBack(format, inner)
    return back !== undefined && sameJson(back, to, format !== "toml")
  }
  if (split.format === "none") {
    const fresh = inBreaks(freshHead(to))
    const head = split.head + fresh
    const inner = fresh.slice(fresh.indexOf("\n") + 1, fresh.lastIndexOf("---"))
    return accepted("yaml", head, inner) ? head : undefined
  }
  const candidates: Array<() => string | undefined> =
    split.format === "yaml"
      ? [() => patchYamlText(split.inner, from, to), () => patchYamlDocument(split.inner, to), () => renderYaml(to)]
      : split.format === "toml"
        ? [
            () => patchTomlText(split.inner, from, to),
            () => patchTomlText(split.inner, from, to, false),
            () => rewriteToml(to)
          ]
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
    const head = split.head.slice(0, split.innerStart) + text + split.head.slice(split.innerStart + split.inner.length)
    if (accepted(split.format, head, text)) return head
  }
  return undefined
}
