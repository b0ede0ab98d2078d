// The commands that look at a project as a user runs them (status, doctor, files log, files pull --revision,
// diffs with -p): the built CLI, one `agentsync serve` on loopback over the real PostgreSQL, the project
// database on PostgreSQL too.
import type { ChildProcess } from "node:child_process"
import {
  appendFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync
} from "node:fs"
import type { AddressInfo } from "node:net"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { agentsync, ensureBuilt, REPO, startServe } from "../support/cli.js"
import { freshDatabase } from "../support/pg.js"
import { bytePath, latin1 } from "../support/rawNames.js"
import { walk } from "../support/tree.js"

const temps: Array<string> = []
const children: Array<ChildProcess> = []
const tempDir = (name: string) => {
  const d = mkdtempSync(join(tmpdir(), `agentsync-e2e-inspect-${name}-`))
  temps.push(d)
  return d
}

let url: string
let token: string
let historyToken: string
let projectDb: string
/**
 * Deadlines for a heavily loaded machine: what cannot be reached here is refused at once (a closed loopback
 * port), so a long deadline costs nothing, and a part that is slow only under load still answers.
 */
const PATIENT = ["--timeout", "120"]
let localDb: string
let emptyDb: string
let home: string

beforeAll(async () => {
  ensureBuilt()
  const [serverDb, project, local, empty] = await Promise.all([
    freshDatabase("e2einspect"),
    freshDatabase("e2einspectp"),
    freshDatabase("e2einspectl"),
    freshDatabase("e2einspecte")
  ])
  projectDb = project
  localDb = local
  emptyDb = empty
  home = tempDir("home")
  // A tenant per test that pushes: the tests run at once.
  const [created, other] = await Promise.all(
    ["Acme", "Globex"].map((name) =>
      agentsync(["--json", "tenant", "create", name], { cwd: home, env: { DATABASE_URL: serverDb } })
    )
  )
  expect(created!.code, created!.stderr).toBe(0)
  expect(other!.code, other!.stderr).toBe(0)
  token = JSON.parse(created!.stdout).token
  historyToken = JSON.parse(other!.stdout).token
  const server = await startServe({ DATABASE_URL: serverDb }, home)
  children.push(server.child)
  url = server.url
}, 300_000)

afterAll(() => {
  for (const c of children) c.kill("SIGTERM")
  for (const d of temps) rmSync(d, { recursive: true, force: true })
})

const env = (extra: Record<string, string | undefined> = {}) => ({
  AGENTSYNC_DIRECT_URL: url,
  AGENTSYNC_TOKEN: token,
  DATABASE_URL: projectDb,
  AGENTSYNC_HOME: join(home, "agentsync-home"),
  HOME: home,
  ...extra
})

interface Part {
  readonly part: string
  readonly state: string
  readonly changes?: number
  readonly detail: string
}
const parts = (stdout: string): Record<string, Part> =>
  Object.fromEntries((JSON.parse(stdout) as { parts: Array<Part> }).parts.map((p) => [p.part, p]))
const states = (stdout: string): Record<string, string> =>
  Object.fromEntries(Object.values(parts(stdout)).map((p) => [p.part, p.state]))

