import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { agentsync, REPO } from "../support/cli.js"
import { bytePath, latin1 } from "../support/rawNames.js"

const dirs: Array<string> = []
const copyExample = () => {
  const dir = mkdtempSync(join(tmpdir(), "agentsync-validate-"))
  dirs.push(dir)
  cpSync(join(REPO, "examples/project"), dir, { recursive: true })
  return dir
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

describe("agentsync validate (built CLI)", () => {
  it("accepts the example project and prints its inventory", async () => {
    const r = await agentsync(["validate", "examples/project"])
    expect(r.stderr).toBe("")
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(
      /5 agents, 11 skills, 35 content items in blog \(directory, 12\), docs \(flat, 23\), 8 access rules, 3 files beside them/
    )
    expect(r.stdout).toMatch(/^7 files not synced by local sync \(carried by file sync\); --verbose lists them$/m)
  })

  it("--json prints one document with the inventory", async () => {
    const r = await agentsync(["--json", "validate", "examples/project/services"])
    expect(r.code).toBe(0)
    const doc = JSON.parse(r.stdout)
    expect(doc.ok).toBe(true)
    expect(doc.inventory).toMatchObject({ agents: 5, skills: 11, contents: 35, access_rules: 8, attachments: 3 })
    expect(doc.unsynced).toContain("config/ai.yaml")
    expect(doc.inventory.sources.blog).toStrictEqual({ layout: "directory", items: 12 })
    expect(doc.warnings).toEqual([])
  })

  it("reports every problem of a broken copy as file:line, exits 1, and writes nothing", async () => {
    const dir = copyExample()
    const s = join(dir, "services")
    writeFileSync(join(s, "agents/support/config.yaml"), "id: support\nname: [oops\n")
    writeFileSync(join(s, "skills/kb-search/config.yaml"), "id: kb-search\ndescription: x\nenabled: maybe\n")
    writeFileSync(join(s, "content/docs/faq.md"), "---\ntitle: never closed\n\nbody\n")
    writeFileSync(
      join(s, "access-control/config.yaml"),
      "rules:\n  - entity_type: agent\n    entity_id: a\n    access: allow\n    roles: [x]\n    colour: red\n"
    )
    writeFileSync(
      join(s, "content/docs/glossary.md"),
      Buffer.from([0x2d, 0x2d, 0x2d, 0x0a, 0x74, 0x3a, 0xff, 0xfe, 0x0a])
    )
    writeFileSync(join(s, "agents/researcher/config.yaml"), "id: someone-else\nname: r\n")
    const before = readFileSync(join(s, "content/docs/billing.md"))
    const r = await agentsync(["validate", dir])
    expect(r.code).toBe(1)
    const lines = r.stdout.split("\n")
    const has = (re: RegExp) =>
      expect(
        lines.some((l) => re.test(l)),
        `${re} in\n${r.stdout}`
      ).toBe(true)
    has(/services\/agents\/support\/config\.yaml:\d+: invalid YAML/)
    has(/services\/agents\/researcher\/config\.yaml:1: id: id "someone-else" does not match its folder "researcher"/)
    has(/services\/skills\/kb-search\/config\.yaml:1: name: is missing/)
    has(/services\/skills\/kb-search\/config\.yaml:3: enabled: Expected boolean/)
    has(/services\/content\/docs\/faq\.md:1: front matter .* never closed/)
    has(/services\/access-control\/config\.yaml:6: rules\.0\.colour: is unexpected/)
    has(/services\/content\/docs\/glossary\.md:2: file is not valid UTF-8/)
    expect(r.stderr).toMatch(/error: 7 problems in \d+ files of /)
    // The other items were still checked and counted.
    expect(r.stdout).toMatch(/3 agents, 10 skills, 33 content items/)
    expect(readFileSync(join(s, "content/docs/billing.md"))).toStrictEqual(before)
  })

  it("takes real sites and agent files as they are; --verbose lists what local sync leaves to file sync", async () => {
    const dir = mkdtempSync(join(tmpdir(), "agentsync-validate-real-"))
    dirs.push(dir)
    const put = (path: string, text: string) => {
      mkdirSync(dirname(join(dir, "services", path)), { recursive: true })
      writeFileSync(join(dir, "services", path), text)
    }
    // A Hugo site (TOML, a leaf bundle with an image, a branch bundle, nested folders), a Jekyll post, JSON.
    put("content/site/_index.md", '+++\ntitle = "Home"\n[params]\nhero = true\n+++\n')
    put(
      "content/site/posts/Hello@World.v2/index.md",
      "---\ntitle: Hello\naliases: [/old]\ndate: 2013-05-06 00:00:00 +0000\n---\nHi\n"
    )
    put("content/site/posts/Hello@World.v2/cover.png", "PNG")
    put("content/site/docs/guides/install.markdown", "---\npermalink: /install/\nredirect_from:\n  - /setup/\n---\n")
    put("content/site/about.md", '{\n  "title": "About",\n  "weight": 3\n}\n\nAbout us.\n')
    put("content/site/notes.md", "No front matter at all.\n")
    put("content/site/empty.md", "---\n---\n")
    // An Agent Skills folder and a Claude Code subagent.
    put("skills/pdf/SKILL.md", "---\nname: pdf\ndescription: Work with PDFs\nlicense: Proprietary\n---\n\n# PDF\n")
    put("skills/pdf/scripts/fill.py", "print('x')\n")
    put(
      "agents/code-reviewer.md",
      "---\nname: code-reviewer\ndescription: Reviews code\ntools: Read, Grep\nmodel: sonnet\n---\nYou review code.\n"
    )
    put("web/theme.json", "{}\n")
    const r = await agentsync(["validate", dir, "--verbose"])
    expect(r.stderr).toBe("")
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(
      /1 agents, 1 skills, 6 content items in site \(flat, 6\), 0 access rules, 2 files beside them/
    )
    expect(r.stdout).toContain("not synced by local sync: web/theme.json (carried by file sync)")
  })

  // Validate reads item files only, so a Latin-1 name elsewhere does not stop it, but file sync refuses its every run.
  it("warns of each name that is not UTF-8 where it does not read, which files push refuses, and still passes", async () => {
    const dir = copyExample()
    const s = join(dir, "services")
    writeFileSync(bytePath(join(s, "config"), latin1("café.txt")), "x\n")
    mkdirSync(bytePath(join(s, "hooks"), latin1("vieux-été")), { recursive: true })
    writeFileSync(bytePath(join(s, "hooks"), latin1("vieux-été"), "run.sh"), "echo\n")
    writeFileSync(bytePath(join(s, "agents"), latin1("notes-é.txt")), "n\n")
    const r = await agentsync(["validate"], { cwd: dir })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toBe("")
    expect(r.stdout).toMatch(/5 agents, 11 skills, 35 content items/)
    const lines = r.stdout.split("\n")
    const at = lines.findIndex((l) => l.startsWith("warning: "))
    expect(lines[at]).toBe(
      "warning: each of the 3 names below is not UTF-8 (local sync and validate do not read it): files push, pull and diff refuse to run while it is there (no synced path can hold it); rename it, or leave it out in .agentsyncignore (where `*` matches the bytes that are not UTF-8)"
    )
    expect(lines.slice(at + 1, at + 4)).toEqual([
      "  services/agents/notes-\\xe9.txt",
      "  services/config/caf\\xe9.txt",
      "  services/hooks/vieux-\\xe9t\\xe9/"
    ])
    const json = await agentsync(["--json", "validate"], { cwd: dir })
    expect(json.code).toBe(0)
    const doc = JSON.parse(json.stdout) as { ok: boolean; warnings: Array<{ file: string; message: string }> }
    expect(doc.ok).toBe(true)
    expect(doc.warnings.map((w) => w.file)).toEqual([
      "services/agents/notes-\\xe9.txt",
      "services/config/caf\\xe9.txt",
      "services/hooks/vieux-\\xe9t\\xe9/"
    ])
    expect(doc.warnings[0]?.message).toMatch(/^the name is not UTF-8 .*files push, pull and diff refuse to run/)
    // What validate names is what a push refuses, named the same way (before it reaches the server).
    const push = await agentsync(["files", "push"], {
      cwd: dir,
      env: { AGENTSYNC_DIRECT_URL: "http://127.0.0.1:9", AGENTSYNC_TOKEN: "ast_0000000000000000_not-a-real-token" }
    })
    expect(push.code).toBe(1)
    const refused = /error: (.*): the name "(.*)" is not UTF-8/.exec(push.stderr)
    expect(refused, push.stderr).not.toBeNull()
    expect(doc.warnings.map((w) => w.file.replace(/\/$/, ""))).toContain(`${refused?.[1]}/${refused?.[2]}`)
  })

  it("--help, --version and completions answer without a project", async () => {
    const help = await agentsync(["--help"])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain("validate")
    const version = await agentsync(["--version"])
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/)
    const completions = await agentsync(["--completions", "bash"])
    expect(completions.code).toBe(0)
    expect(completions.stdout).toContain("agentsync")
  })

  it("an unknown command is a usage error (exit 2)", async () => {
    const r = await agentsync(["frobnicate"])
    expect(r.code).toBe(2)
  })
})
