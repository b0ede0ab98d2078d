import * as fs from "node:fs"
import * as nodePath from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { agentsync } from "../support/cli.js"
import { isolateGit, lockedUnit, makeUpstream, readTree, SAMPLE, tempRoot } from "../support/gitFixture.js"

const top = tempRoot("skill-e2e")
isolateGit(top)
afterAll(() => fs.rmSync(top, { recursive: true, force: true }))

let n = 0
/** A user's machine in a temp dir: HOME, AGENTSYNC_HOME and the tool homes all point inside it. */
const machine = () => {
  const root = nodePath.join(top, `m${n++}`)
  fs.mkdirSync(root, { recursive: true })
  const up = makeUpstream(root, SAMPLE)
  const env = {
    HOME: nodePath.join(root, "home"),
    AGENTSYNC_HOME: nodePath.join(root, "state"),
    AGENTSYNC_TOOL_HOME_CLAUDE: nodePath.join(root, "claude"),
    AGENTSYNC_TOOL_HOME_CODEX: nodePath.join(root, "codex"),
    GIT_CONFIG_GLOBAL: process.env["GIT_CONFIG_GLOBAL"],
    GIT_CONFIG_NOSYSTEM: "1"
  }
  const cli = (...args: Array<string>) => agentsync(args, { env, cwd: root })
  const home = (tool: "claude" | "codex", p: string) => nodePath.join(root, tool, p)
  const state = () => ({
    claude: readTree(nodePath.join(root, "claude")),
    codex: readTree(nodePath.join(root, "codex")),
    manifest: fs.readFileSync(nodePath.join(env.AGENTSYNC_HOME, "manifest.yaml"), "utf8"),
    lock: fs.readFileSync(nodePath.join(env.AGENTSYNC_HOME, "lock.yaml"), "utf8"),
    remote: up.log()
  })
  return { root, up, env, cli, home, state }
}

const installed = async () => {
  const m = machine()
  const r = await m.cli("skill", "install", `git:file://${m.up.bare}`, "--tools", "claude,codex", "--name", "team")
  expect(r.stderr).toBe("")
  expect(r.code).toBe(0)
  return { m, install: r }
}

