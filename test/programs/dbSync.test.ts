import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Effect, Exit, Layer, Redacted } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { CurrentConfig, SyncConfig } from "../../src/config.js"
import type { ContextExport, UserExport } from "../../src/domain/dbExport.js"
import { DatabaseSyncService, type DbSyncResult } from "../../src/programs/dbSync.js"
import { SyncService } from "../../src/programs/syncAll.js"
import { freshDatabase } from "../support/pg.js"
import { loadState, migratedDatabase, query, readState } from "../support/syncDb.js"
import { tempDirs } from "../support/tree.js"
import { startServer } from "../server/support.js"

const u = (id: string, extra: Partial<UserExport> = {}): UserExport => ({
  id,
  name: id,
  email: `${id}@example.com`,
  display_name: "",
  roles: ["member"],
  created_at: "2025-01-01T00:00:00.000000Z",
  updated_at: "2025-01-02T00:00:00.000000Z",
  ...extra
})
const c = (id: string, user_id: string, extra: Partial<ContextExport> = {}): ContextExport => ({
  id,
  user_id,
  session_id: null,
  name: id,
  data: { id, nested: { list: [1, 2] } },
  created_at: "2025-01-01T00:00:00.000000Z",
  updated_at: "2025-01-02T00:00:00.000000Z",
  ...extra
})

let server: Awaited<ReturnType<typeof startServer>>
let exposed: Awaited<ReturnType<typeof startServer>>
let tenant: { tenantId: string; token: Redacted.Redacted<string> }
let serverDb = ""
const root = tempDirs("dbsync")("project")
mkdirSync(join(root, "services"))

beforeAll(async () => {
  serverDb = await freshDatabase("srv")
  server = await startServer(serverDb)
  // A second server on the same database that hands out its database URL for direct mode.
  process.env["AGENTSYNC_SERVE_DATABASE_URL"] = serverDb
  try {
    exposed = await startServer(serverDb)
  } finally {
    delete process.env["AGENTSYNC_SERVE_DATABASE_URL"]
  }
  tenant = await server.createTenant("Acme")
})
afterAll(async () => {
  await server?.stop()
  await exposed?.stop()
})

const config = (fields: Partial<ConstructorParameters<typeof SyncConfig>[0]>) =>
  new SyncConfig({ projectRoot: root, servicesPath: join(root, "services"), ...fields })

const dbSync = <A, E>(cfg: SyncConfig, f: (s: DatabaseSyncService) => Effect.Effect<A, E>) =>
  Effect.runPromise(Effect.flatMap(DatabaseSyncService, f).pipe(Effect.provide(DatabaseSyncService.Default.pipe(Layer.provide(Layer.succeed(CurrentConfig, cfg))))))
const dbSyncExit = <A, E>(cfg: SyncConfig, f: (s: DatabaseSyncService) => Effect.Effect<A, E>) =>
  Effect.runPromiseExit(Effect.flatMap(DatabaseSyncService, f).pipe(Effect.provide(DatabaseSyncService.Default.pipe(Layer.provide(Layer.succeed(CurrentConfig, cfg))))))

const counts = (r: { tables: ReadonlyArray<{ inserted: number; updated: number; unchanged: number; skipped: number }> }) =>
  r.tables.map((t) => [t.inserted, t.updated, t.unchanged, t.skipped])

