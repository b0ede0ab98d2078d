import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { agentsync, BIN } from "../support/cli.js"
import { isolateGit, lockedUnit, makeUpstream, readTree, SAMPLE, tempRoot } from "../support/gitFixture.js"

const top = tempRoot("skill-e2e")
isolateGit(top)
afterAll(() => fs.rmSync(top, { recursive: true, force: true }))

let n = 0
/** A user's machine in a temp dir: HOME, AGENTSYNC_HOME and the tool homes all point inside it. */
const machine = (files: Record<string, string> = SAMPLE) => {
  const root = nodePath.join(top, `m${n++}`)
  fs.mkdirSync(root, { recursive: true })
  const up = makeUpstream(root, files)
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
  /** Starts a command and kills it with SIGKILL as soon as `started` holds (polled), or lets it end; resolves when it is gone. */
  const killWhen = (args: ReadonlyArray<string>, started: () => boolean) =>
    new Promise<{ readonly killed: boolean }>((resolve, reject) => {
      const clean: Record<string, string> = {}
      for (const [k, v] of Object.entries(process.env))
        if (v !== undefined && !/^(DATABASE_URL|AGENTSYNC_)/.test(k)) clean[k] = v
      for (const [k, v] of Object.entries(env)) if (v !== undefined) clean[k] = v
      const child = spawn(process.execPath, [BIN, ...args], { cwd: root, env: clean, stdio: "ignore" })
      let killed = false
      const poll = setInterval(() => {
        if (!killed && started()) {
          killed = child.kill("SIGKILL")
          clearInterval(poll)
        }
      }, 1)
      child.on("error", reject)
      child.on("exit", () => {
        clearInterval(poll)
        resolve({ killed })
      })
    })
  return { root, up, env, cli, home, state, killWhen }
}

