import { describe, expect, it } from "vitest"
import { preprocess } from "../../src/cli/argv.js"
import { useColor } from "../../src/cli/color.js"
import { render, wrap } from "../../src/cli/help.js"
import { command } from "../../src/cli/main.js"
import { type CommandSpec, specOf } from "../../src/cli/spec.js"

const tree = specOf(command)
const all = (c: CommandSpec): Array<CommandSpec> => [c, ...c.subcommands.flatMap(all)]

describe("help pages", () => {
  it("every command's page: its full path in USAGE, no boilerplate, at most 80 columns, no escapes, examples", () => {
    for (const c of all(tree)) {
      const page = render(c, { width: 80, color: false })
      const path = c.path.join(" ")
      expect(page, path).toMatch(new RegExp(`^USAGE\\n {2}${path}( |$)`, "m"))
      expect(page, path).not.toMatch(/user-defined piece of text|true or false value|This setting is optional|--wizard/)
      for (const line of page.split("\n")) expect(line.length, `${path}: ${line}`).toBeLessThanOrEqual(80)
      expect(page, path).not.toContain("\x1b")
      expect(page, path).toMatch(/^EXAMPLES\n {2}\$ agentsync/m)
      // A group lists its commands by their own names, once.
      for (const s of c.subcommands) expect(page, path).toMatch(new RegExp(`^ {2}${s.name} +\\S`, "m"))
    }
  })

  it("shows each option once with its value's placeholder, choices and default", () => {
    const serve = render(tree.subcommands.find((c) => c.name === "serve")!, { width: 80, color: false })
    expect(serve).toMatch(/^ {6}--port N +port to listen on, 0 for a free one \(env PORT;\n +default 8787\)$/m)
    expect(serve).toMatch(/^ {2}DATABASE_URL /m)
    const skill = tree.subcommands.find((c) => c.name === "skill")!
    const sync = render(skill.subcommands.find((c) => c.name === "sync")!, { width: 80, color: false })
    expect(sync).toMatch(/^ {6}--prefer home\|repo +who wins a conflict$/m)
    expect(sync).toMatch(/^ {2}-y, --yes /m)
  })

  it("bold headings only when asked or on a terminal without NO_COLOR or TERM=dumb", () => {
    expect(render(tree, { width: 80, color: true })).toContain("\x1b[1mUSAGE\x1b[0m")
    expect(useColor("auto", true, {})).toBe(true)
    expect(useColor("auto", false, {})).toBe(false)
    expect(useColor("auto", true, { NO_COLOR: "1" })).toBe(false)
    expect(useColor("auto", true, { TERM: "dumb" })).toBe(false)
    expect(useColor("always", false, { NO_COLOR: "1" })).toBe(true)
    expect(useColor("never", true, {})).toBe(false)
  })

  it("wraps at word boundaries", () => {
    const lines = wrap("the services/ tree on disk against the project database", 20)
    expect(lines.every((l) => l.length <= 20)).toBe(true)
    expect(lines.join(" ")).toBe("the services/ tree on disk against the project database")
  })

  it("--help and -h anywhere, and a group without its command, ask for help of the deepest command", () => {
    expect(preprocess(tree, ["local", "sync", "--to-db", "--help"])).toMatchObject({
      _tag: "Help",
      path: ["agentsync", "local", "sync"]
    })
    expect(preprocess(tree, ["-h", "files"])).toMatchObject({ _tag: "Help", path: ["agentsync", "files"] })
    expect(preprocess(tree, ["skill", "source"])).toMatchObject({
      _tag: "Help",
      path: ["agentsync", "skill", "source"]
    })
    expect(preprocess(tree, ["validate", "--", "--help"])).toMatchObject({ _tag: "Ok" })
  })

  it("says only what is true of each command: archives in gzip or zstd, --kind of a diff compares", () => {
    const at = (...path: Array<string>) => path.reduce((c, name) => c.subcommands.find((s) => s.name === name)!, tree)
    expect(at("files").description).toMatch(/gzip, or zstd where both ends read it/)
    for (const sub of ["diff", "sync"]) {
      const kind = at("local", sub).options.find((o) => o.name === "kind")!
      expect(kind.description, sub).toBe("comma-separated kinds: agents,skills,content,acl (default: all)")
    }
  })
})

describe("README", () => {
  it("shows the real top-level help", async () => {
    const { readFileSync } = await import("node:fs")
    const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8")
    const block = /## Command line\n\n[^\n]*\n\n```\n([\s\S]*?)```\n/.exec(readme)?.[1]
    expect(block).toBe(render(tree, { width: 80, color: false }))
  })
})
