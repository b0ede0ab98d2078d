// `agentsync db` and `agentsync sync` as a user runs them: the built CLI between two real databases, and through `agentsync serve`.
import type { ChildProcess } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { ContextExport, UserExport } from "../../src/domain/db/tables.js"
import { agentsync, ensureBuilt, startServe } from "../support/cli.js"
import { freshDatabase } from "../support/pg.js"
import { loadState, migratedDatabase, query, readState } from "../support/syncDb.js"

const temps: Array<string> = []
const children: Array<ChildProcess> = []
const project = () => {
  const root = mkdtempSync(join(tmpdir(), "agentsync-e2e-db-"))
  temps.push(root)
  mkdirSync(join(root, "services"), { recursive: true })
  writeFileSync(join(root, "services", "README.md"), "project\n")
  // A project (a services path that looks like none is refused by the commands that read it).
  writeFileSync(join(root, "agentsync.yaml"), "services: services\n")
  return root
}

const serve = async (env: Record<string, string>, cwd: string) => {
  const server = await startServe(env, cwd)
  children.push(server.child)
  return server
}

const u = (id: string): UserExport => ({
  id,
  name: id,
  email: `${id}@example.com`,
  display_name: `User ${id}`,
  roles: ["member"],
  created_at: "2025-01-01T00:00:00.000000Z",
  updated_at: "2025-01-02T00:00:00.000000Z"
})
const c = (id: string, user_id: string): ContextExport => ({
  id,
  user_id,
  session_id: null,
  name: id,
  data: { id },
  created_at: "2025-01-01T00:00:00.000000Z",
  updated_at: "2025-01-02T00:00:00.000000Z"
})

type Counts = {
  tables: Array<{
    table: string
    inserted: number
    updated: number
    unchanged: number
    skipped: number
    skips: Array<{ id: string; reason: string }>
  }>
}
const counts = (r: Counts) => r.tables.map((t) => [t.table, t.inserted, t.updated, t.unchanged, t.skipped])

let server: { url: string }
let tenant: { tenant_id: string; token: string }

beforeAll(async () => {
  ensureBuilt()
  const serverDb = await freshDatabase("e2edbsrv")
  const admin = project()
  const created = await agentsync(["--json", "tenant", "create", "Acme"], {
    cwd: admin,
    env: { DATABASE_URL: serverDb }
  })
  expect(created.code, created.stderr).toBe(0)
  tenant = JSON.parse(created.stdout)
  server = await serve({ DATABASE_URL: serverDb }, admin)
})
afterAll(() => {
  for (const child of children) child.kill("SIGTERM")
  for (const t of temps) rmSync(t, { recursive: true, force: true })
})

describe("agentsync db", () => {
  it("pushes (dry run first), reruns idempotently, diffs, and pulls back, reporting skips with their ids", async () => {
    const [local, cloud] = await Promise.all([migratedDatabase("e2elocal"), migratedDatabase("e2ecloud")])
    await loadState(local, {
      users: [u("u1"), u("u2"), u("u3")],
      skills: [],
      contexts: [c("c1", "u1"), c("c2", "u2")],
      sessionIds: []
    })
    // The cloud already has a user with u3's email under another id.
    await query(cloud, "INSERT INTO users (id, name, email) VALUES ('cloud-7', 'seven', 'u3@example.com')")
    const root = project()
    const env = { DATABASE_URL: local, AGENTSYNC_CLOUD_DATABASE_URL: cloud }
    const db = (...args: Array<string>) => agentsync(["--json", "db", ...args], { cwd: root, env })

    const dry = await db("push", "--dry-run")
    expect(dry.code, dry.stderr).toBe(0)
    expect(counts(JSON.parse(dry.stdout))).toEqual([
      ["users", 2, 0, 0, 1],
      ["skills", 0, 0, 0, 0],
      ["contexts", 2, 0, 0, 0]
    ])
    expect((await readState(cloud)).users.map((x) => x.id)).toEqual(["cloud-7"])

    const push = await db("push")
    expect(push.code, push.stderr).toBe(0)
    const pushed = JSON.parse(push.stdout)
    expect(pushed).toMatchObject({ direction: "push", transport: "direct", dry_run: false })
    expect(counts(pushed)).toEqual([
      ["users", 2, 0, 0, 1],
      ["skills", 0, 0, 0, 0],
      ["contexts", 2, 0, 0, 0]
    ])
    expect(pushed.tables[0].skips).toEqual([{ id: "u3", reason: "email belongs to user cloud-7" }])

    const again = await db("push")
    expect(counts(JSON.parse(again.stdout))).toEqual([
      ["users", 0, 0, 2, 1],
      ["skills", 0, 0, 0, 0],
      ["contexts", 0, 0, 2, 0]
    ])

    await query(cloud, "UPDATE users SET display_name = 'Renamed', updated_at = '2025-03-01Z' WHERE id = 'u1'")
    const diff = await db("diff")
    expect(diff.code, diff.stderr).toBe(0)
    expect(JSON.parse(diff.stdout).tables[0]).toEqual({
      table: "users",
      only_local: 1,
      only_remote: 1,
      different: 1,
      equal: 1
    })

    const human = await agentsync(["db", "diff"], { cwd: root, env })
    expect(human.stdout).toMatch(/users\s+1\s+1\s+1\s+1/)

    const pull = await db("pull")
    expect(pull.code, pull.stderr).toBe(0)
    // cloud-7 cannot come down: its email belongs to u3 locally.
    expect(counts(JSON.parse(pull.stdout))).toEqual([
      ["users", 0, 1, 1, 1],
      ["skills", 0, 0, 0, 0],
      ["contexts", 0, 0, 2, 0]
    ])
    expect((await readState(local)).users.find((x) => x.id === "u1")?.display_name).toBe("Renamed")
  })

  it("exits 2 naming the setting when no cloud database is configured", async () => {
    const local = await migratedDatabase("e2elocal")
    const r = await agentsync(["db", "push"], { cwd: project(), env: { DATABASE_URL: local } })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain("AGENTSYNC_CLOUD_DATABASE_URL")
  })

  it("syncs through the tenant API of `agentsync serve`, with the embedded default as the local database", async () => {
    const root = project()
    const env = { AGENTSYNC_DIRECT_URL: server.url, AGENTSYNC_TOKEN: tenant.token }
    const seed = await migratedDatabase("e2eseed")
    await loadState(seed, { users: [u("a1"), u("a2")], skills: [], contexts: [c("x1", "a1")], sessionIds: [] })
    const push = await agentsync(["--json", "db", "push"], { cwd: root, env: { ...env, DATABASE_URL: seed } })
    expect(push.code, push.stderr).toBe(0)
    expect(JSON.parse(push.stdout)).toMatchObject({ transport: "api" })
    // A second project on the embedded database (no DATABASE_URL) pulls it down.
    const other = project()
    const pull = await agentsync(["--json", "db", "pull"], { cwd: other, env })
    expect(pull.code, pull.stderr).toBe(0)
    expect(counts(JSON.parse(pull.stdout))).toEqual([
      ["users", 2, 0, 0, 0],
      ["skills", 0, 0, 0, 0],
      ["contexts", 1, 0, 0, 0]
    ])
    expect(existsSync(join(other, ".agentsync", "pgdata"))).toBe(true)
  })
})

