// Content as it is: any front matter (YAML, TOML, JSON, none) is written back byte for byte, and an edit of one
// field changes only that field's line.
import { it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import { describe, expect } from "vitest"
import { parseContent, renderContent, unwritableContent } from "../../src/domain/formats.js"
import { Content } from "../../src/domain/model.js"

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
// A file whose first line is a fence or a brace has front matter (or a broken one): not this case, except a brace
// opening a template tag.
const noFrontMatter: fc.Arbitrary<Generated> = fc
  .oneof(
    body.filter((b) => !/^(---|\+\+\+|\{)/.test(b)),
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

const anyFile = fc.oneof(yamlFile, tomlFile, jsonFile, languageFile, noFrontMatter)

// An MDX page may start with imports or an expression (`{/* … */}`): a leading brace is body there, never JSON.
const mdxFile: fc.Arbitrary<Generated> = fc.oneof(
  yamlFile,
  tomlFile,
  languageFile,
  fc.tuple(fc.array(mdxLine, { minLength: 1, maxLength: 3 }), body).map(([top, b]) => ({
    text: `${top.join("\n")}\n\n${b}`,
    oneLine: []
  }))
)
const MD_PATHS = ["post.md", "Post@2x.v1.markdown", "guides/install/index.md", "docs/_index.md"]
const MDX_PATHS = ["intro.mdx", "guides/Tabs.v2.MDX", "api/index.mdx", "learn/_index.mdx"]

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
      expect(renderContent(c)).toBe(g.text)
      // The item held in the database (its head and fields) renders the same bytes.
      expect(renderContent(new Content({ ...c }))).toBe(g.text)
    },
    runs
  )

  it.prop(
    "an edit of one field changes only that field's line, in a Markdown or an MDX page",
    [
      fc.oneof(
        fc.tuple(fc.oneof(yamlFile, tomlFile, jsonFile, languageFile), fc.constantFrom(...MD_PATHS)),
        fc.tuple(fc.oneof(yamlFile, tomlFile, languageFile), fc.constantFrom(...MDX_PATHS))
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
      const after = renderContent(edited).split("\n")
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
      const after = quoteOf(renderContent(edited).split("\n")[line]!)
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
    expect(renderContent(new Content({ ...c, description: value }))).toBe(
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
    expect(renderContent(new Content({ ...f, extra: { params: { ...params, summary } } }))).toBe(
      folded.replace("triggers legally.", "triggers legally, and which authority in which member\n    state to tell.")
    )
    // A subagent's description on one double-quoted line, its line breaks escaped, stays on one line.
    const agent =
      '---\nname: prompt-engineer\ndescription: "Use when:\\n\\n<example>\\nuser: \\"hi\\"\\n</example>"\n---\nBody\n'
    const a = parse(agent)
    expect(a.description).toBe('Use when:\n\n<example>\nuser: "hi"\n</example>')
    expect(renderContent(new Content({ ...a, description: `${a.description}\nEdited.` }))).toBe(
      agent.replace('</example>"', '</example>\\nEdited."')
    )
    // Quoted on several lines, a value is written back quoted, on one line.
    const quoted = "---\ntitle: 'Node.js 18 is now\n  available!'\nlayout: post\n---\nBody\n"
    const q = parse(quoted)
    expect(renderContent(new Content({ ...q, title: "Node.js 18 is here" }))).toBe(
      "---\ntitle: 'Node.js 18 is here'\nlayout: post\n---\nBody\n"
    )
  })

  it("a folded block that was never folded is written on one line, still folded: its short width is not a width", () => {
    const long =
      "A much longer summary, written in the database, that runs well past the width the old one happened to have."
    const short = "---\ndescription: >\n  Short summary.\nlayout: post\n---\nBody\n"
    const s = parse(short)
    expect(renderContent(new Content({ ...s, description: `${long}\n` }))).toBe(
      `---\ndescription: >\n  ${long}\nlayout: post\n---\nBody\n`
    )
    const one = "---\ndescription: >-\n  A\nlayout: post\n---\nBody\n"
    expect(renderContent(new Content({ ...parse(one), description: long }))).toBe(
      `---\ndescription: >-\n  ${long}\nlayout: post\n---\nBody\n`
    )
  })

  it.prop(
    "a file of CRLF or mixed line ends: an edit of one field changes only that field's line, written with the file's line break",
    [
      fc.oneof(yamlFile, tomlFile, jsonFile, languageFile).filter((g) => g.oneLine.length > 0),
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
      const edited = renderContent(
        Object.hasOwn(c.extra, key)
          ? new Content({ ...c, extra: { ...c.extra, [key]: value } })
          : new Content({ ...c, [key]: value })
      )
      const before = text.split("\n")
      const after = edited.split("\n")
      expect(after.length).toBe(before.length)
      expect(before.flatMap((l, i) => (after[i] === l ? [] : [i])).every((i) => i === line)).toBe(true)
      if (after[line] !== before[line]) expect(after[line]!.endsWith("\r")).toBe(crlf(0) && lines.length > 1)
      const back = parse(edited)
      expect(back.body).toBe(c.body)
      expect(Object.hasOwn(back.extra, key) ? back.extra[key] : back[key as "title"]).toStrictEqual(value)
    },
    runs
  )

  it.prop(
    "a file of CRLF lines stays one after a field is added, in whichever front matter",
    [fc.oneof(yamlFile, tomlFile, jsonFile, languageFile, noFrontMatter).filter((g) => g.text.includes("\n")), tricky],
    ([g, value]) => {
      const text = g.text.replace(/\n/g, "\r\n")
      const c = parse(text)
      const edited = renderContent(new Content({ ...c, extra: { ...c.extra, summary: value } }))
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
      expect(renderContent(new Content({ ...c }))).toBe(g.text)
    },
    runs
  )

  it("a line written into a file of CRLF lines ends in CRLF; a multi-line string's own LF is kept", () => {
    const text = "+++\r\ntitle = 'a'\r\nnote = '''\nx\ny'''\r\n+++\r\nbody\r\n"
    const c = parse(text)
    expect(c.extra["note"]).toBe("x\ny")
    expect(renderContent(new Content({ ...c, title: "Hi" }))).toBe(text.replace("title = 'a'", 'title = "Hi"'))
  })

  it("an edited item that had no front matter gets YAML front matter with the changed field only", () => {
    const c = parse("# Install\n\nSteps.\n", "guides/install.md")
    expect(c.title).toBe("Install")
    expect(c.slug).toBe("guides/install")
    expect(renderContent(new Content({ ...c, description: "How to" }))).toBe(
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
    const edited = renderContent(new Content({ ...c, description: "How to" }))
    expect(edited).toBe(`---\ndescription: How to\n---\n\n${text}`)
    // The same text as a Markdown page is broken JSON front matter, refused at its line.
    const md = parseContent({ path: "content/blog/install.md", text }, "blog", "install.md")
    expect(Either.isLeft(md) && md.left.map((e) => e.line)).toStrictEqual([1])
    const yaml = `---\ntitle: Tabs\n---\nimport Tabs from '@theme/Tabs'\n\n<Tabs />\n`
    const y = parse(yaml, "tabs.mdx")
    expect([y.format, y.title, y.body]).toStrictEqual(["yaml", "Tabs", "import Tabs from '@theme/Tabs'\n\n<Tabs />\n"])
    expect(renderContent(new Content({ ...y, title: "Tabbed" }))).toBe(yaml.replace("title: Tabs", "title: Tabbed"))
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
      expect(renderContent(c)).toBe(text)
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
    expect(renderContent(new Content({ ...j, title: "Hello" }))).toBe(json.replace('"Hi",', '"Hello",'))
    const toml = "---toml\r\ntitle = 'Hi'\r\nweight = 3\r\n---\r\nBody\r\n"
    const t = parse(toml)
    expect([t.format, t.title, t.extra]).toStrictEqual(["toml", "Hi", { weight: 3 }])
    expect(renderContent(new Content({ ...t, extra: { weight: 4 } }))).toBe(toml.replace("3", "4"))
    // JavaScript front matter cannot be read as data: the page is body as a whole, kept byte for byte.
    const js = "---js\nconst pagination = { data: 'authors', size: 1 }\n---\n# Authors\n"
    const s = parse(js)
    expect([s.format, s.head, s.body, renderContent(s)]).toStrictEqual(["none", "", js, js])
    // Its fields edited, it cannot be written (YAML above the code would be read instead of it): refused, at line 1.
    expect(unwritableContent(s, renderContent(s))).toBeUndefined()
    for (const open of ["---js", "---javascript", "---coffee", "--- JS"]) {
      const code = parse(js.replace("---js", open), "authors.md")
      expect(unwritableContent(code, renderContent(new Content({ ...code, title: "People" })))).toBe(
        `content/blog/authors.md:1: front matter in ${open.slice(3).trim()} cannot be written from the database; the file is left as it is`
      )
    }
    const data = parse('---json\n{ "title": "Hi" }\n---\nBody\n')
    expect(unwritableContent(data, renderContent(new Content({ ...data, title: "Hello" })))).toBeUndefined()
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
    const nested = renderContent(new Content({ ...c, extra: { ...c.extra, params: { math: false, list: [1, 2] } } }))
    expect(nested).toBe(text.replace("math: true", "math: false"))
  })
})
