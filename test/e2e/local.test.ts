// `agentsync local` as a user runs it: the built CLI against the real PostgreSQL (DATABASE_URL) and the embedded default.
import { spawnSync } from "node:child_process"
import { chmodSync, cpSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { join } from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { AccessRuleKeyed, AgentKeyed, ContentKeyed, diffKeyed, SkillKeyed } from "../../src/domain/diff.js"
import type { Project } from "../../src/domain/project.js"
import { ensureBuilt } from "../support/cli.js"
import { freshDatabase } from "../support/pg.js"
import { readTree, tempDirs } from "../support/tree.js"

const REPO = join(import.meta.dirname, "../..")
const BIN = join(REPO, "dist/bin.js")
const EXAMPLE = join(REPO, "examples/project")

const tempDir = tempDirs("e2e")

beforeAll(() => ensureBuilt())

/** A project: agentsync.yaml + services/, from examples/project or a small generated tree. */
const project = () => {
  const root = tempDir("proj")
  if (existsSync(EXAMPLE)) cpSync(EXAMPLE, root, { recursive: true, filter: (src) => !src.includes(".agentsync") })
  else {
    const put = (path: string, text: string) => {
      mkdirSync(join(root, path, ".."), { recursive: true })
      writeFileSync(join(root, path), text)
    }
    put("agentsync.yaml", "services: services\n")
    put("services/agents/a/config.yaml", "id: a\nname: a\n")
    put("services/skills/s/config.yaml", "id: s\nname: s\n")
    put("services/content/blog/source.yaml", "layout: directory\n")
    put("services/content/blog/p/index.md", "---\ntitle: P\nslug: p\n---\n\nbody\n")
    put(
      "services/access-control/config.yaml",
      "rules:\n  - { entity_type: agent, entity_id: a, access: deny, roles: [x] }\n"
    )
  }
  return root
}

const cli = (cwd: string, args: Array<string>, env: Record<string, string | undefined> = {}) => {
  const merged: Record<string, string> = {}
  for (const [k, v] of Object.entries({ ...process.env, ...env })) if (v !== undefined) merged[k] = v
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, env: merged, encoding: "utf8", timeout: 90_000 })
  if (r.error) throw r.error
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr }
}

const sameItems = (a: Project, b: Project) => {
  expect(diffKeyed(AgentKeyed, a.agents, b.agents).counts.unchanged).toBe(a.agents.length)
  expect(diffKeyed(SkillKeyed, a.skills, b.skills).counts.unchanged).toBe(a.skills.length)
  expect(diffKeyed(ContentKeyed, a.contents, b.contents).counts.unchanged).toBe(a.contents.length)
  expect(diffKeyed(AccessRuleKeyed, a.accessRules, b.accessRules).counts.unchanged).toBe(a.accessRules.length)
  expect(b.agents.length + b.skills.length + b.contents.length + b.accessRules.length).toBe(
    a.agents.length + a.skills.length + a.contents.length + a.accessRules.length
  )
}

type Report = {
  dry_run: boolean
  results: Array<{ kind: string; synced: number; deleted: number; errors: Array<{ message: string }> }>
  plan: Array<unknown>
}
const changed = (r: Report) => r.results.reduce((n, x) => n + x.synced + x.deleted, 0)

