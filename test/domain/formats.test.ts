import { it } from "@effect/vitest"
import { Arbitrary, Either, FastCheck as fc } from "effect"
import { describe, expect } from "vitest"
import {
  parseAccessRules,
  parseAgent,
  parseAgentFile,
  parseContent,
  parseSkill,
  parseSkillFile,
  renderAccessRules,
  renderAgent,
  renderContent,
  renderSkill
} from "../../src/domain/formats.js"
import { accessRuleHash, agentHash, contentHash, skillHash } from "../../src/domain/hash.js"
import { AccessRule, Agent, Content, Skill } from "../../src/domain/model.js"
import { parseProject, pathRole } from "../../src/domain/project.js"

// 1,500 generated cases a law: about 8 s alone on the 2-core machine, and several times that beside a whole run, so
// the limit (for a hang, not a speed) is above the suite's 60 s.
const runs = { fastCheck: { numRuns: 1500 }, timeout: 240_000 }

/** Strings that stress YAML quoting: quotes, backslashes, newlines, colons, leading '-', unicode, YAML keywords. */
const nasty = fc.oneof(
  fc.string(),
  fc.string({ unit: "grapheme" }),
  fc.constantFrom(
    "",
    "-",
    "- x",
    "---",
    "...",
    ": x",
    "a: b",
    "#c",
    "'",
    '"',
    "\\",
    "\n",
    " lead",
    "trail ",
    "\t",
    "yes",
    "no",
    "null",
    "~",
    "true",
    "1e3",
    "0x1F",
    "@x",
    "`x`",
    "|",
    ">",
    "{a}",
    "[b]",
    "*x",
    "&y",
    "!z",
    "%",
    "é 漢字 🚀",
    "a\r\nb",
    "\u2028",
    "\ufeffbom"
  ),
  fc
    .array(fc.constantFrom("a", " ", "\n", ":", "-", "#", "'", '"', "\\", "\t", "é", "🚀", "\r"), { maxLength: 12 })
    .map((cs) => cs.join(""))
)
const tags = fc.array(nasty, { maxLength: 4 })
const id = Arbitrary.make(Agent.fields.id)
const json = fc
  .jsonValue({ maxDepth: 2 })
  .filter((v) => !JSON.stringify(v).includes("__proto__"))
  .map((v) => JSON.parse(JSON.stringify(v)))
/** Fields of a file's own, under names agentsync does not know. */
const extraArb = (known: ReadonlyArray<string>) =>
  fc.dictionary(
    fc
      .oneof(nasty, fc.constantFrom("weight", "aliases", "params", "allowed-tools", "redirect_from"))
      .filter((k) => k !== "__proto__" && !k.includes("\ufeff") && !known.includes(k)),
    json,
    { maxKeys: 4 }
  )

const agentArb = fc
  .record({
    id,
    name: nasty,
    display_name: nasty,
    description: nasty,
    enabled: fc.boolean(),
    tags,
    settings: fc.dictionary(
      nasty.filter((k) => k !== "__proto__"),
      fc
        .jsonValue({ maxDepth: 2 })
        .filter((v) => !JSON.stringify(v).includes("__proto__"))
        .map((v) => JSON.parse(JSON.stringify(v)))
    ),
    system_prompt: nasty,
    form: fc.constantFrom("folder" as const, "file" as const),
    original: fc.constant(null),
    extra: extraArb(["id", "name", "display_name", "description", "enabled", "tags", "settings"])
  })
  // The config.yaml form has no extra fields (they are refused there).
  .map((f) => new Agent(f.form === "folder" ? { ...f, extra: {} } : f))

const skillArb = fc
  .record({
    id,
    name: nasty,
    description: nasty,
    enabled: fc.boolean(),
    tags,
    category: nasty,
    assigned_agents: fc.array(id, { maxLength: 3 }),
    instructions: nasty,
    form: fc.constantFrom("folder" as const, "file" as const),
    original: fc.constant(null),
    extra: extraArb(["id", "name", "description", "enabled", "tags", "category", "assigned_agents"])
  })
  .map((f) => new Skill(f.form === "folder" ? { ...f, extra: {} } : f))

