import { it } from "@effect/vitest"
import { Either, FastCheck as fc, Schema } from "effect"
import { describe, expect } from "vitest"
import { parseDocument, stringify } from "yaml"
import { fastParseYaml, fastRenderYaml } from "../../src/domain/fastYaml.js"
import { decodeYaml, decodeYamlFile, parseYaml } from "../../src/domain/formats/yaml.js"

const runs = { fastCheck: { numRuns: 3000 } }

/** The library's reading of a document, the way formats.ts reads it; undefined when it reports errors. */
const full = (text: string): unknown => {
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true })
  return doc.errors.length > 0 ? undefined : doc.toJS({ maxAliasCount: 100 })
}
const render = (value: unknown) =>
  stringify(value, { lineWidth: 0, minContentWidth: 0, indent: 2, aliasDuplicateObjects: false, blockQuote: false })

/** Strings that stress YAML quoting (as in formats.test.ts), plus the scalars the core schema types. */
const nasty = fc.oneof(
  fc.string(),
  fc.string({ unit: "grapheme" }),
  fc.constantFrom(
    "",
    "-",
    "- x",
    "-x",
    "?x",
    ":x",
    "x:",
    "---",
    "--- x",
    "...",
    "%x",
    ": x",
    "a: b",
    "a:b",
    "#c",
    "a #c",
    "a#c",
    "'",
    '"',
    "a'b",
    'a"b',
    "a'b\"c",
    "\\",
    "\n",
    " lead",
    "trail ",
    "\t",
    "yes",
    "no",
    "null",
    "Null",
    "~",
    "true",
    "False",
    "1e3",
    "0x1F",
    "0o7",
    "+1",
    "10",
    "0",
    "007",
    "-3",
    "12345678901234567",
    "-1.5",
    ".5",
    ".inf",
    ".NaN",
    "2025-03-01",
    "@x",
    "`x`",
    "|",
    ">",
    "{a}",
    "[b]",
    "x]",
    "a, b",
    "*x",
    "&y",
    "!z",
    "%",
    "é 漢字 🚀",
    "a\r\nb",
    "\u2028",
    "\u00a0x",
    "\ufeffbom",
    "“q”"
  ),
  fc
    .array(
      fc.constantFrom(
        "a",
        " ",
        "\n",
        ":",
        "-",
        "#",
        "'",
        '"',
        "\\",
        "\t",
        "é",
        "🚀",
        "\r",
        "[",
        "{",
        ",",
        "0",
        ".",
        "~"
      ),
      { maxLength: 12 }
    )
    .map((cs) => cs.join(""))
)
const keyArb = fc.constantFrom(
  "title",
  "slug",
  "kind",
  "description",
  "tags",
  "image",
  "public",
  "a_b",
  "_",
  "null",
  "true",
  "x1",
  "linkTitle",
  "allowed-tools",
  "Weight",
  "y",
  "No"
)
const valueArb = fc.oneof(nasty, fc.constantFrom(null, true, false), fc.array(nasty, { maxLength: 4 }))
const mapArb = fc.dictionary(keyArb, valueArb, { minKeys: 1, maxKeys: 8 })

/** Lines that look like the subset, and lines that almost do, for documents nobody rendered. */
const lineArb = fc.oneof(
  fc.tuple(keyArb, nasty).map(([k, v]) => `${k}: ${v}`),
  fc.tuple(keyArb, nasty).map(([k, v]) => `${k}: "${v}"`),
  fc.tuple(keyArb, nasty).map(([k, v]) => `${k}: '${v}'`),
  keyArb.map((k) => `${k}:`),
  nasty.map((v) => `  - ${v}`),
  nasty.map((v) => `  - "${v}"`),
  nasty.map((v) => `- ${v}`),
  nasty.map((v) => `    ${v}`),
  fc.constantFrom(
    "",
    "#c",
    "---",
    "...",
    "k: []",
    "k: {}",
    "k: [a]",
    "k: &a x",
    "k: *a",
    "k: !!str 1",
    "k: |",
    "  x",
    "k:  x",
    "k :x",
    "__proto__: x",
    "k: x # c"
  )
)
const textArb = fc.array(lineArb, { minLength: 1, maxLength: 8 }).map((ls) => `${ls.join("\n")}\n`)