/** Every path under `dir` whose name marks an interrupted write. */
const temps = (dir: string): ReadonlyArray<string> => {
  const out: Array<string> = []
  const walk = (d: string) => {
    if (!fs.existsSync(d)) return
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.name.startsWith(".agentsync-tmp-")) out.push(nodePath.join(d, e.name))
      else if (e.isDirectory()) walk(nodePath.join(d, e.name))
    }
  }
  walk(dir)
  return out
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
    expect(fs.readFileSync(m.home("codex", "skills/pdf/scripts/fill.py"), "utf8")).toBe(
      SAMPLE["skills/pdf/scripts/fill.py"]
    )

    const list = await m.cli("--json", "skill", "source", "list")
    expect(list.code).toBe(0)
    expect(JSON.parse(list.stdout).sources[0]).toMatchObject({
      name: "team",
      uri: `git:file://${m.up.bare}`,
      ref: "main",
      units: 3,
      tools: ["claude", "codex"]
    })

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

  it("a repository path with a newline or an escape sequence is left out and shown escaped, never raw", async () => {
    const { m } = await installed()
    m.up.commit({ "skills/pdf/a\nb\x1b[2J.md": "x\n" })
    const sync = await m.cli("skill", "sync", "--yes")
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to find them
    const raw = /[\u0000-\u0009\u000b-\u001f\u007f]/
    expect(sync.stdout).not.toMatch(raw)
    expect(sync.stderr).not.toMatch(raw)
    expect(sync.stdout).toContain("ignored team:skills/pdf/a\\x0ab\\x1b[2J.md: unsafe file name\n")
    expect(fs.readdirSync(m.home("claude", "skills/pdf")).some((f) => f.startsWith("a"))).toBe(false)
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
    expect(conflict.stderr).toMatch(
      /team:commands\/ship \[claude\]: home [0-9a-f]{12}, repo [0-9a-f]{12}, base [0-9a-f]{12}/
    )
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

  it("a skill install or sync killed with SIGKILL leaves nothing behind once the next run is done, and that run converges", async () => {
    const files: Record<string, string> = {}
    const UNITS = 160
    const name = (i: number) => `s${String(i).padStart(3, "0")}`
    for (let i = 0; i < UNITS; i++) {
      files[`skills/${name(i)}/SKILL.md`] = `skill ${i}\n${"step. ".repeat(200)}\n`
      files[`skills/${name(i)}/reference.md`] = `reference ${i}\n`
      files[`skills/${name(i)}/scripts/run.sh`] = `echo ${i}\n`
    }
    const m = machine(files)
    const install = ["skill", "install", `git:${m.up.bare}`, "--tools", "claude,codex", "--name", "team"]
    const homes = [nodePath.join(m.root, "claude"), nodePath.join(m.root, "codex")]
    const deployed = () =>
      fs.existsSync(m.home("claude", "skills")) && fs.readdirSync(m.home("claude", "skills")).length >= 5
    const first = await m.killWhen(install, deployed)
    expect(first.killed).toBe(true)
    const again = await m.cli(...install)
    expect(again.stderr).toBe("")
    expect(again.code).toBe(0)
    for (const h of homes) {
      expect(temps(h), `${first.killed ? "killed" : "not killed"} install`).toEqual([])
      expect(readTree(nodePath.join(h, "skills"))[`${name(UNITS - 1)}/reference.md`]).toBe(`reference ${UNITS - 1}\n`)
      expect(Object.keys(readTree(nodePath.join(h, "skills")))).toHaveLength(UNITS * 3)
    }

    // Every unit changes upstream; the sync is killed once it has begun writing them.
    const changes: Record<string, string> = {}
    for (let i = 0; i < UNITS; i++) changes[`skills/${name(i)}/SKILL.md`] = `skill ${i}, second edition\n`
    m.up.commit(changes)
    const writing = () => {
      try {
        return fs.readFileSync(m.home("claude", `skills/${name(0)}/SKILL.md`), "utf8").includes("second")
      } catch {
        return false
      }
    }
    const killed = await m.killWhen(["skill", "sync", "--yes"], writing)
    expect(killed.killed).toBe(true)
    const next = await m.cli("skill", "sync", "--yes")
    expect(next.code, next.stderr).toBe(0)
    expect(next.stdout).not.toMatch(/CONFLICT/)
    for (const h of homes) expect(temps(h), `${killed.killed ? "killed" : "not killed"} sync`).toEqual([])
    expect(temps(m.env.AGENTSYNC_HOME)).toEqual([])
    for (const h of homes)
      for (let i = 0; i < UNITS; i++)
        expect(fs.readFileSync(nodePath.join(h, `skills/${name(i)}/SKILL.md`), "utf8")).toBe(
          `skill ${i}, second edition\n`
        )
    const quiet = await m.cli("--json", "skill", "sync", "--yes")
    expect(JSON.parse(quiet.stdout).summary).toMatchObject({ toHome: 0, toRepo: 0, conflicts: 0 })
  }, 180_000)

  it("status and sync agree on exit codes: an unusable source is 1 for both, a conflict 3 for both", async () => {
    const { m } = await installed()
    fs.writeFileSync(m.home("claude", "commands/ship.md"), "mine\n")
    m.up.commit({ "commands/ship.md": "theirs\n" })
    const status = await m.cli("skill", "status")
    expect(status.stdout).toMatch(/team +commands\/ship +claude +conflict/)
    expect(status.code).toBe(3)
    expect((await m.cli("skill", "sync", "--yes")).code).toBe(3)

    const settled = await m.cli("skill", "sync", "--yes", "--prefer", "repo", "--tools", "claude")
    expect(settled.code).toBe(0)
    const kept = /kept the replaced copy of team:commands\/ship \(home of claude\) in (\S+)/.exec(settled.stdout)
    expect(kept).not.toBeNull()
    expect(fs.readFileSync(kept![1]!, "utf8")).toBe("mine\n")

    fs.renameSync(m.up.bare, `${m.up.bare}.gone`)
    const broken = await m.cli("skill", "status")
    expect(broken.code).toBe(1)
    expect(broken.stdout).toMatch(/error in source team/)
    expect((await m.cli("skill", "sync", "--yes")).code).toBe(1)
  }, 180_000)

  it("a layout set from a file is checked with its line; an install that matches nothing says what the tree holds and exits 1", async () => {
    const m = machine({
      "packs/a/prompts/x.md": "x\n",
      "packs/b/prompts/y.md": "y\n",
      "packs/b/prompts/notes.md": "notes\n"
    })
    const nothing = await m.cli("skill", "install", `git:${m.up.bare}`, "--tools", "claude", "--name", "team")
    expect(nothing.code).toBe(1)
    expect(nothing.stderr).toMatch(/matches no unit.*found 3 \.md files in packs\/\*\/prompts\//s)
    expect(fs.existsSync(nodePath.join(m.env.AGENTSYNC_HOME, "manifest.yaml"))).toBe(false)

    const bad = nodePath.join(m.root, "bad-layout.yaml")
    fs.writeFileSync(
      bad,
      "- glob: packs/{pack}/prompts/{name}.md\n  repo: packs/{pack}/prompts/{name}.md\n  home: commands/{nmae}.md\n"
    )
    const added = await m.cli("skill", "source", "add", `git:${m.up.bare}`, "--name", "team", "--layout", bad)
    expect(added.code).toBe(1)
    expect(added.stderr).toContain(
      `${bad}:3: 0.home: "commands/{nmae}.md" uses {nmae}, which the glob does not capture`
    )

    const good = nodePath.join(m.root, "layout.yaml")
    fs.writeFileSync(
      good,
      "- glob: packs/{pack}/prompts/{name}.md\n  repo: packs/{pack}/prompts/{name}.md\n  home: commands/{name}.md\n  exclude: [notes.md]\n"
    )
    expect((await m.cli("skill", "source", "add", `git:${m.up.bare}`, "--name", "team")).code).toBe(0)
    const set = await m.cli("skill", "source", "layout", "team", good)
    expect(set.code, set.stderr).toBe(0)
    const shown = await m.cli("skill", "source", "layout", "team")
    expect(shown.stdout).toContain("home: commands/{name}.md")
    const ok = await m.cli("skill", "install", "team", "--tools", "claude")
    expect(ok.code, ok.stderr).toBe(0)
    expect(readTree(nodePath.join(m.root, "claude"))).toEqual({
      "commands/x.md": "x\n",
      "commands/y.md": "y\n"
    })
  })
})