const date = fc.option(
  fc.oneof(nasty, fc.constantFrom("2025-03-01", "2013-05-06 00:00:00 +0000", "2025-03-02T10:00:00Z")),
  { nil: null }
)
const contentArb = fc
  .record({
    source: id,
    slug: id,
    format: fc.constant("yaml" as const),
    head: fc.constant(null),
    extra: extraArb([
      "title",
      "slug",
      "kind",
      "description",
      "author",
      "keywords",
      "image",
      "public",
      "tags",
      "published_at",
      "updated_at"
    ]),
    title: nasty,
    kind: nasty,
    description: nasty,
    author: nasty,
    keywords: tags,
    image: fc.option(nasty, { nil: null }),
    public: fc.boolean(),
    tags,
    published_at: date,
    updated_at: date,
    body: nasty,
    // An MDX page is written and read as a Markdown one: its body (imports, JSX) is text.
    ext: fc.constantFrom(".md", ".markdown", ".mdx", "/index.mdx")
  })
  .map(({ ext, ...f }) => new Content({ ...f, path: `${f.slug}${ext}` }))

// Arbitrary.make writes an absent optional as an explicit undefined; a parsed rule leaves the key out.
const ruleArb = Arbitrary.make(AccessRule).map(
  ({ justification, ...r }) => new AccessRule(justification === undefined ? r : { ...r, justification })
)

const e2s = (errors: ReadonlyArray<{ message: string }>) => errors.map((x) => x.message).join("\n")

const right = <A>(e: Either.Either<A, ReadonlyArray<{ message: string }>>): A => {
  if (Either.isLeft(e)) throw new Error(e.left.map((x) => x.message).join("\n"))
  return e.right
}

// An item read back keeps the text it was read from; an item made in memory has none.
const parseRenderedAgent = (a: Agent) => {
  const [first, second] = renderAgent(a).map((f) => ({ path: f.path, text: f.text }))
  const back = right(a.form === "file" ? parseAgentFile(first!, a.id) : parseAgent(first!, second, a.id))
  return new Agent({ ...back, original: null })
}
const parseRenderedSkill = (s: Skill) => {
  const [first, second] = renderSkill(s).map((f) => ({ path: f.path, text: f.text }))
  const back = right(s.form === "file" ? parseSkillFile(first!, s.id) : parseSkill(first!, second, s.id))
  return new Skill({ ...back, original: null })
}
const parseRenderedContent = (c: Content) =>
  new Content({ ...right(parseContent({ path: "x.md", text: renderContent(c) ?? "" }, c.source, c.path)), head: null })