describe.concurrent("agentsync status (e2e)", () => {
  it("says each part's state: changes before a sync, in step after, a change after an edit", async () => {
    const root = tempDir("project")
    cpSync(join(REPO, "examples/project"), root, { recursive: true })
    const run = (args: ReadonlyArray<string>, extra: Record<string, string> = {}) =>
      agentsync(args, { cwd: root, env: env(extra) })

    const before = await run(["status", "--json", ...PATIENT])
    expect(before.code, before.stderr).toBe(1)
    expect(states(before.stdout)).toEqual({
      files: "changes",
      local: "changes",
      database: "not-configured",
      skills: "not-configured",
      server: "in-step"
    })

    expect((await run(["files", "push"])).code).toBe(0)
    expect((await run(["local", "sync", "--to-db"])).code).toBe(0)
    const inStep = await run(["status", ...PATIENT])
    expect(inStep.code, inStep.stderr + inStep.stdout).toBe(0)
    expect(inStep.stdout).toMatch(/^files +in step/m)
    expect(inStep.stdout).toMatch(/^local +in step/m)
    expect(inStep.stdout).toMatch(/^database +not configured/m)
    expect(inStep.stdout).toContain("in step: files, local, server; not configured: database, skills")

    appendFileSync(join(root, "services/agents/editor/system_prompt.md"), "\nOne more line.\n")
    const changed = await run(["status", "--json", ...PATIENT])
    expect(changed.code).toBe(1)
    const c = parts(changed.stdout)
    expect(c.files).toMatchObject({ state: "changes", changes: 1 })
    expect(c.local!.state).toBe("changes")
    expect(c.server!.state).toBe("in-step")
  }, 300_000)

  it("does not create the embedded database: a project without one says so at once", async () => {
    const root = tempDir("fresh")
    cpSync(join(REPO, "examples/project"), root, { recursive: true })
    const r = await agentsync(["status", "--json", "--timeout", "30"], {
      cwd: root,
      env: env({ DATABASE_URL: undefined })
    })
    const p = parts(r.stdout)
    expect(p.local).toMatchObject({ state: "not-configured" })
    expect(p.local!.detail).toContain("agentsync local sync")
    expect(p.files!.state).toBe("changes")
    expect(r.code).toBe(1)
    expect(existsSync(join(root, ".agentsync", "pgdata")) || existsSync(join(root, ".agentsync", "pgdata.init"))).toBe(
      false
    )
  }, 300_000)

  it("exits 4 when nothing is known to differ but parts cannot tell, each saying why", async () => {
    const root = tempDir("gone")
    cpSync(join(REPO, "examples/project"), root, { recursive: true })
    const gone = await agentsync(["status", "--json", ...PATIENT], {
      cwd: root,
      env: env({ AGENTSYNC_DIRECT_URL: "http://127.0.0.1:9", DATABASE_URL: "postgres://nobody@127.0.0.1:9/none" })
    })
    expect(gone.code, gone.stdout).toBe(4)
    expect(states(gone.stdout)).toEqual({
      files: "cannot-tell",
      local: "cannot-tell",
      database: "not-configured",
      skills: "not-configured",
      server: "cannot-tell"
    })
    expect(parts(gone.stdout).server!.detail).toContain("127.0.0.1:9")
    expect(gone.stdout).not.toContain(token)
  }, 300_000)
  it("a part that does not answer within --timeout says so, and the others still answer", async () => {
    // A server that takes the connection and never answers.
    const silent = createServer(() => {})
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve))
    try {
      const root = tempDir("silent")
      cpSync(join(REPO, "examples/project"), root, { recursive: true })
      const r = await agentsync(["status", "--json", "--timeout", "2"], {
        cwd: root,
        env: env({ AGENTSYNC_DIRECT_URL: `http://127.0.0.1:${(silent.address() as AddressInfo).port}` })
      })
      const p = parts(r.stdout)
      expect(p.server).toMatchObject({ state: "cannot-tell", detail: "no answer within 2s" })
      expect(p.files).toMatchObject({ state: "cannot-tell", detail: "no answer within 2s" })
      // Every part is there, whatever the others did (on a loaded machine, any may be slower than 2 s).
      expect(Object.keys(p).sort()).toEqual(["database", "files", "local", "server", "skills"])
      expect([1, 4]).toContain(r.code)
    } finally {
      silent.close()
    }
  }, 300_000)
})

