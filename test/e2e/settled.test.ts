// The small start path of a no-change `files push|pull` (dist/settled.cjs): it answers exactly as the CLI does,
// and leaves every other run to the CLI. A launcher copied without the CLI bundles tells which path answered: a run
// it answers succeeds, a run it leaves to the CLI fails to find dist/cli.cjs (or dist/files.cjs, the files
// commands' bundle a plain `files push|pull` with work to do runs from).
// Every run, the settled ones included, names what it does not carry at the top of services/.
import { type ChildProcess, spawnSync } from "node:child_process"
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { parseSettledArgs } from "../../src/cli/settledRun.js"
import { agentsync, BIN, cleanEnv, ensureBuilt, REPO, startServe } from "../support/cli.js"
import { freshDatabase } from "../support/pg.js"

const temps: Array<string> = []
const children: Array<ChildProcess> = []
const tempDir = (name: string) => {
  const d = mkdtempSync(join(tmpdir(), `agentsync-e2e-settled-${name}-`))
  temps.push(d)
  return d
}

const FILES = ["agents/a/config.yaml", "skills/s/SKILL.md", "content/blog/hello.md"]
let url: string
let token: string
/** dist/bin.js and dist/settled.cjs without dist/cli.cjs. */
let lone: string
/** dist/bin.js, dist/settled.cjs and dist/files.cjs without dist/cli.cjs. */
let filesOnly: string

const project = () => {
  const root = tempDir("project")
  writeFileSync(join(root, "agentsync.yaml"), "services: services\n")
  for (const f of FILES) {
    mkdirSync(join(root, "services", f, ".."), { recursive: true })
    writeFileSync(join(root, "services", f), `${f}\n`)
  }
  return root
}
/** Makes every file older than the racy window, as a tree that was not just written is. */
const age = (root: string) => {
  const past = new Date(Date.now() - 60_000)
  for (const f of FILES) utimesSync(join(root, "services", f), past, past)
}
const env = (extra: Record<string, string | undefined> = {}) => ({
  AGENTSYNC_DIRECT_URL: url,
  AGENTSYNC_TOKEN: token,
  ...extra
})
/** The full CLI (the bundle itself, not the launcher). */
const full = (root: string, args: ReadonlyArray<string>, extra: Record<string, string | undefined> = {}) =>
  spawnSync(process.execPath, [join(REPO, "dist/cli.cjs"), ...args], {
    cwd: root,
    env: cleanEnv(env(extra)),
    encoding: "utf8"
  })
/** The launcher without the CLI: succeeds only when the settled path answered. */
const small = (root: string, args: ReadonlyArray<string>, extra: Record<string, string | undefined> = {}) =>
  spawnSync(process.execPath, [join(lone, "bin.js"), ...args], {
    cwd: root,
    env: cleanEnv(env(extra)),
    encoding: "utf8"
  })
const leftToCli = (r: ReturnType<typeof small>) => r.status !== 0 && /(cli|files)\.cjs/.test(r.stderr)
/** A push that settles the project: pushed, aged, pushed again (the second run keeps the mark). */
const settle = async (root: string) => {
  age(root)
  const r = await agentsync(["--json", "files", "push"], { cwd: root, env: env() })
  expect(r.code, r.stderr).toBe(0)
}

beforeAll(async () => {
  ensureBuilt()
  lone = tempDir("lone")
  copyFileSync(BIN, join(lone, "bin.js"))
  copyFileSync(join(REPO, "dist/settled.cjs"), join(lone, "settled.cjs"))
  filesOnly = tempDir("files-only")
  for (const f of ["bin.js", "settled.cjs", "files.cjs"]) copyFileSync(join(REPO, "dist", f), join(filesOnly, f))
  const admin = tempDir("admin")
  const databaseUrl = await freshDatabase("e2esettled")
  const created = await agentsync(["--json", "tenant", "create", "Settled"], {
    cwd: admin,
    env: { DATABASE_URL: databaseUrl }
  })
  expect(created.code, created.stderr).toBe(0)
  token = JSON.parse(created.stdout).token
  const server = await startServe({ DATABASE_URL: databaseUrl }, admin)
  children.push(server.child)
  url = server.url
}, 300_000)

afterAll(() => {
  for (const c of children) c.kill("SIGTERM")
  for (const d of temps) rmSync(d, { recursive: true, force: true })
})

