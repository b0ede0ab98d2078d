/** Open maps of fields: the known ones become columns, the rest is kept in order as `extra`; edits touch only changed fields. */
import { Either, Schema } from "effect"
import type { InvalidInput } from "../../errors.js"
import { patchFrontMatter } from "../frontMatter/patch.js"
import { readFrontMatter, readYamlFields } from "../frontMatter/read.js"
import { freshHead, renderYaml, sameJson } from "../frontMatter/render.js"
import {
  bodyOnly,
  type Fields,
  lineBreakOf,
  opensAfterBlanks,
  problem,
  type SplitFile,
  splitFrontMatter
} from "../frontMatter/split.js"
import { held } from "../held.js"
import { ContentPath, Id, type Json } from "../model.js"
import type { TextFile } from "./yaml.js"

export const ID_RULE = "letters, digits, '_', '-', '.'; not starting with '-' or '.'"

/** A field agentsync knows: its name, the values that fit its column, and its value when absent. */
export interface KnownField {
  readonly key: string
  readonly fits: (v: Json) => boolean
}

// Built once: a Schema guard costs more to make than to run.
export const isId = Schema.is(Id)
export const isContentPath = Schema.is(ContentPath)
export const isText = (v: Json) => typeof v === "string"
export const isBool = (v: Json) => typeof v === "boolean"
export const isTexts = (v: Json) => Array.isArray(v) && v.every((x) => typeof x === "string")
export const isTextOrNull = (v: Json) => v === null || typeof v === "string"
export const isMapValue = (v: Json) => typeof v === "object" && v !== null && !Array.isArray(v)
export const isIds = (v: Json) => Array.isArray(v) && v.every((x) => typeof x === "string" && isId(x))

/**
 * Splits a map of fields into the known ones whose value fits their column and everything else, in order.
 * A known name holding a value of another shape (an `author` map, a `tags` string) is kept as it is, as extra.
 */
export const pick = (
  fields: Fields,
  known: ReadonlyArray<KnownField>
): { known: Record<string, Json>; extra: Record<string, Json> } => {
  const out: Record<string, Json> = {}
  const extra: Record<string, Json> = {}
  const byKey = new Map(known.map((k) => [k.key, k]))
  for (const [key, value] of Object.entries(fields)) {
    const k = byKey.get(key)
    if (k?.fits(value)) out[key] = value
    else extra[key] = value
  }
  return { known: out, extra }
}

/**
 * The map of fields that encodes `wanted` (known values) and `extra`, edited from `base`: a field keeps its
 * place, a changed one gets its new value, a new one goes last. `baseValues` are the known values `base`
 * itself gives (defaults included), so a field left at its default stays absent.
 */
export const encode = (
  base: Fields,
  known: ReadonlyArray<KnownField>,
  baseValues: Readonly<Record<string, Json>>,
  wanted: Readonly<Record<string, Json>>,
  baseExtra: Fields,
  extra: Fields
): Fields => {
  const out: Record<string, Json> = { ...base }
  for (const key of Object.keys(baseExtra)) if (!Object.hasOwn(extra, key)) delete out[key]
  for (const [key, value] of Object.entries(extra)) if (!sameJson(baseExtra[key], value, true)) out[key] = value
  for (const { key } of known) {
    const value = held(wanted[key], `the wanted value of the known field ${key}`)
    if (!sameJson(baseValues[key], value, true)) out[key] = value
  }
  return out
}

/**
 * `encode`'s fields with every known field written out whose value reading them back would not give: a field
 * left out for being at its default in the base takes its default from the fields before it, which may have
 * changed (an agent's `display_name` follows its `name`).
 */
const settled = (
  encoded: Fields,
  known: ReadonlyArray<KnownField>,
  derive: (fields: Fields) => Readonly<Record<string, Json>>,
  wanted: Readonly<Record<string, Json>>
): Fields => {
  const out: Record<string, Json> = { ...encoded }
  // Each pass writes out what the last left wrong; a field written out can only change the defaults after it.
  for (let pass = 0; pass <= known.length; pass++) {
    const back = derive(out)
    // Only a field left out: one written (a value of its own shape, or another kept as extra) reads as it is.
    const wrong = known.filter(({ key }) => !Object.hasOwn(out, key) && !sameJson(back[key], wanted[key], true))
    if (wrong.length === 0) break
    for (const { key } of wrong) out[key] = held(wanted[key], `the wanted value of the known field ${key}`)
  }
  return out
}

const checkExtra = (path: string, fields: Fields): ReadonlyArray<InvalidInput> =>
  Object.keys(fields).includes("__proto__") ? [problem(path, "a field may not be named __proto__", 1, "__proto__")] : []

/**
 * A Markdown file split and its front matter read. A block after blanks that does not read (not a map of fields,
 * invalid YAML, TOML or JSON) makes the page body as a whole, as it was read before (`opensAfterBlanks`); one
 * at the first byte is refused at its line.
 */
export const readMarkdown = (
  file: TextFile,
  json = true
): Either.Either<{ split: SplitFile; fields: Fields }, ReadonlyArray<InvalidInput>> =>
  Either.flatMap(
    Either.mapLeft(splitFrontMatter(file.path, file.text, json), (e) => [e]),
    (split) => {
      const read = Either.flatMap(readFrontMatter(file.path, split), (fields) => {
        const bad = checkExtra(file.path, fields)
        return bad.length > 0 ? Either.left(bad) : Either.right({ split, fields })
      })
      return Either.isLeft(read) && opensAfterBlanks(file.text)
        ? Either.right({ split: bodyOnly(file.text), fields: {} })
        : read
    }
  )

/**
 * Writes an item held as (head, body) whose fields may have changed since it was read: only those change.
 * Undefined when the change cannot be written in the head's format (`patchFrontMatter`): the caller refuses it.
 */
export const renderMarkdown = (
  head: string,
  body: string,
  read: (fields: Fields, body: string) => { readonly known: Record<string, Json>; readonly extra: Fields },
  known: ReadonlyArray<KnownField>,
  wanted: Record<string, Json>,
  extra: Fields,
  fresh: () => Fields
): string | undefined => {
  const split = splitFrontMatter("", head)
  const fields = Either.isRight(split) ? readFrontMatter("", split.right) : undefined
  if (fields === undefined || Either.isLeft(fields) || Either.isLeft(split) || split.right.head !== head)
    return freshHead(fresh()) + body
  const base = read(fields.right, body)
  const encoded = encode(fields.right, known, base.known, wanted, base.extra, extra)
  const patched = patchFrontMatter(
    { ...split.right, body },
    fields.right,
    settled(encoded, known, (f) => read(f, body).known, wanted),
    lineBreakOf(head + body)
  )
  return patched === undefined ? undefined : patched + body
}

/** A config.yaml: the original text with the changed fields edited in place, or every field written fresh. */
export const renderConfig = (
  original: string | null,
  known: ReadonlyArray<KnownField>,
  values: (known: Record<string, Json>) => Record<string, Json>,
  wanted: Record<string, Json>
): string => {
  if (original !== null) {
    const fields = readYamlFields("", original)
    if (Either.isRight(fields)) {
      const base = pick(fields.right, known)
      const head = patchFrontMatter(
        { format: "yaml", head: original, inner: original, innerStart: 0 },
        fields.right,
        settled(
          encode(fields.right, known, values(base.known), wanted, base.extra, base.extra),
          known,
          (f) => values(pick(f, known).known),
          wanted
        )
      )
      // No edit of the text reads back as the fields: written whole, as a config that does not read is.
      if (head !== undefined) return head
    }
  }
  return renderYaml(wanted)
}