describe("agentsync sync", () => {
  it("--json shows every operation's state, and the exit code says whether all completed", async () => {
    const [local, cloud] = await Promise.all([migratedDatabase("e2elocal"), migratedDatabase("e2ecloud")])
    await loadState(local, { users: [u("s1")], skills: [], contexts: [c("k1", "s1"), c("k2", "s1")], sessionIds: [] })
    const root = project()

    // No tenant configured: files NotStarted, database Completed; not everything completed.
    const partialEnv = { DATABASE_URL: local, AGENTSYNC_CLOUD_DATABASE_URL: cloud }
    const first = await agentsync(["--json", "sync"], { cwd: root, env: partialEnv })
    expect(first.code).toBe(2)
    const firstOut = JSON.parse(first.stdout)
    expect(
      firstOut.operations.map((o: { operation: string; state: { _tag: string } }) => [o.operation, o.state._tag])
    ).toEqual([
      ["files", "NotStarted"],
      ["database", "Completed"]
    ])
    expect(firstOut.ok).toBe(false)

    // Everything configured, and the contexts table of the cloud refuses rows: files Completed, database Partial.
    await query(
      cloud,
      `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'contexts are read-only'; END $$;
       CREATE TRIGGER refuse BEFORE UPDATE ON user_contexts FOR EACH ROW EXECUTE FUNCTION refuse();`
    )
    await query(local, "UPDATE user_contexts SET name = 'changed', updated_at = '2025-05-01Z'")
    const fullEnv = { ...partialEnv, AGENTSYNC_DIRECT_URL: server.url, AGENTSYNC_TOKEN: tenant.token }
    const second = await agentsync(["--json", "sync", "--push"], { cwd: root, env: fullEnv })
    expect(second.code).toBe(1)
    const out = JSON.parse(second.stdout)
    expect(out.operations.map((o: { state: unknown }) => o.state)).toEqual([
      { _tag: "Completed" },
      { _tag: "Partial", completed: 1, total: 3 }
    ])
    expect(second.stderr).toContain("contexts are read-only")

    await query(cloud, "DROP TRIGGER refuse ON user_contexts")
    const third = await agentsync(["--json", "sync"], { cwd: root, env: fullEnv })
    expect(third.code, third.stderr).toBe(0)
    expect(JSON.parse(third.stdout)).toMatchObject({
      ok: true,
      operations: [{ state: { _tag: "Completed" } }, { state: { _tag: "Completed" } }]
    })
    expect((await readState(cloud)).contexts.map((x) => x.name)).toEqual(["changed", "changed"])

    const dry = await agentsync(["--json", "sync", "--pull", "--dry-run"], { cwd: root, env: fullEnv })
    expect(dry.code, dry.stderr).toBe(0)
    expect(JSON.parse(dry.stdout)).toMatchObject({ direction: "Pull", dry_run: true, ok: true })
  })
})