describe.concurrent("agentsync doctor (e2e)", () => {
  it("passes on a working setup and never prints the token", async () => {
    const root = tempDir("doctor-ok")
    cpSync(join(REPO, "examples/project"), root, { recursive: true })
    const r = await agentsync(["doctor", ...PATIENT], { cwd: root, env: env() })
    expect(r.code, r.stdout).toBe(0)
    expect(r.stdout).toMatch(/^ok +server: .* accepts the token$/m)
    expect(r.stdout).toMatch(/^ok +git: git version/m)
    expect(r.stdout).toMatch(/^ok +services path: .*5 agents, 11 skills, 35 content items$/m)
    expect(r.stdout).not.toContain(token)
  }, 300_000)

  it("warns about what file sync leaves out at the top of services/, and still passes", async () => {
    const root = tempDir("doctor-left-out")
    cpSync(join(REPO, "examples/project"), root, { recursive: true })
    mkdirSync(join(root, "services/superpowers"))
    writeFileSync(join(root, "services/superpowers/SKILL.md"), "# not carried\n")
    writeFileSync(join(root, "services/notes.txt"), "neither\n")
    writeFileSync(join(root, "services/.DS_Store"), "hidden names are litter, not named")
    // What the ignore file names is left out on purpose: not named either.
    mkdirSync(join(root, "services/drafts"))
    writeFileSync(join(root, "services/drafts/a.md"), "ignored\n")
    appendFileSync(join(root, "services/.agentsyncignore"), "\ndrafts/\n")
    const r = await agentsync(["doctor", ...PATIENT], { cwd: root, env: env() })
    expect(r.code, r.stdout).toBe(0)
    expect(r.stdout).toMatch(
      /^warn +services path: .*; file sync carries only its folders, not notes\.txt, superpowers\/$/m
    )
    expect(r.stdout).toMatch(/fix: move what should travel under one of agents, skills, content/)
  }, 300_000)

  it("warns of names that are not UTF-8 that file sync refuses and local sync does not read, and still passes", async () => {
    const root = tempDir("doctor-latin1")
    cpSync(join(REPO, "examples/project"), root, { recursive: true })
    const s = join(root, "services")
    for (const name of ["a-é.txt", "b-é.txt", "c-é.txt", "d-é.txt"])
      writeFileSync(bytePath(join(s, "config"), latin1(name)), "x\n")
    const r = await agentsync(["doctor", ...PATIENT], { cwd: root, env: env() })
    expect(r.code, r.stdout).toBe(0)
    expect(r.stdout).toMatch(
      /^warn +services path: .*35 content items; 4 names are not UTF-8, which files push, pull and diff refuse: "services\/config\/a-\\xe9\.txt", "services\/config\/b-\\xe9\.txt", "services\/config\/c-\\xe9\.txt" and 1 more \(agentsync validate names each\)$/m
    )
    expect(r.stdout).toMatch(
      /^ +fix: for each name that is not UTF-8: rename it, or leave it out in \.agentsyncignore/m
    )
    const json = await agentsync(["doctor", "--json", ...PATIENT], { cwd: root, env: env() })
    expect(json.code).toBe(0)
    const doc = JSON.parse(json.stdout) as {
      ok: boolean
      checks: Array<{ check: string; state: string; detail: string }>
    }
    expect(doc.ok).toBe(true)
    expect(doc.checks.find((c) => c.check === "services path")).toMatchObject({ state: "warn" })
  }, 300_000)

  it("fails on a broken setup with a fix for each problem: missing services path, unreachable server, refused token", async () => {
    const root = tempDir("doctor-broken")
    const r = await agentsync(["doctor", "--services", "missing", ...PATIENT], {
      cwd: root,
      env: env({ AGENTSYNC_DIRECT_URL: "http://127.0.0.1:9", AGENTSYNC_CLOUD_DATABASE_URL: emptyDb })
    })
    expect(r.code).toBe(1)
    expect(r.stdout).toMatch(/^FAIL +services path: missing does not exist/m)
    expect(r.stdout).toMatch(/^FAIL +server: http:\/\/127\.0\.0\.1:9 cannot be reached/m)
    expect(r.stdout).toMatch(/fix: create it \(agentsync init\)/)
    expect(r.stdout).toMatch(/fix: check AGENTSYNC_DIRECT_URL/)
    // A cloud database without the project's tables: named, with how to migrate it.
    expect(r.stdout).toMatch(/^FAIL +cloud database: .*table users is missing/m)
    expect(r.stdout).toContain("DATABASE_URL=<that URL> agentsync local diff")
    expect(r.stdout).toContain("3 check(s) failed")

    const refused = await agentsync(["doctor", "--json", ...PATIENT], {
      cwd: root,
      env: env({ AGENTSYNC_TOKEN: "ast_0000000000000000_not-a-real-token" })
    })
    expect(refused.code).toBe(1)
    const doc = JSON.parse(refused.stdout) as {
      ok: boolean
      checks: Array<{ check: string; state: string; fix?: string }>
    }
    expect(doc.ok).toBe(false)
    const server = doc.checks.find((c) => c.check === "server")
    expect(server).toMatchObject({ state: "fail" })
    expect(server!.fix).toContain("agentsync token create")
    expect(refused.stdout).not.toContain("not-a-real-token")
  }, 300_000)
})

/** Every file under `dir` with its text, by relative path. */
const snapshot = (dir: string): Record<string, string> =>
  Object.fromEntries(walk(dir).map((p) => [p, readFileSync(join(dir, p), "utf8")]))

