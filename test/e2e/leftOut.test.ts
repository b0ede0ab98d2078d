// What a push, pull or diff does not carry at the top of services/ is named, never skipped silently: one note on
// stderr, a `left_out` field with --json, through the built CLI against `agentsync serve` over the real PostgreSQL,
// the settled start path (dist/settled.cjs answering a no-change push without the CLI) included.
import { type ChildProcess, spawnSync } from "node:child_process"
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { agentsync, BIN, cleanEnv, ensureBuilt, REPO, startServe } from "../support/cli.js"
import { freshDatabase } from "../support/pg.js"

const temps: Array<string> = []
const children: Array<ChildProcess> = []
const tempDir = (name: string) => {
  const d = mkdtempSync(join(tmpdir(), `agentsync-e2e-leftout-${name}-`))
  temps.push(d)
  return d
}

let url: string
let token: string
/** dist/bin.js and dist/settled.cjs without the CLI bundles: a run succeeds there only when the settled path answered. */
let lone: string

const MEMBERS = ["agents/a/config.yaml", "skills/s/SKILL.md"]
/** Beside the members: a folder and a file the user put at the top, one left out on purpose, and litter. */
const AT_TOP = ["prompts/p.md", "notes.md", "drafts/d.md", ".DS_Store"]
const NOTE =
  /^note: services\/notes\.md and services\/prompts\/ are not carried by file sync \(only its folders are: agents, .*hooks\); move them under one of those, or add them to \.agentsyncignore to silence this$/

const write = (root: string, path: string, text = `${path}\n`) => {
  mkdirSync(join(root, "services", path, ".."), { recursive: true })
  writeFileSync(join(root, "services", path), text)
}
/** A project whose files are older than the racy window (a settled mark can be kept at once). */
const project = (extra: ReadonlyArray<string>) => {
  const root = tempDir("project")
  writeFileSync(join(root, "agentsync.yaml"), "services: services\n")
  for (const f of [...MEMBERS, ...extra]) write(root, f)
  write(root, ".agentsyncignore", "drafts/\n")
  const past = new Date(Date.now() - 60_000)
  for (const f of [...MEMBERS, ".agentsyncignore"]) utimesSync(join(root, "services", f), past, past)
  return root
}
const run = (root: string, args: ReadonlyArray<string>, extra: Record<string, string> = {}) =>
  agentsync(args, { cwd: root, env: { AGENTSYNC_DIRECT_URL: url, AGENTSYNC_TOKEN: token, ...extra } })
const spawnAt = (bin: string, root: string, args: ReadonlyArray<string>) =>
  spawnSync(process.execPath, [bin, ...args], {
    cwd: root,
    env: cleanEnv({ AGENTSYNC_DIRECT_URL: url, AGENTSYNC_TOKEN: token }),
    encoding: "utf8"
  })
const notes = (stderr: string) => stderr.split("\n").filter((l) => l.startsWith("note:"))

beforeAll(async () => {
  ensureBuilt()
  lone = tempDir("lone")
  copyFileSync(BIN, join(lone, "bin.js"))
  copyFileSync(join(REPO, "dist/settled.cjs"), join(lone, "settled.cjs"))
  const admin = tempDir("admin")
  const databaseUrl = await freshDatabase("e2eleftout")
  const created = await agentsync(["--json", "tenant", "create", "LeftOut"], {
    cwd: admin,
    env: { DATABASE_URL: databaseUrl }
  })
  expect(created.code, created.stderr).toBe(0)
  token = JSON.parse(created.stdout).token
  const server = await startServe({ DATABASE_URL: databaseUrl }, admin)
  children.push(server.child)
  url = server.url
}, 120_000)

afterAll(() => {
  for (const c of children) c.kill("SIGTERM")
  for (const d of temps) rmSync(d, { recursive: true, force: true })
})

describe("what file sync leaves out at the top of services/", () => {
  it("push, diff, pull and sync name it once on stderr and in --json, not what is ignored or litter", async () => {
    const root = project(AT_TOP)
    const plain = project([])
    for (const args of [
      ["files", "push"],
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
    expect(report.left_out).toEqual(["notes.md", "prompts/"])
    expect(notes(json.stderr)[0]).toMatch(NOTE)
    // Nothing left out: no note and no field, the report as it always was.
    const quiet = await run(plain, ["--json", "files", "push", "--force", "--delete"])
    expect(quiet.code, quiet.stderr).toBe(0)
    expect(notes(quiet.stderr)).toEqual([])
    expect(Object.keys(JSON.parse(quiet.stdout)).sort()).toEqual(
      Object.keys(report)
        .filter((k) => k !== "left_out")
        .sort()
    )
    // --quiet leaves the note out.
    expect(notes((await run(root, ["-q", "files", "diff"])).stderr)).toEqual([])
    // `sync` runs file sync: its files report and its stderr say the same (its database part, refused at once,
    // fails on its own).
    const sync = await run(root, ["--json", "sync", "--dry-run"], { DATABASE_URL: "postgres://u@127.0.0.1:9/none" })
    const files = JSON.parse(sync.stdout).operations.find((o: { operation: string }) => o.operation === "files")
    expect(files.report.left_out).toEqual(["notes.md", "prompts/"])
    expect(notes(sync.stderr)[0]).toMatch(NOTE)
  })

  it("a no-change push answered by the settled start path names it as the CLI does", async () => {
    const root = project(AT_TOP)
    for (let i = 0; i < 2; i++) {
      const r = await run(root, ["--json", "files", "push", "--force", "--delete"])
      expect(r.code, r.stderr).toBe(0)
    }
    for (const args of [
      ["files", "push"],
      ["--json", "files", "push"],
      ["files", "pull"]
    ]) {
      const small = spawnAt(join(lone, "bin.js"), root, args)
      const full = spawnAt(join(REPO, "dist/cli.cjs"), root, args)
      expect([small.status, small.stdout, small.stderr], args.join(" ")).toEqual([0, full.stdout, full.stderr])
      expect(notes(small.stderr)).toHaveLength(1)
      expect(notes(small.stderr)[0]).toMatch(NOTE)
    }
    expect(JSON.parse(spawnAt(join(lone, "bin.js"), root, ["--json", "files", "push"]).stdout).left_out).toEqual([
      "notes.md",
      "prompts/"
    ])
    expect(notes(spawnAt(join(lone, "bin.js"), root, ["files", "push", "-q"]).stderr)).toEqual([])
  })
})
