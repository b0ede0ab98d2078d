import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { agentsync, REPO } from "../support/cli.js"

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
    expect(r.stdout).toMatch(/4 agents, 10 skills, 32 content items in blog \(directory, 12\), docs \(flat, 20\), 8 access rules/)
  })

  it("--json prints one document with the inventory", async () => {
    const r = await agentsync(["--json", "validate", "examples/project/services"])
    expect(r.code).toBe(0)
    const doc = JSON.parse(r.stdout)
    expect(doc.ok).toBe(true)
    expect(doc.inventory).toMatchObject({ agents: 4, skills: 10, contents: 32, access_rules: 8 })
    expect(doc.inventory.sources.blog).toStrictEqual({ layout: "directory", items: 12 })
  })

  it("reports every problem of a broken copy as file:line, exits 1, and writes nothing", async () => {
    const dir = copyExample()
    const s = join(dir, "services")
    writeFileSync(join(s, "agents/support/config.yaml"), "id: support\nname: [oops\n")
    writeFileSync(join(s, "skills/kb-search/config.yaml"), "id: kb-search\ndescription: x\nenabled: maybe\n")
    writeFileSync(join(s, "content/docs/faq.md"), "---\ntitle: never closed\n\nbody\n")
    writeFileSync(join(s, "access-control/config.yaml"), "rules:\n  - entity_type: agent\n    entity_id: a\n    access: allow\n    roles: [x]\n    colour: red\n")
    writeFileSync(join(s, "content/docs/glossary.md"), Buffer.from([0x2d, 0x2d, 0x2d, 0x0a, 0x74, 0x3a, 0xff, 0xfe, 0x0a]))
    writeFileSync(join(s, "agents/researcher/config.yaml"), "id: someone-else\nname: r\n")
    const before = readFileSync(join(s, "content/docs/billing.md"))
    const r = await agentsync(["validate", dir])
    expect(r.code).toBe(1)
    const lines = r.stdout.split("\n")
    const has = (re: RegExp) => expect(lines.some((l) => re.test(l)), `${re} in\n${r.stdout}`).toBe(true)
    has(/services\/agents\/support\/config\.yaml:\d+: invalid YAML/)
    has(/services\/agents\/researcher\/config\.yaml:1: id: id "someone-else" does not match its folder "researcher"/)
    has(/services\/skills\/kb-search\/config\.yaml:1: name: is missing/)
    has(/services\/skills\/kb-search\/config\.yaml:3: enabled: Expected boolean/)
    has(/services\/content\/docs\/faq\.md:1: front matter .* never closed/)
    has(/services\/access-control\/config\.yaml:6: rules\.0\.colour: is unexpected/)
    has(/services\/content\/docs\/glossary\.md:2: file is not valid UTF-8/)
    expect(r.stderr).toMatch(/error: 7 problems in \d+ files of /)
    // The other items were still checked and counted.
    expect(r.stdout).toMatch(/2 agents, 9 skills, 30 content items/)
    expect(readFileSync(join(s, "content/docs/billing.md"))).toStrictEqual(before)
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
