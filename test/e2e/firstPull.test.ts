// A new user's first pull, and what a failed run says: the built CLI against `agentsync serve` on loopback over
// the real PostgreSQL.
import type { ChildProcess } from "node:child_process"
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { agentsync, ensureBuilt, REPO, startServe } from "../support/cli.js"
import { freshDatabase } from "../support/pg.js"
import { tempDirs, walk } from "../support/tree.js"

const tempDir = tempDirs("e2e-first")
const children: Array<ChildProcess> = []
let url: string
let token: string

beforeAll(async () => {
  ensureBuilt()
  const databaseUrl = await freshDatabase("firstpull")
  const admin = tempDir("admin")
  const created = await agentsync(["--json", "tenant", "create", "First"], {
    cwd: admin,
    env: { DATABASE_URL: databaseUrl }
  })
  expect(created.code, created.stderr).toBe(0)
  token = (JSON.parse(created.stdout) as { token: string }).token
  const server = await startServe({ DATABASE_URL: databaseUrl }, admin)
  children.push(server.child)
  url = server.url
}, 120_000)

afterAll(() => {
  for (const c of children) c.kill("SIGTERM")
})

const env = (extra: Record<string, string> = {}) => ({ AGENTSYNC_DIRECT_URL: url, AGENTSYNC_TOKEN: token, ...extra })
const run = (cwd: string, args: ReadonlyArray<string>, extra: Record<string, string> = {}) =>
  agentsync(args, { cwd, env: env(extra) })

/** Every file under a folder with its bytes (base64), by path. */
const contents = (dir: string) => Object.fromEntries(walk(dir).map((p) => [p, readFileSync(join(dir, p), "base64")]))

describe("a first pull in a fresh folder (e2e)", () => {
  it("says to create services/, writes nothing until then, and pulls the whole tree into the empty folder", async () => {
    const source = tempDir("source")
    cpSync(join(REPO, "examples/project"), source, { recursive: true })
    const pushed = await run(source, ["files", "push"])
    expect(pushed.code, pushed.stderr).toBe(0)

    // No agentsync.yaml, no services/: the environment alone configures the server, as the README's first pull does.
    const fresh = tempDir("fresh")
    const refused = await run(fresh, ["files", "pull"])
    expect(refused.code).toBe(2)
    expect(refused.stderr).toMatch(
      /services does not exist; for a first pull, create it \(mkdir services\) and pull again/
    )
    expect(readdirSync(fresh)).toEqual([])

    // Doing what it says is enough: the empty folder takes the first pull.
    mkdirSync(join(fresh, "services"))
    const first = await run(fresh, ["files", "pull"])
    expect(first.code, first.stderr).toBe(0)
    const theirs = contents(join(source, "services"))
    const ours = contents(join(fresh, "services"))
    expect(Object.keys(ours).length).toBeGreaterThan(10)
    for (const [path, bytes] of Object.entries(ours)) expect([path, bytes]).toEqual([path, theirs[path]])
    const again = await run(fresh, ["--json", "files", "pull"])
    expect(again.code, again.stderr).toBe(0)
    expect((JSON.parse(again.stdout) as { files: Array<unknown> }).files).toEqual([])

    // sync --pull starts in an empty folder too (its files part; the database part, pointed nowhere, fails fast).
    const viaSync = tempDir("sync")
    mkdirSync(join(viaSync, "services"))
    const synced = await run(viaSync, ["--json", "sync", "--pull"], { DATABASE_URL: "postgres://127.0.0.1:9/none" })
    const ops = (JSON.parse(synced.stdout) as { operations: Array<{ operation: string; state: { _tag: string } }> })
      .operations
    expect(ops.find((o) => o.operation === "files")?.state._tag, synced.stderr).toBe("Completed")
    expect(contents(join(viaSync, "services"))).toEqual(ours)
  }, 300_000)

  it("still refuses a folder that holds something else, and a push or diff of an empty one, saying what to do", async () => {
    const other = tempDir("other")
    mkdirSync(join(other, "services"))
    writeFileSync(join(other, "services/notes.md"), "mine\n")
    const pull = await run(other, ["files", "pull"])
    expect(pull.code).toBe(2)
    expect(pull.stderr).toMatch(/services does not look like a project: .*; pass --services DIR naming the tree/)
    expect(walk(other)).toEqual(["services/notes.md"])

    const empty = tempDir("empty")
    mkdirSync(join(empty, "services"))
    for (const args of [
      ["files", "push"],
      ["files", "diff"],
      ["local", "diff"]
    ]) {
      const res = await run(empty, args)
      expect([args.join(" "), res.code]).toEqual([args.join(" "), 2])
      expect(res.stderr).toMatch(
        /a pull may start in it as it is \(files pull, sync --pull\); otherwise pass --services/
      )
    }
    expect(readdirSync(empty)).toEqual(["services"])
    expect(existsSync(join(empty, ".agentsync"))).toBe(false)
  }, 300_000)
})

describe("a failed push, pull, diff or sync (e2e)", () => {
  it("names what at the top of services/ file sync does not carry, as a run that went through does; -q silences it", async () => {
    const root = tempDir("failed")
    cpSync(join(REPO, "examples/project"), root, { recursive: true })
    mkdirSync(join(root, "services/prompts"))
    writeFileSync(join(root, "services/prompts/a.md"), "not carried\n")
    const refused = { AGENTSYNC_TOKEN: "ast_0000000000000000_not-a-real-token" }
    for (const args of [["files", "push"], ["files", "pull"], ["files", "diff"], ["sync"], ["sync", "--pull"]]) {
      const res = await run(root, args, refused)
      expect([args.join(" "), res.code]).toEqual([args.join(" "), 1])
      expect(res.stderr).toMatch(/^note: services\/prompts\/ is not carried by file sync/m)
      expect(res.stderr).toMatch(/^error: /m)
    }
    const quiet = await run(root, ["-q", "files", "push"], refused)
    expect(quiet.code).toBe(1)
    expect(quiet.stderr).not.toMatch(/note:/)
    // --json: the failure document on stdout as before, the note on stderr.
    const json = await run(root, ["--json", "files", "push"], refused)
    expect((JSON.parse(json.stdout) as { error: { tag: string } }).error.tag).toBe("Unauthorized")
    expect(json.stderr).toMatch(/^note: services\/prompts\/ is not carried/m)
    // sync's document names it beside the files operation that failed.
    const synced = await run(root, ["--json", "sync"], refused)
    const files = (JSON.parse(synced.stdout) as { operations: Array<{ operation: string; left_out?: Array<string> }> })
      .operations[0]
    expect(files).toMatchObject({ operation: "files", state: { _tag: "Failed" }, left_out: ["prompts/"] })
  }, 300_000)
})