describe("disk formats round-trip: parse(render(x)) == x and the hash survives", () => {
  it("writes out a field whose default follows a field that changed (an agent's display_name after its name)", () => {
    // Read from files that leave display_name out (so it is the name), then renamed with display_name kept.
    const file = right(
      parseAgentFile({ path: "agents/writer.md", text: "---\nname: writer\n---\n\nWrite.\n" }, "writer")
    )
    const renamed = new Agent({ ...file, name: "Writer" })
    expect(parseRenderedAgent(renamed)).toStrictEqual(new Agent({ ...renamed, original: null }))
    const folder = right(
      parseAgent({ path: "agents/writer/config.yaml", text: "id: writer\nname: writer\n" }, undefined, "writer")
    )
    const renamedFolder = new Agent({ ...folder, name: "Writer" })
    expect(parseRenderedAgent(renamedFolder)).toStrictEqual(new Agent({ ...renamedFolder, original: null }))
    // A config.yaml of CRLF lines keeps them where fields are edited; the line that was LF between them stays LF.
    const crlf = "id: writer\r\nname: writer\r\ndescription: Writes.\r\ntags: [a]\nenabled: true\r\n"
    const windows = right(parseAgent({ path: "agents/writer/config.yaml", text: crlf }, undefined, "writer"))
    expect(renderAgent(new Agent({ ...windows, description: "Edits.", enabled: false }))[0]!.text).toBe(
      "id: writer\r\nname: writer\r\ndescription: Edits.\r\ntags: [a]\nenabled: false\r\n"
    )
    // Made in memory: an empty name, and a display name that is the id.
    const fresh = new Agent({ ...renamed, id: "_", name: "", display_name: "_", original: null, extra: {} })
    expect(parseRenderedAgent(fresh)).toStrictEqual(fresh)
  })

  it.prop(
    "agents",
    [agentArb],
    ([a]) => {
      const back = parseRenderedAgent(a)
      expect(back).toStrictEqual(a)
      expect(agentHash(back)).toBe(agentHash(a))
    },
    runs
  )

  it.prop(
    "skills",
    [skillArb],
    ([s]) => {
      const back = parseRenderedSkill(s)
      expect(back).toStrictEqual(s)
      expect(skillHash(back)).toBe(skillHash(s))
    },
    runs
  )

  it.prop(
    "content",
    [contentArb],
    ([c]) => {
      const back = parseRenderedContent(c)
      expect(back).toStrictEqual(c)
      expect(contentHash(back)).toBe(contentHash(c))
    },
    runs
  )

  it.prop(
    "access rules",
    [fc.uniqueArray(ruleArb, { selector: (r) => `${r.entity_type}:${r.entity_id}:${r.access}`, maxLength: 6 })],
    ([rules]) => {
      const back = right(parseAccessRules({ path: "config.yaml", text: renderAccessRules(rules) }))
      expect(back).toStrictEqual(rules)
      expect(back.map(accessRuleHash)).toStrictEqual(rules.map(accessRuleHash))
    },
    runs
  )
})

describe("the canonical hash changes when any synced field changes", () => {
  const differs =
    <A extends object>(hash: (a: A) => string, make: (fields: A) => A) =>
    ([a, b]: readonly [A, A]) => {
      for (const key of Object.keys(a) as Array<keyof A>) {
        const changed = make({ ...a, [key]: b[key] })
        if (JSON.stringify(a[key]) === JSON.stringify(b[key])) expect(hash(changed)).toBe(hash(a))
        else expect(hash(changed)).not.toBe(hash(a))
      }
    }
  // The text an item was read from is not a field, nor its file's mode (compared on its own): both are left out.
  const fieldsOnly =
    <A extends object>(hash: (a: A) => string, text: keyof A, make: (fields: A) => A) =>
    ([a, b]: readonly [A, A]) => {
      differs(hash, make)([a, { ...b, [text]: a[text], mode: (a as { mode?: unknown }).mode }])
      expect(hash(make({ ...a, mode: 0o755 }))).toBe(hash(make({ ...a, mode: 0o644 })))
    }
  it.prop(
    "agents",
    [agentArb, agentArb],
    fieldsOnly(agentHash, "original", (f) => new Agent(f)),
    runs
  )
  it.prop(
    "skills",
    [skillArb, skillArb],
    fieldsOnly(skillHash, "original", (f) => new Skill(f)),
    runs
  )
  it.prop(
    "content",
    [contentArb, contentArb],
    fieldsOnly(contentHash, "head", (f) => new Content(f)),
    runs
  )
})

