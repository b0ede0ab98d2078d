/** Reading text files: UTF-8 decoding and YAML decoded against a Schema, each problem with its file and line. */
import { Either, ParseResult, Predicate, Schema } from "effect"
import { type Document, isMap, isNode, isSeq, LineCounter, parseDocument } from "yaml"
import type { InvalidInput } from "../../errors.js"
import { fastParseYaml } from "../fastYaml.js"
import { problem } from "../frontMatter/split.js"

/** A parse either gives the value or every problem it found, each with its file and line. */
export type Parsed<A> = Either.Either<A, ReadonlyArray<InvalidInput>>

/** A text file as read from disk, its path relative to the project for messages. */
export interface TextFile {
  readonly path: string
  readonly text: string
}

/**
 * Decodes bytes as UTF-8, or names the first line that is not. A byte order mark stays in the text (a page that
 * starts with one is written back with it); the YAML readers below skip it.
 */
export const decodeUtf8 = (file: string, bytes: Uint8Array): Parsed<string> => {
  try {
    const text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes)
    return Either.right(text)
  } catch {
    let line = 1
    let start = 0
    const strict = new TextDecoder("utf-8", { fatal: true })
    for (let i = 0; i <= bytes.length; i++) {
      if (i === bytes.length || bytes[i] === 0x0a) {
        try {
          strict.decode(bytes.subarray(start, i))
        } catch {
          break
        }
        line++
        start = i + 1
      }
    }
    return Either.left([problem(file, "file is not valid UTF-8 text", line)])
  }
}

// ---------------------------------------------------------------------------------------------------------
// YAML

export interface YamlParsed {
  readonly doc: Document.Parsed
  readonly lines: LineCounter
  /** Line offset of the YAML within its file (front matter starts after the opening fence). */
  readonly offset: number
}

/** A YAML text without the byte order mark its file may start with. */
const withoutBom = (text: string) => (text.charCodeAt(0) === 0xfeff ? text.slice(1) : text)

export const parseYaml = (file: TextFile, offset = 0): Either.Either<YamlParsed, ReadonlyArray<InvalidInput>> => {
  const lines = new LineCounter()
  const doc = parseDocument(withoutBom(file.text), { lineCounter: lines, prettyErrors: false, uniqueKeys: true })
  if (doc.errors.length > 0) {
    return Either.left(
      doc.errors.map((e) => {
        const pos = e.pos[0] ?? 0
        const first = e.message.split("\n")[0] ?? e.message
        return problem(file.path, `invalid YAML: ${first}`, lines.linePos(pos).line + offset)
      })
    )
  }
  return Either.right({ doc, lines, offset })
}

/** The line of the node at `path` in a parsed YAML document, or of the closest ancestor that exists. */
export const lineAt = (y: YamlParsed, path: ReadonlyArray<PropertyKey>): number => {
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? y.doc.contents : y.doc.getIn(path.slice(0, n), true)
    if (isNode(node) && node.range) return y.lines.linePos(node.range[0]).line + y.offset
    // A key whose value is null has no value node: look the pair's key up instead.
    if (n > 0) {
      const parent = n === 1 ? y.doc.contents : y.doc.getIn(path.slice(0, n - 1), true)
      if (isMap(parent)) {
        const pair = parent.items.find((p) => isNode(p.key) && "value" in p.key && p.key.value === path[n - 1])
        if (pair && isNode(pair.key) && pair.key.range) return y.lines.linePos(pair.key.range[0]).line + y.offset
      }
      if (isSeq(parent)) continue
    }
  }
  return 1 + y.offset
}

/** Decodes YAML against a schema, reporting every issue at the line of the offending key. */
export const decodeYaml = <A, I>(
  schema: Schema.Schema<A, I>,
  file: TextFile,
  y: YamlParsed,
  value: unknown = y.doc.toJS({ maxAliasCount: 100 })
): Parsed<A> =>
  Either.mapLeft(Schema.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "error" })(value), (error) =>
    ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) => {
      const field = issue.path.length === 0 ? undefined : issue.path.map(String).join(".")
      return problem(file.path, issue.message, lineAt(y, issue.path), field)
    })
  )

/**
 * Decodes a whole YAML file (agentsync.yaml and the like) against a schema: every problem, of syntax or of
 * schema, with its file:line. An empty file is an empty map. A flat map that the fast reader takes (`fastParseYaml`,
 * whose value is always the library's) and the schema accepts is decoded without the library: its first document
 * in a process costs 15-25 ms of cold code, which a push paid to read a one-line agentsync.yaml. Anything else, or
 * any problem, goes through the library, which names each problem's line.
 */
export const decodeYamlFile = <A, I>(schema: Schema.Schema<A, I>, file: TextFile): Parsed<A> => {
  const flat = fastParseYaml(withoutBom(file.text))
  const fast =
    flat === undefined
      ? undefined
      : Schema.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "error" })(flat)
  return fast !== undefined && Either.isRight(fast) ? Either.right(fast.right) : decodeYamlWhole(schema, file)
}

const decodeYamlWhole = <A, I>(schema: Schema.Schema<A, I>, file: TextFile): Parsed<A> =>
  Either.flatMap(parseYaml(file), (y) =>
    // An optional key that is malformed also fails its `undefined` alternative: that echo says nothing.
    Either.mapLeft(decodeYaml(schema, file, y, y.doc.toJS({ maxAliasCount: 100 }) ?? {}), (all) => {
      const real = all.filter((p) => !p.reason.startsWith("Expected undefined, actual"))
      return joinAlternatives(real.length > 0 ? real : all)
    })
  )

const EXPECTED = /^Expected (.+), actual (.+)$/s

/** A union's members each report the same value at the same key: one problem, the alternatives joined. */
const joinAlternatives = (problems: ReadonlyArray<InvalidInput>): ReadonlyArray<InvalidInput> => {
  const out: Array<InvalidInput> = []
  for (const p of problems) {
    const prev = out.at(-1)
    const [here, there] = [EXPECTED.exec(p.reason), prev === undefined ? null : EXPECTED.exec(prev.reason)]
    if (
      prev !== undefined &&
      here !== null &&
      there !== null &&
      prev.field === p.field &&
      prev.line === p.line &&
      here[2] === there[2]
    ) {
      out[out.length - 1] = problem(
        p.file ?? "",
        `Expected ${there[1]} | ${here[1]}, actual ${here[2]}`,
        p.line,
        p.field
      )
    } else out.push(p)
  }
  return out
}

/** The line of the key at `path` in a YAML text (or of its closest ancestor that exists); 1 when it does not parse. */
export const yamlLine = (text: string, path: ReadonlyArray<PropertyKey>): number =>
  Either.match(parseYaml({ path: "", text }), { onLeft: () => 1, onRight: (y) => lineAt(y, path) })

/** The fields a reader fills in when a file leaves them out. */
export const withDefaults = <A extends Record<string, unknown>>(
  value: unknown,
  defaults: (v: Record<string, unknown>) => A
) => (Predicate.isRecord(value) ? { ...defaults(value), ...value } : value)

export const collectErrors = (...parts: ReadonlyArray<Parsed<unknown>>): ReadonlyArray<InvalidInput> =>
  parts.flatMap((p) => (Either.isLeft(p) ? p.left : []))