describe("the settled start path", () => {
  it("takes only files push|pull with options that cannot change a settled run's report", () => {
    expect(parseSettledArgs(["--json", "files", "push", "--dry-run"])).toEqual({
      command: "push",
      dryRun: true,
      json: true,
      quiet: false,
      services: undefined
    })
    expect(parseSettledArgs(["files", "-q", "pull", "--services", "a/b", "--color=never"])?.services).toBe("a/b")
    for (const args of [
      ["files", "diff"],
      ["files", "push", "--help"],
      ["files", "push", "--log-level", "debug"],
      ["files", "push", "extra"],
      ["files", "push", "--services"],
      ["files", "push", "--color", "pink"],
      ["files", "push", "--", "x"],
      ["push", "files"]
    ])
      expect(parseSettledArgs(args), args.join(" ")).toBeUndefined()
  })

  // About 25 runs of the CLI: two minutes and more on a loaded machine.
  it("answers a no-change push and pull as the CLI does, text and JSON, and leaves any change to the CLI", async () => {
    const root = project()
    expect((await agentsync(["--json", "files", "push"], { cwd: root, env: env() })).code).toBe(0)
    await settle(root)
    for (const args of [
      ["--json", "files", "push"],
      ["--json", "files", "pull", "--dry-run"],
      ["files", "push", "-q", "--services", join(root, "services")]
    ]) {
      const a = small(root, args)
      const b = full(root, args)
      expect([a.status, a.stdout, a.stderr], args.join(" ")).toEqual([0, b.stdout, b.stderr])
    }
    // The same size, a new mtime: the listing differs.
    writeFileSync(join(root, "services", FILES[0]!), `${FILES[0]!.toUpperCase()}\n`)
    expect(leftToCli(small(root, ["files", "push"]))).toBe(true)
    await settle(root)
    expect(small(root, ["files", "push"]).status).toBe(0)
    // The same bytes and mtime, made executable: the listing differs too.
    chmodSync(join(root, "services", FILES[1]!), 0o755)
    expect(leftToCli(small(root, ["files", "push"]))).toBe(true)
    await settle(root)
    expect(small(root, ["files", "push"]).status).toBe(0)
    // Another configuration: the project file, the endpoint's spelling, another services tree, no token.
    writeFileSync(join(root, "agentsync.yaml"), "services: services\n# edited\n")
    expect(leftToCli(small(root, ["files", "push"]))).toBe(true)
    await settle(root)
    expect(small(root, ["files", "push"]).status).toBe(0)
    expect(leftToCli(small(root, ["files", "push"], { AGENTSYNC_DIRECT_URL: `${url}/` }))).toBe(true)
    expect(leftToCli(small(root, ["files", "push", "--services", project()]))).toBe(true)
    expect(leftToCli(small(root, ["files", "push"], { AGENTSYNC_TOKEN: undefined }))).toBe(true)
    // A setting the run that kept the mark did not have, malformed here: the CLI refuses it (exit 2).
    expect(leftToCli(small(root, ["files", "push"], { AGENTSYNC_TIMEOUT_MS: "soon" }))).toBe(true)
    // A run holding the lock, or a pull a crash left half done.
    for (const name of ["files.lock", "pull-journal.json"]) {
      writeFileSync(join(root, ".agentsync", name), "{}")
      expect(leftToCli(small(root, ["files", "push"])), name).toBe(true)
      rmSync(join(root, ".agentsync", name))
    }
    expect(small(root, ["files", "push"]).status).toBe(0)
    // Another client moves the head: no 304.
    const other = project()
    writeFileSync(join(other, "services", "skills/s/SKILL.md"), "# edited elsewhere\n")
    expect((await agentsync(["--json", "files", "push", "--force"], { cwd: other, env: env() })).code).toBe(0)
    expect(leftToCli(small(root, ["files", "pull"]))).toBe(true)
    const pulled = await agentsync(["--json", "files", "pull"], { cwd: root, env: env() })
    expect(JSON.parse(pulled.stdout).actions.write, pulled.stderr).toBeGreaterThan(0)
  }, 300_000)

  it("runs a push or pull with work to do from the files commands' bundle alone, as the CLI does", async () => {
    const root = project()
    // The tenant holds the earlier test's tree: this one takes its place.
    const first = await agentsync(["--json", "files", "push", "--force", "--delete"], { cwd: root, env: env() })
    expect(first.code, first.stderr).toBe(0)
    writeFileSync(join(root, "services", FILES[2]!), "# changed\n")
    const lean = (args: ReadonlyArray<string>) =>
      spawnSync(process.execPath, [join(filesOnly, "bin.js"), ...args], {
        cwd: root,
        env: cleanEnv(env()),
        encoding: "utf8"
      })
    const args = ["--json", "files", "push", "--dry-run"]
    const [a, b] = [lean(args), full(root, args)]
    expect([a.status, a.stdout, a.stderr]).toEqual([b.status, b.stdout, b.stderr])
    const pushed = lean(["--json", "files", "push"])
    expect(pushed.status, pushed.stderr).toBe(0)
    expect(JSON.parse(pushed.stdout).actions).toEqual({ upload: 1 })
    // Anything else is the whole CLI's: here an option the settled check does not read.
    expect(leftToCli(lean(["files", "pull", "--revision", "x"]))).toBe(true)
  }, 120_000)

  it("answers a no-change push right after a one-file push, and never one after a same-size rewrite", async () => {
    const root = project()
    const first = await agentsync(["--json", "files", "push", "--force", "--delete"], { cwd: root, env: env() })
    expect(first.code, first.stderr).toBe(0)
    await settle(root)
    // Edited just now, pushed at once: the edit's tick is before the push's listing stamp, so the push keeps a mark
    // and the next run is settled (the racy window of old left it to the CLI for two seconds).
    writeFileSync(join(root, "services", FILES[0]!), "# one file\n")
    const pushed = await agentsync(["--json", "files", "push"], { cwd: root, env: env() })
    expect([pushed.code, JSON.parse(pushed.stdout).actions], pushed.stderr).toEqual([0, { upload: 1 }])
    expect(small(root, ["files", "push"]).status).toBe(0)
    // The same size again: the listing (its mtime) differs, the CLI runs and sends it.
    writeFileSync(join(root, "services", FILES[0]!), "# one File\n")
    expect(leftToCli(small(root, ["files", "push"]))).toBe(true)
    const again = await agentsync(["--json", "files", "push"], { cwd: root, env: env() })
    expect([again.code, JSON.parse(again.stdout).files_sent], again.stderr).toEqual([0, 1])
  }, 120_000)
})