describe("bad input is reported with file and line", () => {
  it("broken YAML names the line", () => {
    const e = parseAgent({ path: "agents/a/config.yaml", text: "id: a\nname: [unclosed\n" }, undefined, "a")
    expect(Either.isLeft(e)).toBe(true)
    if (Either.isLeft(e)) {
      expect(e.left[0]!.file).toBe("agents/a/config.yaml")
      expect(e.left[0]!.line).toBeGreaterThanOrEqual(2)
    }
  })

  it("a missing required field and a wrong type are both reported, each at its line", () => {
    const e = parseSkill(
      { path: "skills/s/config.yaml", text: "id: s\ndescription: d\nenabled: maybe\n" },
      undefined,
      "s"
    )
    expect(Either.isLeft(e)).toBe(true)
    if (Either.isLeft(e)) {
      const byField = Object.fromEntries(e.left.map((x) => [x.field, x.line]))
      expect(byField["name"]).toBe(1)
      expect(byField["enabled"]).toBe(3)
    }
  })

  it("an unknown field in access rules is rejected at its line", () => {
    const text =
      "rules:\n  - entity_type: agent\n    entity_id: a\n    access: allow\n    roles: [admin]\n    colour: red\n"
    const e = parseAccessRules({ path: "access-control/config.yaml", text })
    expect(Either.isLeft(e)).toBe(true)
    if (Either.isLeft(e)) {
      expect(e.left).toHaveLength(1)
      expect(e.left[0]!.line).toBe(6)
      expect(e.left[0]!.message).toContain("colour")
    }
  })

  it("a duplicate access rule is reported at the second declaration", () => {
    const rule = "  - entity_type: agent\n    entity_id: a\n    access: deny\n    roles: [guest]\n"
    const e = parseAccessRules({ path: "acl.yaml", text: `rules:\n${rule}${rule}` })
    expect(Either.isLeft(e) && e.left[0]!.line).toBe(6)
  })

  it("a title left out is the first heading outside code fences, else the file's name", () => {
    const body = [
      "````md",
      "# not this: inside a fence",
      "~~~",
      "# nor this: a tilde does not close a backtick fence",
      "````",
      "~~~",
      "# nor this one",
      "```",
      "~~~",
      "   ## The title ##",
      "# a later heading"
    ].join("\n")
    const c = right(
      parseContent({ path: "content/blog/a.md", text: `---\nkind: guide\n---\n${body}\n` }, "blog", "a.md")
    )
    expect(c.title).toBe("The title")
    const n = parseContent({ path: "content/blog/x/index.md", text: "no heading\n" }, "blog", "guides/install/index.md")
    expect(right(n).title).toBe("install")
  })

  it("a front matter that never closes is reported at line 1", () => {
    const e = parseContent({ path: "content/blog/a.md", text: "---\ntitle: x\n\nbody\n" }, "blog", "a.md")
    expect(Either.isLeft(e) && e.left[0]!.message).toMatch(/content\/blog\/a.md:1: front matter .* never closed/)
  })

  it("a front matter error names the line in the file, not in the YAML", () => {
    const e = parseContent({ path: "content/blog/a.md", text: "---\ntitle: x\nbad: a: b\n---\nbody\n" }, "blog", "a.md")
    expect(Either.isLeft(e) && e.left[0]!.line).toBe(3)
  })

  it("TOML and JSON errors name their line too", () => {
    const t = parseContent(
      { path: "content/blog/a.md", text: '+++\ntitle = "x"\nweight = = 1\n+++\nbody\n' },
      "blog",
      "a.md"
    )
    expect(Either.isLeft(t) && e2s(t.left)).toMatch(/^content\/blog\/a.md:3: invalid TOML/)
    const j = parseContent(
      { path: "content/blog/a.md", text: '{\n  "title": "x",\n  "n": 1,\n}\nbody\n' },
      "blog",
      "a.md"
    )
    expect(Either.isLeft(j) && e2s(j.left)).toMatch(/^content\/blog\/a.md:4: invalid JSON/)
  })

  it("a value JSON cannot hold is a sentence with its line, not a schema dump", () => {
    const e = parseContent({ path: "content/blog/a.md", text: "---\ntitle: x\nratio: .inf\n---\n" }, "blog", "a.md")
    expect(Either.isLeft(e) && e2s(e.left)).toBe(
      "content/blog/a.md:3: ratio: the number Infinity cannot be stored; quote it to keep it as text"
    )
  })

  it("a slug field of the site's own (Hugo's URL slug) is kept as an extra field", () => {
    const c = right(parseContent({ path: "content/blog/a.md", text: "---\ntitle: x\nslug: b\n---\n" }, "blog", "a.md"))
    expect(c.slug).toBe("a")
    expect(c.extra).toStrictEqual({ slug: "b" })
  })
})