describe.concurrent("agentsync files log and pull --revision (e2e)", () => {
  it("lists two pushes with who and what changed, and writes the older tree back, which a push makes the head again", async () => {
    const root = tempDir("history")
    cpSync(join(REPO, "examples/project"), root, { recursive: true })
    const services = join(root, "services")
    const own = () => env({ AGENTSYNC_TOKEN: historyToken })
    const run = (args: ReadonlyArray<string>) => agentsync(["--json", ...args], { cwd: root, env: own() })
    const first = JSON.parse((await run(["files", "push"])).stdout) as { revision: string; local_files: number }
    const v1 = snapshot(services)
    appendFileSync(join(services, "agents/editor/system_prompt.md"), "\nEdited.\n")
    rmSync(join(services, "agents/reviewer.md"))
    writeFileSync(join(services, "skills/new-note.md"), "a new file\n")
    const second = await run(["files", "push", "--delete"])
    expect(second.code, second.stderr).toBe(0)

    const log = await run(["files", "log"])
    expect(log.code, log.stderr).toBe(0)
    const revisions = (JSON.parse(log.stdout) as { revisions: Array<Record<string, unknown>> }).revisions
    expect(revisions.map((r) => [r.added, r.changed, r.deleted])).toEqual([
      [1, 1, 1],
      [first.local_files, 0, 0]
    ])
    expect(revisions[1]!.id).toBe(first.revision)
    expect(revisions[0]!.token_name).toBe("admin")
    const human = await agentsync(["files", "log"], { cwd: root, env: own() })
    expect(human.stdout.split("\n")[0]).toMatch(/^revision +time +by +files +added +changed +deleted$/)
    expect(human.stdout).toContain(first.revision.slice(0, 8))

    // The older tree, by the start of its id, with deletions: the same safety as pull (a backup of what it replaced).
    const pulled = await run(["files", "pull", "--revision", first.revision.slice(0, 8), "--delete"])
    expect(pulled.code, pulled.stderr).toBe(0)
    const report = JSON.parse(pulled.stdout) as { revision: string; actions: Record<string, number>; backup?: string }
    expect(report.revision).toBe(first.revision)
    expect(report.actions).toEqual({ write: 2, "delete-local": 1 })
    expect(report.backup).toBeDefined()
    expect(snapshot(services)).toEqual(v1)
    // Against the head it is a local change, which a push makes the head again; -p shows it line by line.
    writeFileSync(join(services, "skills/blob.bin"), Buffer.from([0, 1, 2, 3]))
    const patch = await agentsync(["files", "diff", "-p", "--exit-code"], { cwd: root, env: own() })
    expect(patch.code, patch.stderr).toBe(1)
    expect(patch.stdout).toContain(
      "--- a/agents/editor/system_prompt.md\n+++ b/agents/editor/system_prompt.md\n@@ -1,3 +1 @@\n"
    )
    expect(patch.stdout).toMatch(/^-Edited\.$/m)
    expect(patch.stdout).toContain("--- /dev/null\n+++ b/agents/reviewer.md\n@@ -0,0 +1,")
    expect(patch.stdout).toContain("--- a/skills/new-note.md\n+++ /dev/null\n@@ -1 +0,0 @@\n-a new file\n")
    expect(patch.stdout).toMatch(
      /^Binary files \/dev\/null and b\/skills\/blob\.bin differ \(absent → 4 bytes, sha256 [0-9a-f]{12}\)$/m
    )
    // No colour in a pipe; colour when asked for.
    expect(patch.stdout).not.toContain("\x1b[")
    const coloured = await agentsync(["files", "diff", "-p", "--color", "always"], { cwd: root, env: own() })
    expect(coloured.stdout).toContain("\x1b[31m-Edited.\x1b[0m")
    const json = JSON.parse((await run(["files", "diff", "--patch"])).stdout) as { patches: Array<{ path: string }> }
    expect(json.patches.map((p) => p.path).sort()).toEqual([
      "agents/editor/system_prompt.md",
      "agents/reviewer.md",
      "skills/blob.bin",
      "skills/new-note.md"
    ])
    rmSync(join(services, "skills/blob.bin"))
    expect((await run(["files", "push", "--delete"])).code).toBe(0)
    const after = JSON.parse((await run(["files", "log", "--limit", "1"])).stdout) as {
      revisions: Array<Record<string, unknown>>
    }
    expect(after.revisions).toHaveLength(1)
    expect([after.revisions[0]!.added, after.revisions[0]!.changed, after.revisions[0]!.deleted]).toEqual([1, 1, 1])

    const unknown = await run(["files", "pull", "--revision", "ffffffff"])
    expect(unknown.code).toBe(1)
    expect(JSON.parse(unknown.stdout).error.message).toContain("agentsync files log lists them")
  }, 300_000)
})

describe.concurrent("agentsync local diff -p (e2e)", () => {
  it("shows what changed inside each item's files: the database's rendering against the disk", async () => {
    const root = tempDir("local-patch")
    cpSync(join(REPO, "examples/project"), root, { recursive: true })
    const db = { DATABASE_URL: localDb }
    const synced = await agentsync(["local", "sync", "--to-db"], { cwd: root, env: env(db) })
    expect(synced.code, synced.stderr).toBe(0)
    appendFileSync(join(root, "services/agents/editor/system_prompt.md"), "A new line.\n")
    const r = await agentsync(["local", "diff", "-p", "--exit-code"], { cwd: root, env: env(db) })
    expect(r.code, r.stderr).toBe(1)
    expect(r.stdout).toContain("~ agents editor")
    expect(r.stdout).toContain(
      "--- a/agents/editor/system_prompt.md\n+++ b/agents/editor/system_prompt.md\n@@ -1 +1,2 @@\n"
    )
    expect(r.stdout).toMatch(/^\+A new line\.$/m)
    // Only the file that changed: the item's other files render as they are on disk.
    expect(r.stdout).not.toContain("agents/editor/config.yaml")
  }, 300_000)
})
