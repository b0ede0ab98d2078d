// Content as it is: any front matter (YAML, TOML, JSON, none) is written back byte for byte, and an edit of one
// field changes only that field's line.
import { it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import { describe, expect } from "vitest"
import { asReadNow, parseContent, renderContent, uneditable, unwritableContent } from "../../src/domain/formats.js"
import { Content } from "../../src/domain/model.js"
import { blankContent } from "../support/content.js"

const runs = { fastCheck: { numRuns: 400 } }

const KEYS = [
  "title",
  "description",
  "author",
  "weight",
  "draft",
  "layout",
  "permalink",
  "linkTitle",
  "aliases",
  "params",
  "date",
  "lastmod",
  "categories",
  "toc"
]
const word = fc.stringMatching(/^[a-z][a-z0-9]{0,7}$/)
const phrase = fc.array(word, { minLength: 1, maxLength: 4 }).map((w) => `v ${w.join(" ")}`)
/** A one-line string that any of the three formats must quote or escape with care. */
const tricky = fc.oneof(
  phrase,
  fc.constantFrom(
    "it's",
    'say "hi"',
    "a: b",
    "#x",
    "- x",
    "yes",
    "null",
    "1.0",
    "漢字 ✓",
    "back\\slash",
    "tab\there",
    "[x]",
    "{y}"
  )
)
const date = fc.constantFrom("2024-01-02", "2013-05-06T10:11:12Z", "2020-12-31T23:59:00+02:00")

/** A YAML value as text: plain, quoted either way, a number, a boolean, a date, a flow or block list, a nested map. */
const yamlValue = (indent: string) =>
  fc.oneof(
    phrase.map((v) => ({ text: ` ${v}`, scalar: true })),
    tricky.map((v) => ({ text: ` ${JSON.stringify(v)}`, scalar: true })),
    tricky
      .filter((v) => !v.includes("\\") && !v.includes("\t"))
      .map((v) => ({ text: ` '${v.replace(/'/g, "''")}'`, scalar: true })),
    fc.integer({ min: -5, max: 5000 }).map((n) => ({ text: ` ${n}`, scalar: true })),
    fc.boolean().map((b) => ({ text: ` ${b}`, scalar: true })),
    date.map((d) => ({ text: ` ${d}`, scalar: true })),
    fc.array(word, { maxLength: 3 }).map((ws) => ({ text: ` [${ws.join(", ")}]`, scalar: false })),
    fc
      .array(phrase, { minLength: 1, maxLength: 3 })
      .map((ws) => ({ text: `\n${ws.map((w) => `${indent}  - ${w}`).join("\n")}`, scalar: false })),
    fc.array(fc.tuple(word, phrase), { minLength: 1, maxLength: 3 }).map((kv) => ({
      text: `\n${[...new Map(kv)].map(([k, v]) => `${indent}  ${k}: ${v}`).join("\n")}`,
      scalar: false
    }))
  )

const comment = fc.option(
  phrase.map((c) => ` # ${c}`),
  { nil: "" }
)
/** MDX: ESM lines, JSX elements and expressions, which are body text like any other. */
const MDX_LINES = [
  "import Tabs from '@theme/Tabs'",
  'import { Since } from "./since.mdx"',
  "export const meta = { title: 'not front matter' }",
  "export default ({ children }) => <main>{children}</main>",
  "{/* a comment */}",
  '<Tabs groupId="os">',
  "  <TabItem value={props.os}>",
  "</Tabs>",
  "<Since v={2} />"
]
const mdxLine = fc.constantFrom(...MDX_LINES)
const body = fc
  .array(fc.oneof(phrase, mdxLine, fc.constantFrom("", "# Heading", "```", "---", "+++", "{", "  indented")), {
    maxLength: 6
  })
  .map((ls) => ls.join("\n"))
const keys = fc.uniqueArray(fc.constantFrom(...KEYS), { minLength: 1, maxLength: 7 })

/** A generated file: its text, and for each top-level field with a one-line value, the line it is on. */
interface Generated {
  readonly text: string
  readonly oneLine: ReadonlyArray<{ readonly key: string; readonly line: number }>
}

const yamlFile: fc.Arbitrary<Generated> = fc
  .tuple(
    keys,
    fc.array(fc.tuple(yamlValue(""), comment, fc.boolean()), { minLength: 7, maxLength: 7 }),
    body,
    fc.boolean()
  )
  .map(([ks, vs, b, blank]) => {
    const lines = ["---"]
    const oneLine: Array<{ key: string; line: number }> = []
    ks.forEach((k, i) => {
      const [v, c, commentLine] = vs[i]!
      if (commentLine) lines.push(`# about ${k}`)
      if (v.scalar) oneLine.push({ key: k, line: lines.length })
      lines.push(...`${k}:${v.text}${v.scalar ? c : ""}`.split("\n"))
    })
    lines.push("---")
    return { text: `${lines.join("\n")}\n${blank ? "\n" : ""}${b}`, oneLine }
  })

const tomlValue = fc.oneof(
  tricky.map((v) => JSON.stringify(v)),
  phrase.map((v) => `'${v}'`),
  fc.integer({ min: -5, max: 5000 }).map(String),
  fc.boolean().map(String),
  date,
  fc.array(word, { maxLength: 3 }).map((ws) => `[${ws.map((w) => `"${w}"`).join(", ")}]`)
)

const tomlFile: fc.Arbitrary<Generated> = fc
  .tuple(
    keys,
    fc.array(fc.tuple(tomlValue, comment), { minLength: 7, maxLength: 7 }),
    fc.array(fc.tuple(word, tomlValue), { maxLength: 3 }),
    body
  )
  .map(([ks, vs, table, b]) => {
    const lines = ["+++"]
    const oneLine: Array<{ key: string; line: number }> = []
    ks.forEach((k, i) => {
      const [v, c] = vs[i]!
      oneLine.push({ key: k, line: lines.length })
      lines.push(`${k} = ${v}${c}`)
    })
    const entries = [...new Map(table)]
    if (entries.length > 0) lines.push("", "[extra]", ...entries.map(([k, v]) => `${k} = ${v}`))
    lines.push("+++")
    return { text: `${lines.join("\n")}\n\n${b}`, oneLine }
  })

const jsonFile: fc.Arbitrary<Generated> = fc
  .tuple(
    keys,
    fc.array(
      fc.oneof(
        tricky,
        fc.integer(),
        fc.boolean(),
        fc.array(word, { maxLength: 2 }),
        fc.dictionary(word, word, { maxKeys: 2 })
      ),
      { minLength: 7, maxLength: 7 }
    ),
    body,
    fc.boolean()
  )
  .map(([ks, vs, b, flat]) => {
    const object = Object.fromEntries(ks.map((k, i) => [k, vs[i]!]))
    // On one line (`{"title":"Hi"}`) every field is on the object's line.
    if (flat) return { text: `${JSON.stringify(object)}\n\n${b}`, oneLine: ks.map((key) => ({ key, line: 0 })) }
    const text = JSON.stringify(object, null, 2)
    const lines = text.split("\n")
    const oneLine = ks.flatMap((k) => {
      const line = lines.findIndex((l) => l.startsWith(`  ${JSON.stringify(k)}: `))
      const v = object[k]
      return typeof v === "object" && v !== null && (Array.isArray(v) ? v.length > 0 : Object.keys(v).length > 0)
        ? []
        : [{ key: k, line }]
    })
    return { text: `${text}\n\n${b}`, oneLine }
  })

/** Template tags a page of Eleventy, Jekyll or Hugo may open with: body text, never front matter. */
const templateTag = fc.constantFrom(
  "{% include note.html %}",
  '{%- callout "info" -%}',
  "{{ page.title }}",
  "{{< note >}}",
  "{{- $x := 1 -}}",
  "{# draft #}"
)
// A file whose first text (after blank lines too) is a fence or a brace has front matter (or a broken one): not
// this case, except a brace opening a template tag.
const noFrontMatter: fc.Arbitrary<Generated> = fc
  .oneof(
    body.filter((b) => !/^[\t\n\r ]*(---|\+\+\+|\{)/.test(b)),
    fc.tuple(templateTag, body).map(([tag, b]) => `${tag}\n${b}`)
  )
  .map((b) => ({ text: b, oneLine: [] }))

/** The same front matter with its language named after the opening dashes, as gray-matter (Eleventy) reads it. */
const languageFile: fc.Arbitrary<Generated> = fc.oneof(
  fc
    .tuple(yamlFile, fc.constantFrom("---yaml", "---yml", "--- YAML"))
    .map(([g, open]) => ({ ...g, text: g.text.replace(/^---/, open) })),
  tomlFile.map((g) => {
    const lines = g.text.split("\n")
    const close = lines.indexOf("+++", 1)
    return { ...g, text: ["---toml", ...lines.slice(1, close), "---", ...lines.slice(close + 1)].join("\n") }
  }),
  jsonFile.map((g) => {
    const end = g.text.startsWith("{\n") ? g.text.indexOf("\n}") + 2 : g.text.indexOf("\n")
    return {
      text: `---json\n${g.text.slice(0, end)}\n---${g.text.slice(end)}`,
      oneLine: g.oneLine.map((o) => ({ ...o, line: o.line + 1 }))
    }
  })
)

/**
 * Blanks before the opening fence or brace, as Hugo skips them: blank lines, lines of spaces or tabs, spaces
 * before the opener on its own line. The one-line fields move down with them.
 */
const lead = fc.constantFrom("", "", "\n", "\n\n", "  \n", "\t\n \n", " ", "\n   ")
const led = (file: fc.Arbitrary<Generated>): fc.Arbitrary<Generated> =>
  fc.tuple(file, lead).map(([g, l]) => {
    const down = l.split("\n").length - 1
    return { text: l + g.text, oneLine: g.oneLine.map((o) => ({ ...o, line: o.line + down })) }
  })
const yamlPage = led(yamlFile)
const tomlPage = led(tomlFile)
const jsonPage = led(jsonFile)
const languagePage = led(languageFile)

const anyFile = fc.oneof(yamlPage, tomlPage, jsonPage, languagePage, noFrontMatter)

// An MDX page may start with imports or an expression (`{/* … */}`): a leading brace is body there, never JSON.
const mdxFile: fc.Arbitrary<Generated> = fc.oneof(
  yamlPage,
  tomlPage,
  languagePage,
  fc.tuple(fc.array(mdxLine, { minLength: 1, maxLength: 3 }), body).map(([top, b]) => ({
    text: `${top.join("\n")}\n\n${b}`,
    oneLine: []
  }))
)
const MD_PATHS = ["post.md", "Post@2x.v1.markdown", "guides/install/index.md", "docs/_index.md"]
const MDX_PATHS = ["intro.mdx", "guides/Tabs.v2.MDX", "api/index.mdx", "learn/_index.mdx"]

/** What an item renders to, where its edit can be written. */
const written = (c: Content): string => {
  const text = renderContent(c)
  if (text === undefined) throw new Error(`${c.path}: the edit cannot be written`)
  return text
}

const parse = (text: string, path = "post.md") => {
  const c = parseContent({ path: `content/blog/${path}`, text }, "blog", path)
  if (Either.isLeft(c)) throw new Error(c.left.map((e) => e.message).join("\n"))
  return c.right
}

describe("content as it is", () => {
  it.prop(
    "render(parse(file)) is the file, byte for byte, whatever its front matter, Markdown or MDX",
    [
      fc.oneof(
        fc.tuple(anyFile, fc.constantFrom(...MD_PATHS)),
        fc.tuple(fc.oneof(anyFile, mdxFile), fc.constantFrom(...MDX_PATHS))
      )
    ],
    ([[g, path]]) => {
      const c = parse(g.text, path)
      expect(written(c)).toBe(g.text)
      // The item held in the database (its head and fields) renders the same bytes.
      expect(written(new Content({ ...c }))).toBe(g.text)
    },
    runs
  )

  it.prop(
    "an edit of one field changes only that field's line, in a Markdown or an MDX page",
    [
      fc.oneof(
        fc.tuple(fc.oneof(yamlPage, tomlPage, jsonPage, languagePage), fc.constantFrom(...MD_PATHS)),
        fc.tuple(fc.oneof(yamlPage, tomlPage, languagePage), fc.constantFrom(...MDX_PATHS))
      ),
      fc.nat(),
      tricky
    ],
    ([[g, path], pick, value]) => {
      if (g.oneLine.length === 0) return
      const { key, line } = g.oneLine[pick % g.oneLine.length]!
      const c = parse(g.text, path)
      const edited = Object.hasOwn(c.extra, key)
        ? new Content({ ...c, extra: { ...c.extra, [key]: value } })
        : new Content({ ...c, [key]: value })
      const before = g.text.split("\n")
      const after = written(edited).split("\n")
      expect(after.length).toBe(before.length)
      const changed = before.flatMap((l, i) => (after[i] === l ? [] : [i]))
      expect(changed.every((i) => i === line)).toBe(true)
      expect(after[line]).toMatch(new RegExp(`(^\\s*"?|[{,]")${key}\\b`))
      // And it reads back as the edit (a known name now holding a value of its column's type is that column).
      const back = parse(after.join("\n"), path)
      expect(back.body).toBe(c.body)
      expect(Object.hasOwn(back.extra, key) ? back.extra[key] : back[key as "title"]).toStrictEqual(value)
    },
    runs
  )

  it.prop(
    "fields added in one edit keep every line the page had: they follow its last field, in the order given",
    [
      fc.oneof(yamlPage, tomlPage, languagePage).filter((g) => !/^\s*(---json|\{)/.test(g.text)),
      fc.array(fc.oneof(tricky, fc.integer(), fc.boolean()), { minLength: 2, maxLength: 4 })
    ],
    ([g, values]) => {
      const c = parse(g.text)
      const added = Object.fromEntries(values.map((v, i) => [`added${i}`, v]))
      const edited = written(new Content({ ...c, extra: { ...c.extra, ...added } }))
      const before = g.text.split("\n")
      const after = edited.split("\n")
      // Every line kept as it was, in its order: the edit only inserted the new fields' lines.
      expect(after.length).toBe(before.length + values.length)
      expect(after.filter((l) => !/^added\d/.test(l))).toStrictEqual(before)
      const back = parse(edited)
      expect(back.body).toBe(c.body)
      // In the order given (TOML keeps a table such as [extra] after the top-level keys, new ones included).
      const ownKeys = Object.keys(back.extra).filter((k) => !Object.hasOwn(added, k))
      expect(ownKeys).toStrictEqual(Object.keys(c.extra))
      expect(Object.keys(back.extra).filter((k) => Object.hasOwn(added, k))).toStrictEqual(Object.keys(added))
      expect(back.extra).toStrictEqual({ ...c.extra, ...added })
    },
    runs
  )

  it("a subagent's front matter given two new fields keeps its quotes, its flow list and the comments on and after its last field", () => {
    const text = [
      "---",
      "name: 'platform-sre'",
      "description: 'SRE-focused: reliability first'",
      "tools: ['codebase', 'edit/editFiles', 'search'] # what it may call",
      "# version: 2026-01-20a",
      "---",
      "",
      "You are an SRE.",
      ""
    ].join("\n")
    const c = parse(text, "platform-sre.md")
    const edited = renderContent(new Content({ ...c, extra: { ...c.extra, enabled: false, model: "sonnet" } }))
    expect(edited).toBe(text.replace("may call\n", "may call\nenabled: false\nmodel: sonnet\n"))
  })

  it.prop(
    "an edited string keeps the quotes it had: single stays single, double stays double, plain stays plain where it can",
    [yamlFile, fc.nat(), tricky],
    ([g, pick, value]) => {
      if (g.oneLine.length === 0) return
      const { key, line } = g.oneLine[pick % g.oneLine.length]!
      const c = parse(g.text)
      const old = Object.hasOwn(c.extra, key) ? c.extra[key] : c[key as "title"]
      if (typeof old !== "string") return
      const edited = Object.hasOwn(c.extra, key)
        ? new Content({ ...c, extra: { ...c.extra, [key]: value } })
        : new Content({ ...c, [key]: value })
      const quoteOf = (l: string) => /^[^:]+:\s*(["']?)/.exec(l)?.[1]
      const before = quoteOf(g.text.split("\n")[line]!)
      const after = quoteOf(written(edited).split("\n")[line]!)
      // A plain value needing quotes (`a: b`, `yes`) gets them; a quoted one keeps its own.
      if (before !== "") expect(after).toBe(before)
    },
    runs
  )

  it("an edited block string stays a block: a literal keeps its lines, a folded one is folded at the width it had", () => {
    const literal = [
      "---",
      "name: humanizer",
      "description: |",
      "  Remove signs of AI-generated writing from text.",
      '  Based on the "Signs of AI writing" guide.',
      "",
      "  Credits: Original skill by @blader",
      "allowed-tools:",
      "  - Read",
      "---",
      "Body",
      ""
    ].join("\n")
    const c = parse(literal)
    const value = `${c.description}Edited in the database.\n`
    expect(written(new Content({ ...c, description: value }))).toBe(
      literal.replace("@blader\n", "@blader\n  Edited in the database.\n")
    )
    const folded = [
      "---",
      "title: CRA",
      "params:",
      "  summary: >",
      "    Use when a user asks what the EU Cyber Resilience Act means for their",
      "    product, whether and when they must report a vulnerability or incident, or",
      "    what a specific CVE triggers legally.",
      "  weight: 3",
      "---",
      "Body",
      ""
    ].join("\n")
    const f = parse(folded)
    const params = f.extra["params"] as { summary: string; weight: number }
    const summary = params.summary.replace("legally.", "legally, and which authority in which member state to tell.")
    expect(written(new Content({ ...f, extra: { params: { ...params, summary } } }))).toBe(
      folded.replace("triggers legally.", "triggers legally, and which authority in which member\n    state to tell.")
    )
    // A subagent's description on one double-quoted line, its line breaks escaped, stays on one line.
    const agent =
      '---\nname: prompt-engineer\ndescription: "Use when:\\n\\n<example>\\nuser: \\"hi\\"\\n</example>"\n---\nBody\n'
    const a = parse(agent)
    expect(a.description).toBe('Use when:\n\n<example>\nuser: "hi"\n</example>')
    expect(written(new Content({ ...a, description: `${a.description}\nEdited.` }))).toBe(
      agent.replace('</example>"', '</example>\\nEdited."')
    )
    // Quoted on several lines, a value is written back quoted, on one line.
    const quoted = "---\ntitle: 'Node.js 18 is now\n  available!'\nlayout: post\n---\nBody\n"
    const q = parse(quoted)
    expect(written(new Content({ ...q, title: "Node.js 18 is here" }))).toBe(
      "---\ntitle: 'Node.js 18 is here'\nlayout: post\n---\nBody\n"
    )
  })

  it("a folded block that was never folded is written on one line, still folded: its short width is not a width", () => {
    const long =
      "A much longer summary, written in the database, that runs well past the width the old one happened to have."
    const short = "---\ndescription: >\n  Short summary.\nlayout: post\n---\nBody\n"
    const s = parse(short)
    expect(written(new Content({ ...s, description: `${long}\n` }))).toBe(
      `---\ndescription: >\n  ${long}\nlayout: post\n---\nBody\n`
    )
    const one = "---\ndescription: >-\n  A\nlayout: post\n---\nBody\n"
    expect(written(new Content({ ...parse(one), description: long }))).toBe(
      `---\ndescription: >-\n  ${long}\nlayout: post\n---\nBody\n`
    )
  })

  it.prop(
    "a file of CRLF or mixed line ends: an edit of one field changes only that field's line, written with the file's line break",
    [
      fc.oneof(yamlPage, tomlPage, jsonPage, languagePage).filter((g) => g.oneLine.length > 0),
      // Which lines end in CRLF: all, all but the first, the first n (front matter from Windows, body not), any.
      fc.oneof(
        fc.constant((_: number) => true),
        fc.constant((i: number) => i > 0),
        fc.nat({ max: 12 }).map((n) => (i: number) => i < n),
        fc.array(fc.boolean(), { minLength: 40, maxLength: 40 }).map((bs) => (i: number) => bs[i % 40]!)
      ),
      fc.nat(),
      tricky
    ],
    ([g, crlf, pick, value]) => {
      const lines = g.text.split("\n")
      const text = lines.map((l, i) => (i < lines.length - 1 && crlf(i) ? `${l}\r` : l)).join("\n")
      const { key, line } = g.oneLine[pick % g.oneLine.length]!
      const c = parse(text)
      const edited = written(
        Object.hasOwn(c.extra, key)
          ? new Content({ ...c, extra: { ...c.extra, [key]: value } })
          : new Content({ ...c, [key]: value })
      )
      const before = text.split("\n")
      const after = edited.split("\n")
      expect(after.length).toBe(before.length)
      expect(before.flatMap((l, i) => (after[i] === l ? [] : [i])).every((i) => i === line)).toBe(true)
      // The line break after a JSON object on one line is not the object's: the edit leaves it as it was.
      const ownBreak =
        c.format === "json" && c.head!.trimStart().startsWith("{") && before[line]!.trimStart().startsWith("{")
      if (after[line] !== before[line])
        expect(after[line]!.endsWith("\r")).toBe(ownBreak ? before[line]!.endsWith("\r") : crlf(0) && lines.length > 1)
      const back = parse(edited)
      expect(back.body).toBe(c.body)
      expect(Object.hasOwn(back.extra, key) ? back.extra[key] : back[key as "title"]).toStrictEqual(value)
    },
    runs
  )

  it.prop(
    "a file of CRLF lines stays one after a field is added, in whichever front matter",
    [fc.oneof(yamlPage, tomlPage, jsonPage, languagePage, noFrontMatter).filter((g) => g.text.includes("\n")), tricky],
    ([g, value]) => {
      const text = g.text.replace(/\n/g, "\r\n")
      const c = parse(text)
      const edited = written(new Content({ ...c, extra: { ...c.extra, summary: value } }))
      expect(edited).not.toMatch(/(^|[^\r])\n/)
      expect(parse(edited).body).toBe(c.body)
    },
    runs
  )

  it.prop(
    "a page opening with a template tag has no front matter, and is written back as it is",
    [noFrontMatter, fc.constantFrom(...MD_PATHS, ...MDX_PATHS)],
    ([g, path]) => {
      const c = parse(g.text, path)
      expect([c.format, c.head, c.body]).toStrictEqual(["none", "", g.text])
      expect(written(new Content({ ...c }))).toBe(g.text)
    },
    runs
  )

  it("a line written into a file of CRLF lines ends in CRLF; a multi-line string's own LF is kept", () => {
    const text = "+++\r\ntitle = 'a'\r\nnote = '''\nx\ny'''\r\n+++\r\nbody\r\n"
    const c = parse(text)
    expect(c.extra["note"]).toBe("x\ny")
    expect(written(new Content({ ...c, title: "Hi" }))).toBe(text.replace("title = 'a'", "title = 'Hi'"))
  })

  it("an edited item that had no front matter gets YAML front matter with the changed field only", () => {
    const c = parse("# Install\n\nSteps.\n", "guides/install.md")
    expect(c.title).toBe("Install")
    expect(c.slug).toBe("guides/install")
    expect(written(new Content({ ...c, description: "How to" }))).toBe(
      "---\ndescription: How to\n---\n\n# Install\n\nSteps.\n"
    )
  })

  it("an MDX page keeps its imports, exports, expressions and JSX in the body; a leading brace is not JSON", () => {
    const text = "{/* generated */}\nimport Tabs from '@theme/Tabs'\n\n# Install\n\n<Tabs>\n  {props.os}\n</Tabs>\n"
    const c = parse(text, "guides/install.mdx")
    expect([c.format, c.head, c.body, c.title, c.slug, c.path]).toStrictEqual([
      "none",
      "",
      text,
      "Install",
      "guides/install",
      "guides/install.mdx"
    ])
    const edited = written(new Content({ ...c, description: "How to" }))
    expect(edited).toBe(`---\ndescription: How to\n---\n\n${text}`)
    // The same text as a Markdown page is broken JSON front matter, refused at its line.
    const md = parseContent({ path: "content/blog/install.md", text }, "blog", "install.md")
    expect(Either.isLeft(md) && md.left.map((e) => e.line)).toStrictEqual([1])
    const yaml = `---\ntitle: Tabs\n---\nimport Tabs from '@theme/Tabs'\n\n<Tabs />\n`
    const y = parse(yaml, "tabs.mdx")
    expect([y.format, y.title, y.body]).toStrictEqual(["yaml", "Tabs", "import Tabs from '@theme/Tabs'\n\n<Tabs />\n"])
    expect(written(new Content({ ...y, title: "Tabbed" }))).toBe(yaml.replace("title: Tabs", "title: Tabbed"))
  })

  it("a page opening with a template tag ({% … %}, {{ … }}) has no front matter; a JSON object still is one", () => {
    // Eleventy and Jekyll pages may start with a Liquid or Nunjucks tag: it can never be JSON, so it is body.
    for (const text of [
      '{% callout "info" %}This page has moved.{% endcallout %}\n',
      "{{ page.title }}\n\nBody\n",
      "{%- include note.md -%}\r\n# Note\r\n"
    ]) {
      const c = parse(text, "docs/moved.md")
      expect([c.format, c.head, c.body]).toStrictEqual(["none", "", text])
      expect(written(c)).toBe(text)
    }
    expect(parse('{\n  "title": "Hi"\n}\n\nBody\n').title).toBe("Hi")
    expect(parse("{}\nBody\n").format).toBe("json")
    // A JSON object that does not read is still refused, at its line.
    const bad = parseContent({ path: "content/blog/x.md", text: '{\n  "title": "Hi",\n}\nBody\n' }, "blog", "x.md")
    expect(Either.isLeft(bad) && bad.left.map((e) => [e.line, e.message.includes("invalid JSON")])).toStrictEqual([
      [3, true]
    ])
    // Only `{%`, `{{` and `{#` open a template tag: any other leading brace is JSON, refused when it is not.
    for (const text of ["{'title': 'x'}\n\nBody\n", '{ title: "x" }\n\nBody\n', "{\ntitle: x\n}\nBody\n"]) {
      const r = parseContent({ path: "content/blog/x.md", text }, "blog", "x.md")
      expect(
        Either.isLeft(r) && r.left.map((e) => /^content\/blog\/x\.md:\d: invalid JSON/.test(e.message))
      ).toStrictEqual([true])
    }
  })

  it("front matter named ---json, ---toml or ---yaml is read in that language; ---js is code, and body", () => {
    const json = '---json\n{\n  "title": "Hi",\n  "eleventyNavigation": {\n    "key": "Hi"\n  }\n}\n---\n\n# Body\n'
    const j = parse(json)
    expect([j.format, j.title, j.extra, j.body]).toStrictEqual([
      "json",
      "Hi",
      { eleventyNavigation: { key: "Hi" } },
      "# Body\n"
    ])
    expect(written(new Content({ ...j, title: "Hello" }))).toBe(json.replace('"Hi",', '"Hello",'))
    const toml = "---toml\r\ntitle = 'Hi'\r\nweight = 3\r\n---\r\nBody\r\n"
    const t = parse(toml)
    expect([t.format, t.title, t.extra]).toStrictEqual(["toml", "Hi", { weight: 3 }])
    expect(written(new Content({ ...t, extra: { weight: 4 } }))).toBe(toml.replace("3", "4"))
    // JavaScript front matter cannot be read as data: the page is body as a whole, kept byte for byte.
    const js = "---js\nconst pagination = { data: 'authors', size: 1 }\n---\n# Authors\n"
    const s = parse(js)
    expect([s.format, s.head, s.body, written(s)]).toStrictEqual(["none", "", js, js])
    // Its fields edited, it cannot be written (YAML above the code would be read instead of it): refused, at line 1.
    expect(unwritableContent(s, written(s))).toBeUndefined()
    for (const open of ["---js", "---javascript", "---coffee", "--- JS"]) {
      const code = parse(js.replace("---js", open), "authors.md")
      expect(unwritableContent(code, written(new Content({ ...code, title: "People" })))).toBe(
        `content/blog/authors.md:1: front matter in ${open.slice(3).trim()} cannot be written from the database; the file is left as it is`
      )
    }
    const data = parse('---json\n{ "title": "Hi" }\n---\nBody\n')
    expect(unwritableContent(data, written(new Content({ ...data, title: "Hello" })))).toBeUndefined()
    // A named fence is closed by plain dashes; never closed, it is refused at its line, naming the closing fence.
    const open = parseContent({ path: "content/blog/x.md", text: '---json\n{ "title": "Hi" }\n' }, "blog", "x.md")
    expect(Either.isLeft(open) && open.left.map((e) => [e.line, e.message])).toStrictEqual([
      [1, "content/blog/x.md:1: front matter opened here is never closed (no closing '---' line)"]
    ])
  })

  it("keeps fields agentsync does not know, in order, with nested maps and lists; dates as written", () => {
    const text =
      "---\ntitle: Hello\nweight: 10\nparams:\n  math: true\n  list: [1, 2]\ndate: 2013-05-06 00:00:00 +0000\npublished_at: 2025-03-01 10:00\n---\nBody\n"
    const c = parse(text)
    expect(Object.keys(c.extra)).toStrictEqual(["weight", "params", "date"])
    expect(c.extra["params"]).toStrictEqual({ math: true, list: [1, 2] })
    expect(c.extra["date"]).toBe("2013-05-06 00:00:00 +0000")
    expect(c.published_at).toBe("2025-03-01 10:00")
    const nested = written(new Content({ ...c, extra: { ...c.extra, params: { math: false, list: [1, 2] } } }))
    expect(nested).toBe(text.replace("math: true", "math: false"))
  })
})

describe("front matter after blank lines (Hugo skips blanks before the opening fence)", () => {
  const hugo = "\n\n---\ntitle: Install\nweight: 20\n---\n\n# Install\n\nSteps.\n"

  it("a page whose front matter follows blank lines: its fields are read, and an edit keeps the blank lines and writes no second block", () => {
    const c = parse(hugo, "guides/install.md")
    expect([c.format, c.head, c.title, c.extra, c.body]).toStrictEqual([
      "yaml",
      "\n\n---\ntitle: Install\nweight: 20\n---\n\n",
      "Install",
      { weight: 20 },
      "# Install\n\nSteps.\n"
    ])
    expect(written(new Content({ ...c }))).toBe(hugo)
    const edited = written(new Content({ ...c, title: "Installing", extra: { weight: 30 } }))
    expect(edited).toBe("\n\n---\ntitle: Installing\nweight: 30\n---\n\n# Install\n\nSteps.\n")
    expect(edited.match(/^---$/gm)).toHaveLength(2)
    // A field added goes into the same block.
    expect(written(new Content({ ...c, description: "How to" }))).toBe(
      hugo.replace("weight: 20\n", "weight: 20\ndescription: How to\n")
    )
  })

  it("TOML, JSON and named fences after blanks, with CRLF, spaces and tabs, an indented opener: read, kept byte for byte, edited in place", () => {
    const pages: ReadonlyArray<readonly [string, string, string]> = [
      ["\r\n\r\n+++\r\ntitle = 'A'\r\n+++\r\nBody\r\n", "toml", "\r\n\r\n+++\r\ntitle = 'B'\r\n+++\r\nBody\r\n"],
      ['  \n\t\n{\n  "title": "A"\n}\n\nBody\n', "json", '  \n\t\n{\n  "title": "B"\n}\n\nBody\n'],
      ['\n---json\n{ "title": "A" }\n---\nBody\n', "json", '\n---json\n{"title":"B"}\n---\nBody\n'],
      ["   ---\ntitle: A\n---\nBody\n", "yaml", "   ---\ntitle: B\n---\nBody\n"],
      ["\uFEFF\n---\ntitle: A\n---\nBody\n", "yaml", "\uFEFF\n---\ntitle: B\n---\nBody\n"]
    ]
    for (const [text, format, edited] of pages) {
      const c = parse(text)
      expect([c.format, c.title, c.body]).toStrictEqual([format, "A", text.includes("\r") ? "Body\r\n" : "Body\n"])
      expect(written(new Content({ ...c }))).toBe(text)
      expect(written(new Content({ ...c, title: "B" }))).toBe(edited)
    }
  })

  it("an edit TOML cannot hold (a null) is refused, never written as YAML in the place of the TOML", () => {
    const c = new Content({ ...parse("\n\n+++\ntitle = 'A'\n+++\nBody\n"), extra: { note: null } })
    expect(renderContent(c)).toBeUndefined()
    expect(uneditable(c)).toBe(
      "content/blog/post.md:1: this edit of its TOML front matter cannot be written from the database (no text in that format reads back as the database's fields); the file is left as it is"
    )
  })

  it("a TOML string whose line is a fence is written on one line, so the page still closes where it did", () => {
    for (const [text, value] of [
      ["+++\ndescription = '''\nline one\nline two'''\n+++\nBody\n", "Intro\n+++\nrest"],
      ["---toml\ndescription = '''\nline one'''\n---\nBody\n", "Intro\n---\nrest"],
      ['+++\ndescription = """\nline one"""\n+++\nBody\n', "Intro\n+++  \nrest"]
    ] as const) {
      const c = parse(text)
      const edited = written(new Content({ ...c, description: value }))
      expect(edited.endsWith("\nBody\n")).toBe(true)
      expect(parse(edited).description).toBe(value)
    }
  })

  it("a page whose first text is not an opener stays body; a template tag after blanks is body", () => {
    for (const text of ["\n\n# Title\n\n---\n", "\n  - item\n", "\n\n{{< note >}}\n\nBody\n", "\n{% include x %}\n"]) {
      const c = parse(text)
      expect([c.format, c.head, c.body]).toStrictEqual(["none", "", text])
      expect(written(new Content({ ...c }))).toBe(text)
    }
    // In an MDX page a brace after blanks is an expression, body.
    expect(parse("\n{/* note */}\n# T\n", "x.mdx").format).toBe("none")
  })

  it("a VT or FF before the opener is text, as Hugo's lexer reads it (it skips only space, tab, CR, LF): the page is body", () => {
    for (const text of [
      "\v---\ntitle: A\n---\nB",
      "\f---\ntitle: A\n---\nB",
      "\n\f+++\ntitle = 'A'\n+++\nB",
      '\v{"title":"A"}\nB'
    ]) {
      const c = parse(text)
      expect([c.format, c.head, c.title, c.body]).toStrictEqual(["none", "", "post", text])
      expect(asReadNow(blankContent({ source: "blog", slug: "post", path: "post.md", body: text })).format).toBe("none")
    }
  })

  // Hugo fails on these pages and Jekyll and gray-matter read them as body, as earlier versions did: refusing them
  // would protect no one and leave rows that never sync again.
  const notFrontMatter = [
    "\n\n---\n\nSome paragraph text\n\n---\n\nMore\n", // a rule, a paragraph, a rule: not a map of fields
    "\n\n---\n\n# Title\n\ntext\n", // a rule never closed
    "\n---\ntitle: a: b\n---\n", // invalid YAML
    "\r\n+++\r\ntitle = \r\n+++\r\nBody\r\n", // invalid TOML
    "\n\n{ title: x }\nBody\n", // a brace that is not JSON
    '\n{ "title": "x"\nBody\n', // a brace never closed
    "  ---\n\nText\n", // an indented rule never closed
    "\uFEFF\n---\n\nText\n"
  ]

  it("an opener after blanks that is never closed or does not read as a map of fields: the page is body, as read before", () => {
    for (const text of notFrontMatter) {
      const c = parse(text)
      const bom = text.startsWith("\uFEFF") ? "\uFEFF" : ""
      expect([c.format, c.head, c.body]).toStrictEqual(["none", bom, text.slice(bom.length)])
      expect(written(new Content({ ...c }))).toBe(text)
    }
    // At the first byte the same blocks are refused, at the opener's line or the bad one's.
    for (const text of notFrontMatter.map((t) => t.replace(/^\uFEFF?[\t\n\r ]+/, ""))) {
      const r = parseContent({ path: "content/blog/x.md", text }, "blog", "x.md")
      expect(Either.isLeft(r) && r.left.length).toBe(1)
    }
  })

  it("such a page edited in the database gets a block at its first byte, above the page kept whole", () => {
    for (const text of notFrontMatter) {
      const c = parse(text)
      const edited = written(new Content({ ...c, title: "X" }))
      expect(unwritableContent(c, edited)).toBeUndefined()
      const bom = text.startsWith("\uFEFF") ? "\uFEFF" : ""
      const nl = text.includes("\r\n") ? "\r\n" : "\n"
      expect(edited).toBe(`${bom}---${nl}title: X${nl}---${nl}${nl}${text.slice(bom.length)}`)
      const back = parse(edited)
      expect([back.format, back.title, back.body]).toStrictEqual(["yaml", "X", c.body])
    }
  })

  it("---js after blank lines is body, and an edit of its fields is refused at the fence's line", () => {
    const js = "\n\n---js\nconst x = 1\n---\n# Authors\n"
    const c = parse(js, "authors.md")
    expect([c.format, c.head, c.body, written(c)]).toStrictEqual(["none", "", js, js])
    expect(unwritableContent(c, written(new Content({ ...c, title: "People" })))).toBe(
      "content/blog/authors.md:3: front matter in js cannot be written from the database; the file is left as it is"
    )
  })

  /** A row as an earlier version stored the page: no front matter, the whole page its body. */
  const stored = (text: string, path = "guides/install.md") =>
    blankContent({ source: "blog", slug: path.replace(/\.md$/, ""), path, title: "Install", body: text })

  it("a row stored by an earlier version (the page's front matter in its body) is read as the page now reads", () => {
    const old = stored(hugo)
    const now = asReadNow(old)
    const page = parse(hugo, "guides/install.md")
    expect({ ...now }).toStrictEqual({ ...page })
    expect(written(now)).toBe(hugo)
    // An item already read this way, or with no blank line first, is as it was.
    expect(asReadNow(page)).toBe(page)
    const plain = parse("# Install\n\nSteps.\n", "guides/install.md")
    expect(asReadNow(plain)).toBe(plain)
    // A row whose page still reads as body (a template tag, ---js) stays as it is.
    const tag = stored("\n{{< note >}}\n")
    expect(asReadNow(tag)).toBe(tag)
  })

  it("an old row edited in the database: the edit lands in the block in place, the other fields and the blank lines kept, no second block", () => {
    const text = "\n\n---\ntitle: Install\ndescription: Steps\nweight: 20\n---\n\n# Install\n\nSteps.\n"
    // The old reading derived the title from the heading and had no description: the row changed the title only.
    const titled = asReadNow(new Content({ ...stored(text), title: "Installing" }))
    expect(written(titled)).toBe(text.replace("title: Install\n", "title: Installing\n"))
    // A description left at the old reading's "" is no change: the page's own is kept. An extra field is added.
    const extra = asReadNow(new Content({ ...stored(text), extra: { draft: true } }))
    expect([extra.description, extra.extra]).toStrictEqual(["Steps", { weight: 20, draft: true }])
    expect(written(extra)).toBe(text.replace("weight: 20\n", "weight: 20\ndraft: true\n"))
    // The body edited below the block: the block is still read from it.
    const body = asReadNow(new Content({ ...stored(text), body: text.replace("Steps.", "Three steps.") }))
    expect(written(body)).toBe(text.replace("Steps.", "Three steps."))
    expect(unwritableContent(body, written(body))).toBeUndefined()
  })
})