describe("MDX pages in a tree", () => {
  const file = (path: string, text: string) => ({ path, bytes: new TextEncoder().encode(text) })
  it("are items; an index.mdx is a bundle that owns its folder's files; a slug of two files is reported", () => {
    const p = parseProject([
      file("content/docs/intro.mdx", "---\ntitle: Intro\n---\nimport A from './a'\n\n<A />\n"),
      file("content/docs/tabs/index.mdx", "{/* no front matter */}\n# Tabs\n"),
      file("content/docs/tabs/shot.png", "png"),
      file("content/docs/a.md", "# A\n"),
      file("content/docs/a.mdx", "# A too\n")
    ])
    expect(p.contentFiles.map((f) => [f.key, f.path])).toStrictEqual([
      ["docs/a", "a.md"],
      ["docs/intro", "intro.mdx"],
      ["docs/tabs", "tabs/index.mdx"]
    ])
    expect(p.contents.map((c) => [c.slug, c.title, c.format])).toStrictEqual([
      ["a", "A", "none"],
      ["intro", "Intro", "yaml"],
      ["tabs", "Tabs", "none"]
    ])
    expect(p.attachments.map((a) => [a.path, a.owner])).toStrictEqual([["content/docs/tabs/shot.png", "docs/tabs"]])
    expect(p.errors.map((e) => e.message)).toStrictEqual([
      "content/docs/a.mdx: duplicate content docs/a: also defined by content/docs/a.md; keep one of the two files"
    ])
    expect(pathRole("content/docs/a.mdx")).toStrictEqual({ role: "content", source: "docs", path: "a.mdx", slug: "a" })
  })
})

describe("front matter the YAML parser refuses", () => {
  it("a subagent whose description holds `: ` unquoted: the line's first problem alone, saying to quote the value", () => {
    // The shape of a Claude Code subagent in a public plugin marketplace (pr-review-toolkit's silent-failure-hunter).
    const text = `---\nname: hunter\ndescription: Use this agent to review. Examples:\\n\\n<example>\\nContext: a PR.\\nDaisy: "Please review PR #1234"\\nAssistant: "I'll use the hunter agent."\\n</example>\nmodel: inherit\n---\n\nYou hunt silent failures.\n`
    const parsed = parseAgentFile({ path: "services/agents/hunter.md", text }, "hunter")
    expect(Either.isLeft(parsed)).toBe(true)
    const messages = Either.isLeft(parsed) ? parsed.left.map((e) => e.message) : []
    expect(messages).toEqual([
      'services/agents/hunter.md:3: invalid YAML: Nested mappings are not allowed in compact mappings (a value holding ": " must be quoted)'
    ])
  })
  it("a key given twice on a line that is also bad: both problems, the key and the syntax", () => {
    const text = "---\nname: a\nk: v\nk: a: b\n---\n\nBody.\n"
    const parsed = parseAgentFile({ path: "services/agents/a.md", text }, "a")
    const messages = Either.isLeft(parsed) ? parsed.left.map((e) => e.message) : []
    expect(messages).toEqual([
      "services/agents/a.md:4: invalid YAML: Map keys must be unique",
      'services/agents/a.md:4: invalid YAML: Nested mappings are not allowed in compact mappings (a value holding ": " must be quoted)'
    ])
  })
})