describe("agentsync local on PostgreSQL (DATABASE_URL)", () => {
  it("syncs a project to the database and back into an empty directory; no-op runs change nothing", async () => {
    const env = { DATABASE_URL: await freshDatabase("e2e") }
    const src = project()
    const original = readTree(join(src, "services"))

    const toDb = cli(src, ["--json", "local", "sync", "--to-db"], env)
    expect(toDb.stderr).toBe("")
    expect(toDb.code).toBe(0)
    const first = JSON.parse(toDb.stdout) as Report
    // Every item, and every file beside one (an image of a page bundle), is a change of its own.
    expect(changed(first)).toBe(
      original.agents.length +
        original.skills.length +
        original.contents.length +
        original.accessRules.length +
        original.attachments.length
    )

    const diff = cli(src, ["--json", "local", "diff"], env)
    expect(diff.code).toBe(0)
    for (const k of (JSON.parse(diff.stdout) as { kinds: Array<{ changes: Array<unknown> }> }).kinds)
      expect(k.changes).toEqual([])

    const dry = cli(src, ["local", "sync", "--to-db", "--dry-run"], env)
    expect(dry.code).toBe(0)
    expect(dry.stdout).toContain("dry run: nothing to do")

    // A new project: its agentsync.yaml and an empty services/ (a path that does not exist is refused).
    const out = tempDir("out")
    writeFileSync(join(out, "agentsync.yaml"), "services: services\n")
    mkdirSync(join(out, "services"))
    const toDisk = cli(out, ["--json", "local", "sync", "--to-disk"], env)
    expect(toDisk.code).toBe(0)
    sameItems(original, readTree(join(out, "services")))
    const again = JSON.parse(cli(out, ["--json", "local", "sync", "--to-disk"], env).stdout) as Report
    expect(changed(again)).toBe(0)

    // One kind only, as a human table.
    const human = cli(out, ["local", "sync", "--to-db", "--kind", "skills,acl"], env)
    expect(human.code).toBe(0)
    expect(human.stdout).toMatch(
      /^kind\s+direction\s+synced\s+skipped\s+deleted\s+errors\nskills\s+ToDatabase\s+0\s+\d+\s+0\s+0\nacl\s+/
    )
  })

  it("a chmod alone is shown in git's words by diff, -p and --json, and carried both ways", async () => {
    const env = { DATABASE_URL: await freshDatabase("e2e") }
    const root = tempDir("mode")
    writeFileSync(join(root, "agentsync.yaml"), "services: services\n")
    mkdirSync(join(root, "services/content/blog"), { recursive: true })
    const page = join(root, "services/content/blog/run.md")
    writeFileSync(page, "---\ntitle: Run\n---\nbody\n")
    expect(cli(root, ["local", "sync", "--to-db"], env).code).toBe(0)
    chmodSync(page, 0o755)
    const diff = cli(root, ["local", "diff", "--exit-code"], env)
    expect(diff.code).toBe(1)
    expect(diff.stdout).toContain("~ content blog/run (old mode 100644, new mode 100755)")
    const patch = cli(root, ["local", "diff", "-p"], env)
    expect(patch.stdout).toContain(
      "diff --git a/content/blog/run.md b/content/blog/run.md\nold mode 100644\nnew mode 100755\n"
    )
    const json = JSON.parse(cli(root, ["--json", "local", "diff"], env).stdout) as {
      kinds: Array<{ kind: string; changes: Array<unknown> }>
    }
    expect(json.kinds.find((k) => k.kind === "content")?.changes).toEqual([
      { key: "blog/run", status: "Modified", old_mode: "100644", new_mode: "100755" }
    ])
    expect(cli(root, ["local", "sync", "--to-db"], env).code).toBe(0)
    expect(cli(root, ["local", "diff", "--exit-code"], env).code).toBe(0)
    // And back: a fresh tree gets the page executable.
    const out = tempDir("mode-out")
    writeFileSync(join(out, "agentsync.yaml"), "services: services\n")
    mkdirSync(join(out, "services"))
    expect(cli(out, ["local", "sync", "--to-disk"], env).code).toBe(0)
    expect(statSync(join(out, "services/content/blog/run.md")).mode & 0o777).toBe(0o755)
  })

  it("a malformed file is reported file:line and skipped, the rest syncs, exit 1", async () => {
    const env = { DATABASE_URL: await freshDatabase("e2e") }
    const src = project()
    const agents = readdirSync(join(src, "services/agents"))
    // One file, a problem on each of two lines: one item could not be read, not two.
    writeFileSync(join(src, "services/agents", agents[0]!, "config.yaml"), "id: x\nname: a: b\ndescription: c: d\n")
    const r = cli(src, ["--json", "local", "sync", "--to-db"], env)
    expect(r.code).toBe(1)
    const report = JSON.parse(r.stdout) as Report
    const agentResult = report.results.find((x) => x.kind === "agents")!
    expect(agentResult.synced).toBe(agents.length - 1)
    expect(agentResult.errors.length).toBe(2)
    expect(agentResult.errors[0]!.message).toMatch(
      new RegExp(`services/agents/${agents[0]}/config\\.yaml:\\d+: invalid YAML`)
    )
    expect(report.results.find((x) => x.kind === "content")!.synced).toBeGreaterThan(0)
    expect(r.stderr).toMatch(/^error: 1 item could not be read/m)
    // The diff counts it the same way.
    const d = cli(src, ["local", "diff"], env)
    expect(d.code).toBe(1)
    expect(d.stderr).toMatch(/^error: 1 item could not be read/m)
  })

  it("a name with a newline or an escape sequence is shown escaped, on its own line, never raw", async () => {
    const env = { DATABASE_URL: await freshDatabase("e2e") }
    const src = project()
    // A file local sync leaves to file sync, and a malformed agent in a folder whose name clears the screen.
    mkdirSync(join(src, "services/web"), { recursive: true })
    writeFileSync(join(src, "services/web", "a\nforged\x1b[31m.txt"), "x\n")
    mkdirSync(join(src, "services/agents/x\x1b[2Jy"), { recursive: true })
    writeFileSync(join(src, "services/agents/x\x1b[2Jy/config.yaml"), "id: [oops\n")
    const r = cli(src, ["local", "sync", "--to-db", "--verbose"], env)
    expect(r.code).toBe(1)
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to find them
    const raw = /[\u0000-\u0009\u000b-\u001f\u007f]/
    expect(r.stdout).not.toMatch(raw)
    expect(r.stderr).not.toMatch(raw)
    expect(r.stdout).toContain("not synced by local sync: web/a\\x0aforged\\x1b[31m.txt (carried by file sync)\n")
    expect(r.stdout).toMatch(/^! services\/agents\/x\\x1b\[2Jy\/config\.yaml:\d+: invalid YAML/m)
  })

  it("a database that is down is one clear error naming host:port, never the password; bad usage exits 2", async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer()
      s.listen(0, "127.0.0.1", () => {
        const a = s.address()
        s.close(() => resolve(typeof a === "object" && a !== null ? a.port : 0))
      })
    })
    const src = project()
    const r = cli(src, ["local", "diff"], { DATABASE_URL: `postgres://me:Top5ecret@127.0.0.1:${port}/x` })
    expect(r.code).toBe(1)
    expect(r.stderr.trim().split("\n")).toHaveLength(1)
    expect(r.stderr).toContain(`error: database: cannot connect to PostgreSQL at 127.0.0.1:${port}`)
    expect(r.stderr + r.stdout).not.toContain("Top5ecret")

    const both = cli(src, ["local", "sync", "--to-db", "--to-disk"], { DATABASE_URL: `postgres://127.0.0.1:${port}/x` })
    expect(both.code).toBe(2)
    expect(both.stderr).toContain("choose exactly one of --to-db or --to-disk")
  })
})

describe("agentsync local on the embedded default (no DATABASE_URL)", () => {
  it("keeps the database under .agentsync/pgdata, round-trips the tree, and exits by itself", () => {
    const src = project()
    const original = readTree(join(src, "services"))
    const env = { DATABASE_URL: undefined }
    const toDb = cli(src, ["--json", "local", "sync", "--to-db"], env)
    expect(toDb.signal).toBe(null)
    expect(toDb.code).toBe(0)
    expect(existsSync(join(src, ".agentsync/pgdata"))).toBe(true)
    expect(existsSync(join(src, ".agentsync/pgdata.lock"))).toBe(false)

    rmSync(join(src, "services/content"), { recursive: true })
    const back = cli(src, ["--json", "local", "sync", "--to-disk", "--kind", "content"], env)
    expect(back.code).toBe(0)
    expect(changed(JSON.parse(back.stdout) as Report)).toBe(
      original.contents.length + original.attachments.filter((a) => a.kind === "content").length
    )
    sameItems(original, readTree(join(src, "services")))
    expect([...readTree(join(src, "services")).sources].sort()).toEqual([...original.sources].sort())
  }, 180_000)
})