describe("what file sync leaves out at the top of services/", () => {
  /** Beside the members: a folder and a file the user put at the top, one left out on purpose, and litter. */
  const AT_TOP = ["prompts/p.md", "notes.md", "drafts/d.md", ".DS_Store"]
  const NOTE =
    /^note: services\/notes\.md and services\/prompts\/ are not carried by file sync \(only its folders are: agents, .*hooks\); move them under one of those, or add them to \.agentsyncignore to silence this$/
  const LEFT_OUT = ["notes.md", "prompts/"]
  const notes = (stderr: string) => stderr.split("\n").filter((l) => l.startsWith("note:"))
  const withTop = () => {
    const root = project()
    for (const f of AT_TOP) {
      mkdirSync(join(root, "services", f, ".."), { recursive: true })
      writeFileSync(join(root, "services", f), `${f}\n`)
    }
    writeFileSync(join(root, "services/.agentsyncignore"), "drafts/\n")
    const past = new Date(Date.now() - 60_000)
    utimesSync(join(root, "services/.agentsyncignore"), past, past)
    age(root)
    return root
  }
  const run = (root: string, args: ReadonlyArray<string>, extra: Record<string, string> = {}) =>
    agentsync(args, { cwd: root, env: env(extra) })

  it("push, diff, pull and sync name it once on stderr and in --json, not what is ignored or litter", async () => {
    const root = withTop()
    // The tenant holds the earlier tests' tree: this one takes its place.
    for (const args of [
      ["files", "push", "--force", "--delete"],
      ["files", "diff"],
      ["files", "pull"]
    ]) {
      const r = await run(root, args)
      expect(r.code, r.stderr).toBe(0)
      expect(notes(r.stderr), args.join(" ")).toHaveLength(1)
      expect(notes(r.stderr)[0]).toMatch(NOTE)
      expect(r.stdout).not.toMatch(/note:|prompts|notes\.md|drafts|DS_Store/)
    }
    const json = await run(root, ["--json", "files", "push"])
    const report = JSON.parse(json.stdout)
    expect(report.left_out).toEqual(LEFT_OUT)
    expect(notes(json.stderr)[0]).toMatch(NOTE)
    // Nothing left out: no note and no field, the report as it always was.
    const plain = await run(project(), ["--json", "files", "push", "--force", "--delete"])
    expect(plain.code, plain.stderr).toBe(0)
    expect(notes(plain.stderr)).toEqual([])
    expect(Object.keys(JSON.parse(plain.stdout)).sort()).toEqual(
      Object.keys(report)
        .filter((k) => k !== "left_out")
        .sort()
    )
    expect(notes((await run(root, ["-q", "files", "diff"])).stderr)).toEqual([])
    // `sync` runs file sync: its files report and its stderr say the same (its database part, refused at once,
    // fails on its own).
    const sync = await run(root, ["--json", "sync", "--dry-run"], { DATABASE_URL: "postgres://u@127.0.0.1:9/none" })
    const files = JSON.parse(sync.stdout).operations.find((o: { operation: string }) => o.operation === "files")
    expect(files.report.left_out).toEqual(LEFT_OUT)
    expect(notes(sync.stderr)[0]).toMatch(NOTE)
  }, 120_000)

  it("a no-change push or pull answered by the settled start path names it as the CLI does", async () => {
    const root = withTop()
    for (let i = 0; i < 2; i++) {
      const r = await run(root, ["--json", "files", "push", "--force", "--delete"])
      expect(r.code, r.stderr).toBe(0)
    }
    for (const args of [
      ["files", "push"],
      ["--json", "files", "push"],
      ["files", "pull"]
    ]) {
      const a = small(root, args)
      const b = full(root, args)
      expect([a.status, a.stdout, a.stderr], args.join(" ")).toEqual([0, b.stdout, b.stderr])
      expect(notes(a.stderr)).toHaveLength(1)
      expect(notes(a.stderr)[0]).toMatch(NOTE)
    }
    expect(JSON.parse(small(root, ["--json", "files", "push"]).stdout).left_out).toEqual(LEFT_OUT)
    expect(notes(small(root, ["files", "push", "-q"]).stderr)).toEqual([])
  }, 120_000)
})