describe("fast YAML", () => {
  // A project file's shape: any text decodes as through the library alone, value or problems (the fast path is taken
  // only for a flat map the schema accepts).
  const Flat = Schema.Struct({
    a: Schema.optional(Schema.String),
    b: Schema.optional(Schema.Union(Schema.String, Schema.Number, Schema.Boolean, Schema.Null)),
    c: Schema.optional(Schema.Array(Schema.String))
  })
  const ABC = fc.constantFrom("a", "b", "c", "d")
  const projectText = fc
    .array(fc.tuple(ABC, fc.oneof(nasty, fc.constant("[]"), fc.constant(""))), { maxLength: 4 })
    .map((kv) => kv.map(([k, v]) => (v === "" ? `${k}:\n  - x` : `${k}: ${v}`)).join("\n"))
  it.prop(
    "decodeYamlFile gives what the library's reading gives, on any text",
    [fc.oneof(projectText, textArb)],
    ([text]) => {
      const file = { path: "agentsync.yaml", text }
      const byLibrary = () =>
        Either.flatMap(parseYaml(file), (y) => decodeYaml(Flat, file, y, y.doc.toJS({ maxAliasCount: 100 }) ?? {}))
      let expected: ReturnType<typeof byLibrary>
      try {
        expected = byLibrary()
      } catch {
        // The library throws on some texts (an alias never anchored): so does the reader, as it did.
        expect(() => decodeYamlFile(Flat, file)).toThrow()
        return
      }
      const got = decodeYamlFile(Flat, file)
      // The same value, or problems in both (the library's, which the fast path never words).
      if (Either.isRight(expected)) expect(got).toStrictEqual(expected)
      else expect(Either.isLeft(got)).toBe(true)
    },
    runs
  )

  it.prop(
    "a rendered flat map parses to the library's value",
    [mapArb],
    ([m]) => {
      const text = render(m)
      const fast = fastParseYaml(text)
      if (fast !== undefined) expect(fast).toStrictEqual(full(text))
    },
    runs
  )

  it.prop(
    "on any text it declines or agrees with the library (which then reports no error)",
    [textArb],
    ([text]) => {
      const fast = fastParseYaml(text)
      if (fast === undefined) return
      const expected = full(text)
      expect(expected).not.toBeUndefined()
      expect(fast).toStrictEqual(expected)
    },
    runs
  )

  it.prop(
    "rendering declines or is byte-identical to the library, and parses back",
    [mapArb],
    ([m]) => {
      const fast = fastRenderYaml(m)
      if (fast === undefined) return
      expect(fast).toBe(render(m))
      expect(full(fast)).toStrictEqual(m)
    },
    runs
  )

  it("takes the fast path for ordinary front matter, both ways", () => {
    const fm = {
      title: "Post 1: notes on “syncing” things",
      slug: "post-00001",
      kind: "article",
      description: "It's the first.",
      author: 'say "hi"',
      keywords: ["sync", "k1"],
      image: null,
      public: true,
      tags: [],
      published_at: "2025-03-01",
      updated_at: "2025-03-02T10:00:00Z"
    }
    const text = fastRenderYaml(fm)
    expect(text).toBe(render(fm))
    expect(fastParseYaml(text!)).toStrictEqual(fm)
  })

  it("the properties above exercise the fast paths, not only the fallbacks", () => {
    const maps = fc.sample(mapArb, 2000)
    const rendered = maps.filter((m) => fastRenderYaml(m) !== undefined).length
    const parsed = maps.filter((m) => fastParseYaml(render(m)) !== undefined).length
    const texts = fc.sample(textArb, 2000).filter((t) => fastParseYaml(t) !== undefined).length
    expect(rendered).toBeGreaterThan(200)
    expect(parsed).toBeGreaterThan(200)
    expect(texts).toBeGreaterThan(20)
  })

  it("declines what it does not fully understand", () => {
    expect(fastParseYaml("weight: 10\nn: 0\n")).toStrictEqual({ weight: 10, n: 0 })
    for (const text of [
      "k: 01\n",
      "k: +1\n",
      "k: 1.5\n",
      "k: 12345678901234567\n",
      "k: ~\n",
      "k: True\n",
      "k: a # c\n",
      'k: "a\\tb"\n',
      "k: [a]\n",
      "k: &x a\n",
      "k:\n",
      "k: a\n  b\n",
      "k: a\n  - b\n",
      "k: a\nk: b\n",
      "k: a\r\n",
      "\n",
      "k: a\n\n"
    ]) {
      expect(fastParseYaml(text), text).toBeUndefined()
    }
    for (const v of [": \\", "'a\"b", "\t", "---", "x\n"]) expect(fastRenderYaml({ k: v }), v).toBeUndefined()
  })
})
