/** Front matter read: the fields of a YAML, TOML or JSON head (or a whole YAML config file), with the line of every problem. */
import { Either } from "effect"
import { parse as parseToml, TomlDate, TomlError } from "smol-toml"
import { isMap, isNode, isScalar, LineCounter, parseDocument } from "yaml"
import type { InvalidInput } from "../../errors.js"
import { fastParseYaml } from "../fastYaml.js"
import { type Fields, type FrontMatterFormat, lineOf, problem, type SplitFile } from "./split.js"

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
    for (const x of Object.values(v)) {
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

export const isFields = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v)

/**
 * The YAML parser's errors, the first of each kind on each line: one bad line gives the parser a dozen syntax
 * errors, each after the first a consequence of it (a Claude Code subagent whose `description:` holds `Daisy: "…"`
 * gave 15), while a key the map already holds is a problem of its own that fixing the syntax leaves (`k: v` then
 * `k: a: b`). The commonest mistake in front matter written by hand, a plain value holding `: `, is said as such.
 */
const yamlProblems = (
  path: string,
  errors: ReadonlyArray<{ readonly code: string; readonly message: string; readonly pos: readonly [number, number] }>,
  at: (pos: number) => number
): ReadonlyArray<InvalidInput> => {
  const seen = new Set<string>()
  const out: Array<InvalidInput> = []
  for (const e of errors) {
    const line = at(e.pos[0])
    const key = `${line} ${e.code === "DUPLICATE_KEY" ? "key" : "syntax"}`
    if (seen.has(key)) continue
    seen.add(key)
    const first = e.message.split("\n")[0] ?? e.message
    const hint = NESTED.test(first) ? ' (a value holding ": " must be quoted)' : ""
    out.push(problem(path, `invalid YAML: ${first}${hint}`, line))
  }
  return out
}

// What the parser says of `key: text: more` (a plain value holding ": ").
const NESTED = /^Nested mappings are not allowed in compact mappings/

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
  if (doc.errors.length > 0) return Either.left(yamlProblems(path, doc.errors, at))
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

/** Reads front matter text back, for the check after an edit. */
export const readBack = (format: FrontMatterFormat, text: string): Fields | undefined => {
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