describe("DatabaseSyncService, direct transport", () => {
  it("pushes, diffs, reruns idempotently, and pulls remote changes back; a dry run writes nothing", async () => {
    const [local, cloud] = await Promise.all([migratedDatabase("local"), migratedDatabase("cloud")])
    const cfg = config({ databaseUrl: Redacted.make(local), cloudDatabaseUrl: Redacted.make(cloud) })
    await loadState(local, { users: [u("u1"), u("u2")], skills: [], contexts: [c("c1", "u1"), c("c2", "u2")], sessionIds: [] })

    const dry = await dbSync(cfg, (s) => s.push({ dryRun: true }))
    expect(counts(dry)).toEqual([[2, 0, 0, 0], [0, 0, 0, 0], [2, 0, 0, 0]])
    expect((await readState(cloud)).users).toEqual([])

    const push = await dbSync(cfg, (s) => s.push())
    expect(push).toMatchObject({ direction: "push", transport: "direct", dry_run: false })
    expect(counts(push)).toEqual([[2, 0, 0, 0], [0, 0, 0, 0], [2, 0, 0, 0]])
    expect(counts(await dbSync(cfg, (s) => s.push()))).toEqual([[0, 0, 2, 0], [0, 0, 0, 0], [0, 0, 2, 0]])

    await query(cloud, "UPDATE user_contexts SET data = '{\"edited\": true}', updated_at = '2025-02-01Z' WHERE id = 'c2'")
    await query(cloud, "INSERT INTO users (id, name, email) VALUES ('u9', 'u9', 'u9@example.com')")
    const diff = await dbSync(cfg, (s) => s.diff())
    expect(diff.tables).toEqual([
      { table: "users", only_local: 0, only_remote: 1, different: 0, equal: 2 },
      { table: "skills", only_local: 0, only_remote: 0, different: 0, equal: 0 },
      { table: "contexts", only_local: 0, only_remote: 0, different: 1, equal: 1 }
    ])

    const pull = await dbSync(cfg, (s) => s.pull())
    expect(counts(pull)).toEqual([[1, 0, 2, 0], [0, 0, 0, 0], [0, 1, 1, 0]])
    const after = await readState(local)
    expect(after.contexts.find((x) => x.id === "c2")?.data).toEqual({ edited: true })
    expect((await dbSync(cfg, (s) => s.diff())).tables.every((t) => t.only_local + t.only_remote + t.different === 0)).toBe(true)
  })

  it("says which setting is missing when no cloud database is configured", async () => {
    const local = await migratedDatabase("local")
    const exit = await dbSyncExit(config({ databaseUrl: Redacted.make(local) }), (s) => s.push())
    expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error).toMatchObject({ _tag: "MissingConfig", key: "AGENTSYNC_CLOUD_DATABASE_URL" })
  })

  it("names the host and port of an unreachable cloud database, never the password", async () => {
    const local = await migratedDatabase("local")
    const cfg = config({ databaseUrl: Redacted.make(local), cloudDatabaseUrl: Redacted.make("postgres://bob:s3cret-pw@127.0.0.1:1/x") })
    const exit = await dbSyncExit(cfg, (s) => s.diff())
    const error = Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : undefined
    expect(error?._tag).toBe("Database")
    expect(error?.message).toContain("127.0.0.1:1")
    expect(error?.message).not.toContain("s3cret-pw")
  })
})