describe("agentsync skill (built CLI, real git)", () => {
  it("installs, lists and reports status; a home edit becomes a commit in the remote", async () => {
    const { m, install } = await installed()
    expect(install.stdout).toMatch(/repo → home {2}team:skills\/pdf \[claude\] {2}new in the repo/)
    expect(fs.readFileSync(m.home("codex", "skills/pdf/scripts/fill.py"), "utf8")).toBe(SAMPLE["skills/pdf/scripts/fill.py"])

    const list = await m.cli("--json", "skill", "source", "list")
    expect(list.code).toBe(0)
    expect(JSON.parse(list.stdout).sources[0]).toMatchObject({ name: "team", uri: `git:file://${m.up.bare}`, ref: "main", units: 3, tools: ["claude", "codex"] })

    fs.writeFileSync(m.home("claude", "agents/reviewer.md"), "You review code, briefly.\n")
    const status = await m.cli("--json", "skill", "status")
    expect(status.code).toBe(0)
    const rows = JSON.parse(status.stdout).rows as Array<{ unit: string; tool: string; state: string }>
    expect(rows.find((r) => r.unit === "agents/reviewer" && r.tool === "claude")?.state).toBe("home changed")

    const sync = await m.cli("skill", "sync", "--yes")
    expect(sync.code).toBe(0)
    expect(sync.stdout).toMatch(/home → repo {2}team:agents\/reviewer \[claude\] {2}home changed$/m)
    expect(sync.stdout).toMatch(/repo → home {2}team:agents\/reviewer \[codex\]/)
    expect(sync.stdout).toMatch(/committed [0-9a-f]{12} in team \(agents\/reviewer\), pushed/)
    expect(m.up.log()[0]).toBe("sync: agents/reviewer")
    expect(m.up.read("agents/reviewer.md")).toBe("You review code, briefly.\n")
    expect(fs.readFileSync(m.home("codex", "agents/reviewer.md"), "utf8")).toBe("You review code, briefly.\n")
  })

  it("deploys upstream edits; both sides edited exits 3 naming both hashes and writes nothing; --prefer resolves", async () => {
    const { m } = await installed()
    m.up.commit({ "skills/pdf/SKILL.md": "upstream v2\n" })
    const down = await m.cli("skill", "sync")
    expect(down.code).toBe(0)
    expect(fs.readFileSync(m.home("claude", "skills/pdf/SKILL.md"), "utf8")).toBe("upstream v2\n")

    fs.writeFileSync(m.home("claude", "commands/ship.md"), "mine\n")
    m.up.commit({ "commands/ship.md": "theirs\n" })
    const before = m.state()
    const conflict = await m.cli("skill", "sync", "team:commands/*", "--tools", "claude")
    expect(conflict.code).toBe(3)
    expect(conflict.stdout).toMatch(/home ≠ repo {2}team:commands\/ship \[claude\] {2}CONFLICT: both changed/)
    expect(conflict.stderr).toMatch(/conflict: 1 unit changed on both sides/)
    expect(conflict.stderr).toMatch(/team:commands\/ship \[claude\]: home [0-9a-f]{12}, repo [0-9a-f]{12}, base [0-9a-f]{12}/)
    const after = m.state()
    expect(after.claude).toEqual(before.claude)
    expect(after.remote).toEqual(before.remote)
    expect(lockedUnit(after.lock, "commands/ship")).toEqual(lockedUnit(before.lock, "commands/ship"))

    const resolved = await m.cli("--json", "skill", "sync", "--prefer", "repo")
    expect(resolved.code).toBe(0)
    expect(JSON.parse(resolved.stdout).summary).toMatchObject({ conflicts: 0 })
    expect(fs.readFileSync(m.home("claude", "commands/ship.md"), "utf8")).toBe("theirs\n")
  })

  it("--dry-run prints the plan and changes nothing, lock included", async () => {
    const { m } = await installed()
    fs.writeFileSync(m.home("codex", "skills/pdf/SKILL.md"), "codex edit\n")
    m.up.commit({ "agents/reviewer.md": "upstream edit\n" })
    const before = m.state()
    const dry = await m.cli("skill", "sync", "--dry-run")
    expect(dry.code).toBe(0)
    expect(dry.stdout).toMatch(/home → repo {2}team:skills\/pdf \[codex\]/)
    expect(dry.stdout).toMatch(/repo → home {2}team:agents\/reviewer \[claude\]/)
    expect(dry.stdout).toMatch(/plan \(dry run, nothing written\): 3 to home, 1 to repo/)
    expect(m.state()).toEqual(before)
  })

  it("refuses a concurrent run, a corrupt lock and hostile input, writing nothing", async () => {
    const { m } = await installed()
    const lockFile = nodePath.join(m.env.AGENTSYNC_HOME, "cache", ".sync.lock")
    fs.writeFileSync(lockFile, `${process.pid}\n`)
    const busy = await m.cli("skill", "sync")
    expect(busy.code).toBe(1)
    expect(busy.stderr).toMatch(/another sync is in progress/)
    fs.rmSync(lockFile)

    const lockYaml = nodePath.join(m.env.AGENTSYNC_HOME, "lock.yaml")
    fs.writeFileSync(m.home("claude", "commands/ship.md"), "edit\n")
    fs.writeFileSync(lockYaml, "version: 1\nsources: {team: [\n")
    const before = m.state()
    const corrupt = await m.cli("skill", "sync")
    expect(corrupt.code).toBe(1)
    expect(corrupt.stderr).toContain(lockYaml)
    expect(m.state()).toEqual(before)

    for (const args of [
      ["skill", "install", "git:--upload-pack=touch /tmp/agentsync-pwned"],
      ["skill", "install", "git:ext::sh -c touch% /tmp/agentsync-pwned"],
      ["skill", "install", `git:${m.up.bare}`, "--name", "x", "--ref", "--force"],
      ["skill", "source", "add", `git:${m.up.bare}`, "--name", "../../etc"],
      ["skill", "install", `git:${m.up.bare}`, "--name", "y", "--tools", "claude,../../x"]
    ]) {
      const r = await m.cli(...args)
      expect(r.code, args.join(" ")).toBe(1)
      expect(r.stderr).toMatch(/refused/)
    }
    expect(fs.readdirSync(nodePath.join(m.env.AGENTSYNC_HOME, "cache"))).toEqual(["team"])
    expect(m.state()).toEqual(before)
  })
})
