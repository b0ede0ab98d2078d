// A FIFO and a socket in the services tree, through the built CLI against `agentsync serve` on the real PostgreSQL:
// each run names them as not carried and never opens one (an open of a FIFO for reading waits for a writer forever,
// so every run here has a deadline: a hang fails the test instead of stalling it).
import { type ChildProcess, execFileSync } from "node:child_process"
import { cpSync, lstatSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import * as net from "node:net"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ensureBuilt, REPO, start, startServe } from "../support/cli.js"
import { freshDatabase } from "../support/pg.js"
import { tempDirs } from "../support/tree.js"

const tempDir = tempDirs("e2e-special")
const children: Array<ChildProcess> = []
const sockets: Array<net.Server> = []
let url: string
let token: string
let databaseUrl: string

beforeAll(async () => {
  ensureBuilt()
  databaseUrl = await freshDatabase("special")
  const admin = tempDir("admin")
  const created = await start(["--json", "tenant", "create", "Special"], {
    cwd: admin,
    env: { DATABASE_URL: databaseUrl },
    limitMs: 60_000
  }).done
  expect(created.code, created.stderr).toBe(0)
  token = (JSON.parse(created.stdout) as { token: string }).token
  const server = await startServe({ DATABASE_URL: databaseUrl }, admin)
  children.push(server.child)
  url = server.url
}, 120_000)

afterAll(async () => {
  for (const c of children) c.kill("SIGTERM")
  await Promise.all(sockets.map((s) => new Promise((resolve) => s.close(resolve))))
})

/** A run with a deadline: a run that hangs on a FIFO is killed, and fails on its signal. */
const run = async (cwd: string, args: ReadonlyArray<string>, extra: Record<string, string> = {}) => {
  const done = await start(args, {
    cwd,
    env: { AGENTSYNC_DIRECT_URL: url, AGENTSYNC_TOKEN: token, ...extra },
    limitMs: 60_000
  }).done
  expect([args.join(" "), done.signal], `${args.join(" ")} hung (killed after 60 s)`).toEqual([args.join(" "), null])
  return done
}

const fifo = (path: string) => execFileSync("mkfifo", [path])

/** A listening Unix socket at `path`, closed when the file's tests end. */
const socket = (path: string) =>
  new Promise<void>((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(path, () => {
      sockets.push(server)
      resolve()
    })
  })

const project = (name: string) => {
  const root = tempDir(name)
  cpSync(join(REPO, "examples/project"), root, { recursive: true })
  return root
}

interface Row {
  readonly path: string
  readonly status: string
  readonly action?: string
  readonly note?: string
  readonly special?: string
}
const rowsOf = (stdout: string) => (JSON.parse(stdout) as { files: ReadonlyArray<Row> }).files
const notCarried = (stdout: string) =>
  rowsOf(stdout)
    .filter((f) => f.status === "NotCarried")
    .map((f) => [f.path, f.special])