describe("DatabaseSyncService through the tenant API", () => {
  it("pushes and pulls through the export and import endpoints, scoped to the tenant", async () => {
    const [local, fresh] = await Promise.all([migratedDatabase("local"), migratedDatabase("fresh")])
    await loadState(local, { users: [u("a1"), u("a2")], skills: [], contexts: [c("x1", "a1"), c("x2", "a2", { session_id: null })], sessionIds: [] })
    const api = { directUrl: server.url, token: tenant.token }
    const dry = await dbSync(config({ databaseUrl: Redacted.make(local), ...api }), (s) => s.push({ dryRun: true }))
    expect([dry.transport, dry.dry_run, ...counts(dry)]).toEqual(["api", true, [2, 0, 0, 0], [0, 0, 0, 0], [2, 0, 0, 0]])
    const push = await dbSync(config({ databaseUrl: Redacted.make(local), ...api }), (s) => s.push())
    expect(push).toMatchObject({ transport: "api" })
    expect(counts(push)).toEqual([[2, 0, 0, 0], [0, 0, 0, 0], [2, 0, 0, 0]])
    const schema = (await query<{ s: string }>(serverDb, "SELECT agentsync_tenant_db($1) AS s", [tenant.tenantId]))[0]!.s
    expect(await query(serverDb, `SELECT id FROM "${schema}".user_contexts ORDER BY id`)).toEqual([{ id: "x1" }, { id: "x2" }])

    const diff = await dbSync(config({ databaseUrl: Redacted.make(fresh), ...api }), (s) => s.diff())
    expect(diff.tables[0]).toEqual({ table: "users", only_local: 0, only_remote: 2, different: 0, equal: 0 })
    const pull = await dbSync(config({ databaseUrl: Redacted.make(fresh), ...api }), (s) => s.pull())
    expect(counts(pull)).toEqual([[2, 0, 0, 0], [0, 0, 0, 0], [2, 0, 0, 0]])
    expect(await readState(fresh)).toEqual(await readState(local))
    await query(fresh, "UPDATE users SET display_name = 'changed here' WHERE id = 'a1'")
    const changed = await dbSync(config({ databaseUrl: Redacted.make(fresh), ...api }), (s) => s.diff())
    expect(changed.tables.map((t) => [t.only_local, t.only_remote, t.different, t.equal])).toEqual([
      [0, 0, 1, 1],
      [0, 0, 0, 0],
      [0, 0, 0, 2]
    ])

    // Another tenant sees none of it.
    const other = await server.createTenant("Other")
    const otherDiff = await dbSync(config({ databaseUrl: Redacted.make(fresh), directUrl: server.url, token: other.token }), (s) => s.diff())
    expect(otherDiff.tables[0]).toMatchObject({ only_local: 2, only_remote: 0 })
  })

  it("goes direct on the database URL the tenant hands out, in the tenant's schema", async () => {
    const local = await migratedDatabase("local")
    await loadState(local, { users: [u("d1")], skills: [], contexts: [], sessionIds: [] })
    const other = await exposed.createTenant("Direct Co")
    const r = await dbSync(config({ databaseUrl: Redacted.make(local), directUrl: exposed.url, token: other.token }), (s) => s.push())
    expect(r.transport).toBe("direct")
    expect(r.remote).toContain("schema t_")
    const schema = (await query<{ s: string }>(serverDb, "SELECT agentsync_tenant_db($1) AS s", [other.tenantId]))[0]!.s
    expect(await query(serverDb, `SELECT id FROM "${schema}".users`)).toEqual([{ id: "d1" }])
  })

  it("rejects a malformed import body with the offending lines and ids, writing nothing", async () => {
    const lines = [
      { kind: "header", version: 1, exported_at: "2025-01-01T00:00:00Z" },
      { kind: "users", row: u("ok1") },
      { kind: "users", row: { ...u("bad1"), email: 42 } },
      { kind: "users", row: u("ok1") },
      { kind: "contexts", row: c("cx", "ok1", { updated_at: "soon" }) }
    ]
    const response = await fetch(`${server.url}/api/v1/sync/database/import`, {
      method: "POST",
      headers: { authorization: `Bearer ${Redacted.value(tenant.token)}`, "content-type": "application/x-ndjson" },
      body: `${lines.map((l) => JSON.stringify(l)).join("\n")}\nnot json\n`
    })
    expect(response.status).toBe(400)
    const body = (await response.json()) as { _tag: string; reason: string }
    expect(body._tag).toBe("InvalidInput")
    expect(body.reason).toContain("line 3 (users bad1)")
    expect(body.reason).toContain("line 4 (users ok1): duplicate users id")
    expect(body.reason).toContain("line 5 (contexts cx)")
    expect(body.reason).toContain("line 6 (header): not JSON")
    const schema = (await query<{ s: string }>(serverDb, "SELECT agentsync_tenant_db($1) AS s", [tenant.tenantId]))[0]!.s
    expect(await query(serverDb, `SELECT count(*)::int AS n FROM "${schema}".users WHERE id = 'ok1'`)).toEqual([{ n: 0 }])
  })
})

describe("SyncService.syncAll", () => {
  it("reports every operation's state: files NotStarted without a tenant, database Partial when a table fails", async () => {
    const [local, cloud] = await Promise.all([migratedDatabase("local"), migratedDatabase("cloud")])
    await loadState(local, { users: [u("p1"), u("p2")], skills: [], contexts: [c("k1", "p1"), c("k2", "p2")], sessionIds: [] })
    await query(
      cloud,
      `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no contexts today'; END $$;
       CREATE TRIGGER refuse BEFORE INSERT ON user_contexts FOR EACH ROW EXECUTE FUNCTION refuse();`
    )
    writeFileSync(join(root, "services", "README.md"), "hello\n")
    const cfg = config({ databaseUrl: Redacted.make(local), cloudDatabaseUrl: Redacted.make(cloud) })
    const run = () =>
      Effect.runPromise(Effect.flatMap(SyncService, (s) => s.syncAll()).pipe(Effect.provide(SyncService.Default.pipe(Layer.provide(Layer.succeed(CurrentConfig, cfg))))))
    const first = await run()
    expect(first.ok).toBe(false)
    expect(first.operations.map((o) => [o.operation, o.state._tag])).toEqual([
      ["files", "NotStarted"],
      ["database", "Partial"]
    ])
    expect(first.operations[1]!.state).toEqual({ _tag: "Partial", completed: 2, total: 4 })
    await query(cloud, "DROP TRIGGER refuse ON user_contexts")
    const second = await run()
    expect(second.operations[1]!.state).toEqual({ _tag: "Completed" })
    expect(counts(second.operations[1]!.report as DbSyncResult)).toEqual([[0, 0, 2, 0], [0, 0, 0, 0], [2, 0, 0, 0]])
  })
})
