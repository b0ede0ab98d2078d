// An edit of one field in the database, written back into its file: the laws of patchFrontMatter over generated
// YAML and TOML front matter in the commonest styles real sites write.
import { it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import { describe, expect } from "vitest"
import { parseDocument } from "yaml"
import { patchFrontMatter } from "../../src/domain/frontMatter/patch.js"
import { readFrontMatter } from "../../src/domain/frontMatter/read.js"
import { splitFrontMatter } from "../../src/domain/frontMatter/split.js"
import type { Json } from "../../src/domain/model.js"

const runs = { fastCheck: { numRuns: 300 } }

/** A field as generated: its lines, the style it is written in, and the kind of value an edit gives it. */
interface Field {
  readonly lines: ReadonlyArray<string>
  readonly style: string
  readonly kind: "string" | "list" | "number" | "date"
  /** Whether writing its own value again gives its lines (one canonical text). */
  readonly canonical: boolean
}

const word = fc.stringMatching(/^[a-z][a-z0-9]{0,6}$/)
const phrase = fc.array(word, { minLength: 1, maxLength: 3 }).map((w) => `v ${w.join(" ")}`)
const oneLine = fc.oneof(phrase, fc.constantFrom("it's", 'say "hi"', "a: b", "#x", "yes", "12", "C:\\path", "漢字 ✓"))
/** A new string: one line or several, of plain words or of characters some styles cannot hold. */
const newString = fc.oneof(
  phrase,
  oneLine,
  fc.constantFrom("x\ny", "two\n\nparagraphs", " lead", "trail ", "tab\there", "it's\nhere", "end'", "'''", "a\\b\nc"),
  // A line that is a fence (trailing blanks aside) would close the front matter early if written as it is.
  fc.constantFrom("a\n+++\nb", "a\n---\nb", "...", "a\n...\n", "a\n+++ \nb", "+++\nb"),
  // Text a YAML 1.1 reader takes for another kind of value: a boolean, a number, null.
  fc.constantFrom("yes", "on", "1_000", "1:20", "~")
)
const comment = fc.constantFrom("", "", " # note")

const yamlField: fc.Arbitrary<(key: string) => Field> = fc.oneof(
  fc.tuple(phrase, comment).map(
    ([v, c]) =>
      (k: string): Field => ({
        lines: [`${k}: ${v}${c}`],
        style: "plain",
        kind: "string",
        canonical: true
      })
  ),
  fc.tuple(phrase, phrase).map(
    ([a, b]) =>
      (k: string): Field => ({
        lines: [`${k}: ${a}`, `  ${b}`],
        style: "plain",
        kind: "string",
        canonical: false
      })
  ),
  fc.tuple(oneLine, comment).map(
    ([v, c]) =>
      (k: string): Field => ({
        lines: [`${k}: '${v.replace(/'/g, "''")}'${c}`],
        style: "single",
        kind: "string",
        canonical: true
      })
  ),
  fc.tuple(phrase, phrase).map(
    ([a, b]) =>
      (k: string): Field => ({
        lines: [`${k}: '${a}`, `  ${b}'`],
        style: "single",
        kind: "string",
        canonical: false
      })
  ),
  fc.tuple(oneLine, comment).map(
    ([v, c]) =>
      (k: string): Field => ({
        lines: [`${k}: ${JSON.stringify(v)}${c}`],
        style: "double",
        kind: "string",
        canonical: true
      })
  ),
  fc.tuple(phrase, phrase).map(
    ([a, b]) =>
      (k: string): Field => ({
        lines: [`${k}: |`, `  ${a}`, `  ${b}`],
        style: "literal",
        kind: "string",
        canonical: true
      })
  ),
  fc.array(word, { minLength: 1, maxLength: 3 }).map(
    (ws) =>
      (k: string): Field => ({
        lines: [`${k}: [${ws.join(", ")}]`],
        style: "flow",
        kind: "list",
        canonical: true
      })
  ),
  fc.tuple(fc.array(word, { minLength: 1, maxLength: 3 }), fc.constantFrom("", "  ", "    ")).map(
    ([ws, pad]) =>
      (k: string): Field => ({
        lines: [`${k}:`, ...ws.map((w) => `${pad}- ${w}`)],
        style: "block",
        kind: "list",
        canonical: true
      })
  ),
  fc.tuple(fc.integer({ min: 0, max: 999 }), comment).map(
    ([n, c]) =>
      (k: string): Field => ({
        lines: [`${k}: ${n}${c}`],
        style: "number",
        kind: "number",
        canonical: true
      })
  ),
  fc.constantFrom("2024-01-02", "2013-05-06T10:11:12Z").map(
    (d) =>
      (k: string): Field => ({ lines: [`${k}: ${d}`], style: "date", kind: "date", canonical: true })
  ),
  // A boolean, number or null the database edits to a string (`draft: true` to "yes").
  fc.constantFrom("true", "12", "null").map(
    (v) =>
      (k: string): Field => ({ lines: [`${k}: ${v}`], style: "plain", kind: "string", canonical: false })
  )
)

const tomlField: fc.Arbitrary<(key: string) => Field> = fc.oneof(
  fc.tuple(phrase, comment).map(
    ([v, c]) =>
      (k: string): Field => ({
        lines: [`${k} = '${v}'${c}`],
        style: "literal",
        kind: "string",
        canonical: true
      })
  ),
  fc.tuple(oneLine, comment).map(
    ([v, c]) =>
      (k: string): Field => ({
        lines: [`${k} = ${JSON.stringify(v)}${c}`],
        style: "basic",
        kind: "string",
        canonical: true
      })
  ),
  fc.tuple(phrase, phrase).map(
    ([a, b]) =>
      (k: string): Field => ({
        lines: [`${k} = '''`, a, `${b}'''`],
        style: "multiLiteral",
        kind: "string",
        canonical: true
      })
  ),
  fc.tuple(phrase, phrase).map(
    ([a, b]) =>
      (k: string): Field => ({
        lines: [`${k} = """`, a, `${b}"""`],
        style: "multiBasic",
        kind: "string",
        canonical: true
      })
  ),
  fc.array(word, { minLength: 1, maxLength: 3 }).map(
    (ws) =>
      (k: string): Field => ({
        lines: [`${k} = [${ws.map((w) => `'${w}'`).join(", ")}]`],
        style: "array",
        kind: "list",
        canonical: true
      })
  ),
  fc.tuple(fc.integer({ min: 0, max: 999 }), comment).map(
    ([n, c]) =>
      (k: string): Field => ({
        lines: [`${k} = ${n}${c}`],
        style: "number",
        kind: "number",
        canonical: true
      })
  ),
  fc.constantFrom("2024-01-02", "1979-05-27").map(
    (d) =>
      (k: string): Field => ({ lines: [`${k} = ${d}`], style: "date", kind: "date", canonical: true })
  )
)

/** A generated file: its text (LF), the lines of each field, and which field is edited. */
interface Generated {
  readonly text: string
  readonly fields: ReadonlyArray<{ readonly key: string; readonly start: number; readonly field: Field }>
}

const KEYS = ["title", "description", "summary", "tags", "weight", "date", "author", "slug"]

const file = (format: "yaml" | "toml") =>
  fc
    .tuple(
      fc.uniqueArray(fc.constantFrom(...KEYS), { minLength: 1, maxLength: 5 }),
      fc.array(fc.tuple(format === "yaml" ? yamlField : tomlField, fc.boolean()), { minLength: 5, maxLength: 5 })
    )
    .map(([keys, made]): Generated => {
      const fence = format === "yaml" ? "---" : "+++"
      const lines = [fence]
      const fields = keys.map((key, i) => {
        const [make, commentAbove] = made[i]!
        if (commentAbove) lines.push(`# about ${key}`)
        const field = make(key)
        const start = lines.length
        lines.push(...field.lines)
        return { key, start, field }
      })
      lines.push(fence, "Body", "")
      return { text: lines.join("\n"), fields }
    })

const newValue = (kind: Field["kind"]): fc.Arbitrary<Json> =>
  kind === "string"
    ? newString
    : kind === "list"
      ? fc.array(word, { maxLength: 3 })
      : kind === "number"
        ? fc.integer({ min: 0, max: 5000 })
        : fc.constantFrom("2025-03-04", "2020-12-31T23:59:00Z")

const read = (text: string) => {
  const split = Either.getOrThrow(splitFrontMatter("post.md", text))
  const fields = readFrontMatter("post.md", split)
  if (Either.isLeft(fields)) throw new Error(fields.left.map((e) => e.message).join("\n"))
  return { split, fields: fields.right }
}

const edit = (text: string, key: string, value: Json) => {
  const { split, fields } = read(text)
  const head = patchFrontMatter(split, fields, { ...fields, [key]: value })
  if (head === undefined) throw new Error(`no edit of ${key} reads back`)
  return head + split.body
}

/** Whether a line of a string (its trailing blanks aside) is a fence line. */
const holdsFence = (v: string) => v.split("\n").some((l) => ["+++", "---", "..."].includes(l.trimEnd()))

/** The style a written field's first line shows. */
const styleOf = (format: "yaml" | "toml", line: string, next: string | undefined): string => {
  const v = format === "yaml" ? line.replace(/^[^:]*:\s?/, "") : line.replace(/^[^=]*=\s*/, "")
  if (format === "toml")
    return v.startsWith("'''")
      ? "multiLiteral"
      : v.startsWith('"""')
        ? "multiBasic"
        : v.startsWith("'")
          ? "literal"
          : v.startsWith('"')
            ? "basic"
            : v.startsWith("[")
              ? "array"
              : "other"
  if (v === "") return next?.trimStart().startsWith("-") ? "block" : "map"
  return v.startsWith("'")
    ? "single"
    : v.startsWith('"')
      ? "double"
      : v.startsWith("|")
        ? "literal"
        : v.startsWith(">")
          ? "folded"
          : v.startsWith("[")
            ? "flow"
            : "plain"
}

const PLAIN_SAFE =
  /^v( [a-z0-9]+)+$|^it's$|^C:\\path$|^漢字 ✓$|^x\ny$|^two\n\nparagraphs$|^it's\nhere$|^end'$|^'''$|^tab\there$/
/** Whether a string can be written in a style (conservatively: where it surely can). */
const expressible = (style: string, v: string): boolean => {
  switch (style) {
    case "plain":
      return PLAIN_SAFE.test(v) && !v.startsWith("'")
    case "single":
      return !/[ \t]\n|\n[ \t]/.test(v)
    case "double":
    case "basic":
      return true
    case "multiBasic":
      return !holdsFence(v)
    case "literal":
      return !/\p{Cc}/u.test(v.replace(/\t/g, "")) && !v.includes("'")
    case "multiLiteral":
      return !holdsFence(v) && !/\p{Cc}/u.test(v.replace(/[\t\n]/g, "")) && !v.includes("'''") && !v.endsWith("'")
    default:
      return false
  }
}

const laws = (format: "yaml" | "toml") =>
  it.prop(
    `${format}: the written file reads as the edit, every other line stays, the field keeps its style where it can hold the value, and an edit back gives the original bytes`,
    [
      file(format).chain((g) =>
        fc.tuple(
          fc.constant(g),
          fc.nat({ max: g.fields.length - 1 }).chain((i) => fc.tuple(fc.constant(i), newValue(g.fields[i]!.field.kind)))
        )
      ),
      fc.constantFrom("", "crlf", "bom", "bom+crlf")
    ],
    ([[g, [i, value]], variant]) => {
      const { key, start, field } = g.fields[i]!
      const crlf = variant.includes("crlf")
      const text = (variant.includes("bom") ? "\uFEFF" : "") + (crlf ? g.text.replace(/\n/g, "\r\n") : g.text)
      const old = read(text).fields[key]!
      const written = edit(text, key, value)
      // (a) It reads as the edit, the other fields as they were.
      expect(read(written).fields).toStrictEqual({ ...read(text).fields, [key]: value })
      // (b) Every line above and below the edited field is as it was.
      const before = text.split("\n")
      const after = written.split("\n")
      const end = start + field.lines.length
      expect(after.slice(0, start)).toStrictEqual(before.slice(0, start))
      expect(after.slice(after.length - (before.length - end))).toStrictEqual(before.slice(end))
      // (c) The field keeps its style when the value can be written in it.
      const fieldLines = after.slice(start, after.length - (before.length - end)).map((l) => l.replace(/\r$/, ""))
      const shown = styleOf(format, fieldLines[0]!, fieldLines[1])
      // In a file of CRLF lines a raw line break of a TOML string is CRLF: a value of LF breaks is escaped instead.
      const rawBreaks = format === "toml" && crlf && /(^|[^\r])\n/.test(String(value))
      if (
        typeof value === "string" &&
        field.kind === "string" &&
        expressible(field.style, value) &&
        !(rawBreaks && field.style.startsWith("multi"))
      )
        expect(shown).toBe(field.style)
      if (field.kind === "list" && (field.style !== "block" || (value as ReadonlyArray<Json>).length > 0))
        expect(shown).toBe(field.style)
      // (e) A string edited into YAML reads the same to a YAML 1.1 reader (Jekyll's Psych): `yes` stays text.
      if (format === "yaml" && field.kind === "string") {
        const inner = read(written).split.inner
        const in11: unknown = parseDocument(inner, { version: "1.1" }).toJS()
        expect((in11 as Record<string, unknown>)[key]).toStrictEqual(value)
      }
      // (d) An edit back to the old value gives the original bytes, where the old value had one canonical text.
      // (An empty list shows no quotes of its strings, nor a block list its indent: not canonical.)
      if (field.canonical && shown === field.style && !(Array.isArray(value) && value.length === 0))
        expect(edit(written, key, old)).toBe(text)
    },
    runs
  )

describe("an edited field in its file", () => {
  laws("yaml")
  laws("toml")
})

describe("an edited field keeps its style (as real sites write them)", () => {
  it("a TOML literal string stays literal where the new value can be one, else it is a basic string, escaped", () => {
    const text = "+++\ntitle = 'C:\\path' # Windows\ndraft = true\n+++\nBody\n"
    expect(edit(text, "title", "D:\\other")).toBe("+++\ntitle = 'D:\\other' # Windows\ndraft = true\n+++\nBody\n")
    expect(edit(text, "title", "it's")).toBe('+++\ntitle = "it\'s" # Windows\ndraft = true\n+++\nBody\n')
  })

  it("TOML multi-line strings stay multi-line, literal or basic, and the other lines stay", () => {
    const literal = "+++\nsummary = '''\nC:\\path\nmore'''\n# kept\ndraft = true\n+++\nBody\n"
    expect(edit(literal, "summary", "a\\b\nc")).toBe(
      "+++\nsummary = '''\na\\b\nc'''\n# kept\ndraft = true\n+++\nBody\n"
    )
    const basic = '+++\nsummary = """\nline1\nline2"""\n# kept\ndraft = true\n+++\nBody\n'
    expect(edit(basic, "summary", 'a "q"\nb')).toBe(
      '+++\nsummary = """\na "q"\nb"""\n# kept\ndraft = true\n+++\nBody\n'
    )
  })

  it("TOML lists keep their quotes and layout; an inline table's field edits that table on its line", () => {
    expect(edit("+++\ntags = ['a', 'b'] # t\n+++\nBody\n", "tags", ["a", "c"])).toBe(
      "+++\ntags = ['a', 'c'] # t\n+++\nBody\n"
    )
    expect(edit("+++\ntags = [\n  'a',\n  'b',\n]\n# kept\n+++\nBody\n", "tags", ["c"])).toBe(
      "+++\ntags = [\n  'c',\n]\n# kept\n+++\nBody\n"
    )
    expect(edit("+++\n# kept\nparams = { a = 1 } # p\n+++\nBody\n", "params", { a: 2 })).toBe(
      "+++\n# kept\nparams = { a = 2 } # p\n+++\nBody\n"
    )
  })

  it("a YAML plain or single-quoted scalar over several lines stays plain or single-quoted; a value another reader types is quoted", () => {
    const plain = "---\ntitle: a long plain\n  title here\nlayout: post\n---\nBody\n"
    expect(edit(plain, "title", "line\nbreak")).toBe("---\ntitle: line\n\n  break\nlayout: post\n---\nBody\n")
    const single = "---\ntitle: 'a long single\n  title here'\nlayout: post\n---\nBody\n"
    expect(edit(single, "title", "it's")).toBe("---\ntitle: 'it''s'\nlayout: post\n---\nBody\n")
    // `yes`, `~` and `2024-01-01` are a boolean, null and a date to YAML 1.1 readers (Jekyll's Psych).
    expect(edit(plain, "title", "yes")).toBe('---\ntitle: "yes"\nlayout: post\n---\nBody\n')
    // U+2028, U+2029 and NEL, which libyaml (Jekyll) refuses raw, are escaped in double quotes, whatever the style.
    for (const style of ["plain", "'single'", "|\n  block"])
      expect(edit(`---\ntitle: ${style}\n---\nBody\n`, "title", "a\u2028b\u2029c\u0085")).toBe(
        '---\ntitle: "a\\u2028b\\u2029c\\u0085"\n---\nBody\n'
      )
    // A boolean or number edited to text Jekyll would read as one is quoted.
    expect(edit("---\ndraft: true\n---\nBody\n", "draft", "yes")).toBe('---\ndraft: "yes"\n---\nBody\n')
    expect(edit("---\nw: 12\n---\nBody\n", "w", "1_000")).toBe('---\nw: "1_000"\n---\nBody\n')
    expect(edit("---\ndate: 2024-01-01 # d\n---\nBody\n", "date", "2024-02-02")).toBe(
      "---\ndate: 2024-02-02 # d\n---\nBody\n"
    )
  })

  it("a YAML flow list or map stays flow, a block list keeps its indent, with the comment beside it", () => {
    expect(edit("---\ntags: [a, b] # t\nlayout: post\n---\nBody\n", "tags", ["a", "c"])).toBe(
      "---\ntags: [a, c] # t\nlayout: post\n---\nBody\n"
    )
    expect(edit("---\np: { a: 1, b: x } # p\nlayout: post\n---\nBody\n", "p", { a: 2, b: "x" })).toBe(
      "---\np: { a: 2, b: x } # p\nlayout: post\n---\nBody\n"
    )
    expect(edit("---\ntags:\n- a\n- b\nlayout: post\n---\nBody\n", "tags", ["c"])).toBe(
      "---\ntags:\n- c\nlayout: post\n---\nBody\n"
    )
  })
})