describe("special files in a synced tree (e2e)", () => {
  it("a FIFO and a socket are reported as not carried by push, first push, diff, status and pull, never opened, and stay as they were", async () => {
    const a = project("a")
    // A first push (the tenant is empty: the streamed form) of a tree with a FIFO: carried without it, and named.
    fifo(join(a, "services/config/pipe"))
    const first = await run(a, ["--json", "files", "push"])
    expect(first.code, first.stderr).toBe(0)
    expect(notCarried(first.stdout)).toEqual([["config/pipe", "FIFO"]])
    rmSync(join(a, "services/config/pipe"))
    // Settled: a clean push, then a no-change push answered by the settled mark.
    expect((await run(a, ["files", "push"])).code).toBe(0)
    const settled = await run(a, ["--json", "files", "push"])
    expect(settled.code, settled.stderr).toBe(0)
    expect(notCarried(settled.stdout)).toEqual([])

    // A FIFO beside the config and a socket among the hooks: the settled check must not vouch for the tree now.
    fifo(join(a, "services/config/pipe"))
    await socket(join(a, "services/hooks/agent.sock"))
    const pushed = await run(a, ["--json", "files", "push"])
    expect(pushed.code, pushed.stderr).toBe(0)
    expect(notCarried(pushed.stdout)).toEqual([
      ["config/pipe", "FIFO"],
      ["hooks/agent.sock", "socket"]
    ])
    const row = rowsOf(pushed.stdout).find((f) => f.path === "config/pipe")
    expect(row).toMatchObject({ action: "skip" })
    expect(row?.note).toMatch(/^not carried: a FIFO: file sync carries only regular files, folders and symbolic links/)

    // The text form: a row per path with its kind, and the count.
    const text = await run(a, ["files", "push"])
    expect(text.code, text.stderr).toBe(0)
    expect(text.stdout).toMatch(/NotCarried\s+skip\s+config\/pipe\s+not carried: a FIFO/)
    expect(text.stdout).toMatch(/NotCarried\s+skip\s+hooks\/agent\.sock\s+not carried: a socket/)
    expect(text.stdout).toMatch(/^2 special file\(s\) not carried: FIFOs, sockets and devices are never opened/m)

    const diff = await run(a, ["--json", "files", "diff"])
    expect(diff.code, diff.stderr).toBe(0)
    expect(notCarried(diff.stdout)).toEqual([
      ["config/pipe", "FIFO"],
      ["hooks/agent.sock", "socket"]
    ])
    const status = await run(a, ["status"])
    expect(status.stdout).toMatch(/2 not carried \(agentsync files diff names them\)/)

    // Nothing was opened or replaced: still a FIFO and a socket.
    expect(lstatSync(join(a, "services/config/pipe")).isFIFO()).toBe(true)
    expect(lstatSync(join(a, "services/hooks/agent.sock")).isSocket()).toBe(true)
  }, 300_000)

  it("a FIFO made after the settled mark is named by diff and status, not answered as in step", async () => {
    const m = project("mark")
    // Two pushes: the second finds nothing to do, and the mark of that settled tree is kept.
    expect((await run(m, ["files", "push"])).code).toBe(0)
    expect((await run(m, ["files", "push"])).code).toBe(0)
    // The listing leaves a FIFO out, so it matches the mark's: only the special file says the tree moved.
    fifo(join(m, "services/config/pipe"))
    const diff = await run(m, ["--json", "files", "diff"])
    expect(diff.code, diff.stderr).toBe(0)
    expect(notCarried(diff.stdout)).toEqual([["config/pipe", "FIFO"]])
    const status = await run(m, ["status"])
    expect(status.code, status.stderr).toBe(0)
    expect(status.stdout).toMatch(/1 not carried \(agentsync files diff names them\)/)
    expect(lstatSync(join(m, "services/config/pipe")).isFIFO()).toBe(true)
  }, 300_000)

  it("a FIFO as .agentsyncignore is refused by name, never opened to wait for a writer", async () => {
    const root = project("ignore-fifo")
    expect((await run(root, ["files", "push", "--force"])).code).toBe(0)
    // Settled, so the next run starts from the settled check, which reads the file first.
    expect((await run(root, ["files", "push"])).code).toBe(0)
    rmSync(join(root, "services/.agentsyncignore"), { force: true })
    fifo(join(root, "services/.agentsyncignore"))
    for (const args of [["files", "diff"], ["validate"]]) {
      const done = await start(args, {
        cwd: root,
        env: { AGENTSYNC_DIRECT_URL: url, AGENTSYNC_TOKEN: token },
        limitMs: 20_000
      }).done
      expect([args.join(" "), done.signal]).toEqual([args.join(" "), null])
      expect(done.code, done.stdout).not.toBe(0)
      expect(done.stderr).toMatch(/\.agentsyncignore.*not a regular file/)
    }
    expect(lstatSync(join(root, "services/.agentsyncignore")).isFIFO()).toBe(true)
  }, 300_000)

  it("a pull whose tree has a FIFO where the remote has a file leaves both as they are and says so; one where the remote has a folder is refused", async () => {
    const source = project("source")
    mkdirSync(join(source, "services/config/deep"))
    writeFileSync(join(source, "services/config/deep/x.yaml"), "x: 1\n")
    const pushed = await run(source, ["files", "push", "--force"])
    expect(pushed.code, pushed.stderr).toBe(0)

    const b = tempDir("b")
    mkdirSync(join(b, "services"))
    const first = await run(b, ["files", "pull"])
    expect(first.code, first.stderr).toBe(0)
    // The remote's file, and a FIFO in its place here.
    const remoteBytes = readFileSync(join(source, "services/config/ai.yaml"), "utf8")
    rmSync(join(b, "services/config/ai.yaml"))
    fifo(join(b, "services/config/ai.yaml"))
    const pull = await run(b, ["--json", "files", "pull"])
    expect(pull.code, pull.stderr).toBe(0)
    expect(notCarried(pull.stdout)).toEqual([["config/ai.yaml", "FIFO"]])
    expect(lstatSync(join(b, "services/config/ai.yaml")).isFIFO()).toBe(true)
    // Nor does a push from here take the remote's file away.
    const push = await run(b, ["--json", "files", "push"])
    expect(push.code, push.stderr).toBe(0)
    expect(rowsOf(push.stdout).filter((f) => f.status !== "NotCarried")).toEqual([])
    const check = await run(source, ["--json", "files", "diff"])
    expect(rowsOf(check.stdout)).toEqual([])
    expect(readFileSync(join(source, "services/config/ai.yaml"), "utf8")).toBe(remoteBytes)

    // A FIFO where the remote then makes a folder: the pull refuses, naming it, and writes nothing.
    fifo(join(b, "services/config/deep2"))
    mkdirSync(join(source, "services/config/deep2"))
    writeFileSync(join(source, "services/config/deep2/y.yaml"), "y: 1\n")
    expect((await run(source, ["files", "push"])).code).toBe(0)
    const refused = await run(b, ["files", "pull"])
    expect(refused.code, refused.stderr).toBe(3)
    expect(refused.stderr).toMatch(
      /config\/deep2 is a FIFO here, but the pull would make it a folder \(config\/deep2\/y\.yaml\)/
    )
    expect(lstatSync(join(b, "services/config/deep2")).isFIFO()).toBe(true)
  }, 300_000)

  it("local diff, local sync and validate name a FIFO in an item folder and never open it", async () => {
    const root = project("local")
    fifo(join(root, "services/agents/editor/notes.md"))
    await socket(join(root, "services/skills/semver/s.sock"))
    const env = { DATABASE_URL: databaseUrl }
    const diff = await run(root, ["local", "diff"], env)
    expect(diff.stdout).toMatch(
      /^not read: agents\/editor\/notes\.md is a FIFO; local sync and file sync take only regular files/m
    )
    expect(diff.stdout).toMatch(/^not read: skills\/semver\/s\.sock is a socket/m)
    const json = await run(root, ["--json", "local", "sync", "--to-db"], env)
    expect(json.code, json.stderr).toBe(0)
    expect((JSON.parse(json.stdout) as { special_files: unknown }).special_files).toEqual([
      { path: "agents/editor/notes.md", kind: "FIFO" },
      { path: "skills/semver/s.sock", kind: "socket" }
    ])
    const validate = await run(root, ["validate"])
    expect(validate.stdout).toMatch(/^not read: agents\/editor\/notes\.md is a FIFO/m)
    expect(lstatSync(join(root, "services/agents/editor/notes.md")).isFIFO()).toBe(true)
  }, 300_000)

  /** A project whose rows are stored, then `agents/reviewer.md` replaced by a FIFO: its path. */
  const itemMadeFifo = async (name: string) => {
    const root = project(name)
    const stored = await run(root, ["local", "sync", "--to-db"], { DATABASE_URL: databaseUrl })
    expect(stored.code, stored.stderr).toBe(0)
    const item = join(root, "services/agents/reviewer.md")
    rmSync(item)
    fifo(item)
    return { root, item }
  }

  it("an item file replaced by a FIFO is not an orphan a local sync deletes, either way", async () => {
    const env = { DATABASE_URL: databaseUrl }
    const { root, item } = await itemMadeFifo("local-orphan")
    for (const to of ["--to-db", "--to-disk"]) {
      const orphans = await run(root, ["--json", "local", "sync", to, "--delete-orphans", "--dry-run"], env)
      // To disk, the row would be written over the FIFO: refused by name (the next test), even in a dry run.
      expect([to, orphans.code], orphans.stderr).toEqual([to, to === "--to-db" ? 0 : 1])
      const plan = (JSON.parse(orphans.stdout) as { plan: ReadonlyArray<{ key: string }> }).plan
      expect([to, plan.filter((s) => s.key === "reviewer")]).toEqual([to, []])
    }
    const deleted = await run(root, ["local", "sync", "--to-db", "--delete-orphans"], env)
    expect(deleted.code, deleted.stderr).toBe(0)
    expect(lstatSync(item).isFIFO()).toBe(true)
  }, 300_000)

  it("a sync to disk does not write an item over the FIFO at its path: that item is refused by name, the rest written", async () => {
    const env = { DATABASE_URL: databaseUrl }
    const { root, item } = await itemMadeFifo("local-to-disk")
    rmSync(join(root, "services/agents/researcher"), { recursive: true })
    const written = await run(root, ["--json", "local", "sync", "--to-disk"], env)
    expect(written.code).toBe(1)
    const report = JSON.parse(written.stdout) as {
      results: ReadonlyArray<{ kind: string; errors: ReadonlyArray<{ item: string; message: string }> }>
    }
    expect(report.results.find((r) => r.kind === "agents")?.errors).toEqual([
      {
        item: expect.stringMatching(/agents\/reviewer\.md$/),
        message: expect.stringMatching(
          /agents\/reviewer\.md is a FIFO: local sync writes only regular files; agents reviewer was not written, and it stays as it is$/
        )
      }
    ])
    expect(lstatSync(item).isFIFO()).toBe(true)
    expect(lstatSync(join(root, "services/agents/researcher")).isDirectory()).toBe(true)
  }, 300_000)
})
