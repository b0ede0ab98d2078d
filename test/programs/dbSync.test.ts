import { chmodSync, cpSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import * as SqlClient from "@effect/sql/SqlClient"
import { PgClient } from "@effect/sql-pg"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer, Redacted } from "effect"
import { CurrentConfig, SyncConfig } from "../../src/config.js"
import { type ContextExport, EXPORT_VERSION, type UserExport } from "../../src/domain/db/tables.js"
import { DatabaseSyncService, type DbSyncResult } from "../../src/programs/dbSync.js"
import { LocalSync, type LocalSyncOptions } from "../../src/programs/localSync.js"
import { SyncService } from "../../src/programs/syncAll.js"
import { tenantSkillsAsIsMigration } from "../../src/server/db/handlers.js"
import { startServer } from "../server/support.js"
import { freshDatabase, scopedDatabase, sqlRows } from "../support/pg.js"
import { loadState, migratedDatabase, readState } from "../support/syncDb.js"
import { tempDirs } from "../support/tree.js"

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
const temp = tempDirs("dbsync")
const root = temp("project")
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
  Effect.flatMap(DatabaseSyncService, f).pipe(
    Effect.provide(DatabaseSyncService.Default.pipe(Layer.provide(Layer.succeed(CurrentConfig, cfg))))
  )
const dbSyncExit = <A, E>(cfg: SyncConfig, f: (s: DatabaseSyncService) => Effect.Effect<A, E>) =>
  Effect.exit(dbSync(cfg, f))

const counts = (r: {
  tables: ReadonlyArray<{ inserted: number; updated: number; unchanged: number; skipped: number }>
}) => r.tables.map((t) => [t.inserted, t.updated, t.unchanged, t.skipped])

describe("DatabaseSyncService, direct transport", () => {
  it.live("pushes, diffs, reruns idempotently, and pulls remote changes back; a dry run writes nothing", () =>
    Effect.gen(function* () {
      const [local, cloud] = yield* Effect.promise(() =>
        Promise.all([migratedDatabase("local"), migratedDatabase("cloud")])
      )
      const cfg = config({ databaseUrl: Redacted.make(local), cloudDatabaseUrl: Redacted.make(cloud) })
      yield* Effect.promise(() =>
        loadState(local, {
          users: [u("u1"), u("u2")],
          skills: [],
          contexts: [c("c1", "u1"), c("c2", "u2")],
          sessionIds: []
        })
      )

      const dry = yield* dbSync(cfg, (s) => s.push({ dryRun: true }))
      expect(counts(dry)).toEqual([
        [2, 0, 0, 0],
        [0, 0, 0, 0],
        [2, 0, 0, 0]
      ])
      expect((yield* Effect.promise(() => readState(cloud))).users).toEqual([])

      const push = yield* dbSync(cfg, (s) => s.push())
      expect(push).toMatchObject({ direction: "push", transport: "direct", dry_run: false })
      expect(counts(push)).toEqual([
        [2, 0, 0, 0],
        [0, 0, 0, 0],
        [2, 0, 0, 0]
      ])
      expect(counts(yield* dbSync(cfg, (s) => s.push()))).toEqual([
        [0, 0, 2, 0],
        [0, 0, 0, 0],
        [0, 0, 2, 0]
      ])

      yield* sqlRows(
        cloud,
        "UPDATE user_contexts SET data = '{\"edited\": true}', updated_at = '2025-02-01Z' WHERE id = 'c2'"
      )
      yield* sqlRows(cloud, "INSERT INTO users (id, name, email) VALUES ('u9', 'u9', 'u9@example.com')")
      const diff = yield* dbSync(cfg, (s) => s.diff())
      expect(diff.tables).toEqual([
        { table: "users", only_local: 0, only_remote: 1, different: 0, equal: 2 },
        { table: "skills", only_local: 0, only_remote: 0, different: 0, equal: 0 },
        { table: "contexts", only_local: 0, only_remote: 0, different: 1, equal: 1 }
      ])

      const pull = yield* dbSync(cfg, (s) => s.pull())
      expect(counts(pull)).toEqual([
        [1, 0, 2, 0],
        [0, 0, 0, 0],
        [0, 1, 1, 0]
      ])
      const after = yield* Effect.promise(() => readState(local))
      expect(after.contexts.find((x) => x.id === "c2")?.data).toEqual({ edited: true })
      expect(
        (yield* dbSync(cfg, (s) => s.diff())).tables.every((t) => t.only_local + t.only_remote + t.different === 0)
      ).toBe(true)
    })
  )

  it.live("says which setting is missing when no cloud database is configured", () =>
    Effect.gen(function* () {
      const local = yield* Effect.promise(() => migratedDatabase("local"))
      const exit = yield* dbSyncExit(config({ databaseUrl: Redacted.make(local) }), (s) => s.push())
      expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error).toMatchObject({
        _tag: "MissingConfig",
        key: "AGENTSYNC_CLOUD_DATABASE_URL"
      })
    })
  )

  it.live("names the host and port of an unreachable cloud database, never the password", () =>
    Effect.gen(function* () {
      const local = yield* Effect.promise(() => migratedDatabase("local"))
      const cfg = config({
        databaseUrl: Redacted.make(local),
        cloudDatabaseUrl: Redacted.make("postgres://bob:s3cret-pw@127.0.0.1:1/x")
      })
      const exit = yield* dbSyncExit(cfg, (s) => s.diff())
      const error = Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : undefined
      expect(error?._tag).toBe("DatabaseError")
      expect(error?.message).toContain("127.0.0.1:1")
      expect(error?.message).not.toContain("s3cret-pw")
    })
  )
})

describe("DatabaseSyncService through the tenant API", () => {
  it.live("pushes and pulls through the export and import endpoints, scoped to the tenant", () =>
    Effect.gen(function* () {
      const [local, fresh] = yield* Effect.promise(() =>
        Promise.all([migratedDatabase("local"), migratedDatabase("fresh")])
      )
      yield* Effect.promise(() =>
        loadState(local, {
          users: [u("a1"), u("a2")],
          skills: [],
          contexts: [c("x1", "a1"), c("x2", "a2", { session_id: null })],
          sessionIds: []
        })
      )
      const api = { directUrl: server.url, token: tenant.token }
      const dry = yield* dbSync(config({ databaseUrl: Redacted.make(local), ...api }), (s) => s.push({ dryRun: true }))
      expect([dry.transport, dry.dry_run, ...counts(dry)]).toEqual([
        "api",
        true,
        [2, 0, 0, 0],
        [0, 0, 0, 0],
        [2, 0, 0, 0]
      ])
      const push = yield* dbSync(config({ databaseUrl: Redacted.make(local), ...api }), (s) => s.push())
      expect(push).toMatchObject({ transport: "api" })
      expect(counts(push)).toEqual([
        [2, 0, 0, 0],
        [0, 0, 0, 0],
        [2, 0, 0, 0]
      ])
      const schema = (yield* sqlRows<{ s: string }>(serverDb, "SELECT agentsync_tenant_db($1) AS s", [
        tenant.tenantId
      ]))[0]!.s
      expect(yield* sqlRows(serverDb, `SELECT id FROM "${schema}".user_contexts ORDER BY id`)).toEqual([
        { id: "x1" },
        { id: "x2" }
      ])

      const diff = yield* dbSync(config({ databaseUrl: Redacted.make(fresh), ...api }), (s) => s.diff())
      expect(diff.tables[0]).toEqual({ table: "users", only_local: 0, only_remote: 2, different: 0, equal: 0 })
      const pull = yield* dbSync(config({ databaseUrl: Redacted.make(fresh), ...api }), (s) => s.pull())
      expect(counts(pull)).toEqual([
        [2, 0, 0, 0],
        [0, 0, 0, 0],
        [2, 0, 0, 0]
      ])
      expect(yield* Effect.promise(() => readState(fresh))).toEqual(yield* Effect.promise(() => readState(local)))
      yield* sqlRows(fresh, "UPDATE users SET display_name = 'changed here' WHERE id = 'a1'")
      const changed = yield* dbSync(config({ databaseUrl: Redacted.make(fresh), ...api }), (s) => s.diff())
      expect(changed.tables.map((t) => [t.only_local, t.only_remote, t.different, t.equal])).toEqual([
        [0, 0, 1, 1],
        [0, 0, 0, 0],
        [0, 0, 0, 2]
      ])

      // Another tenant sees none of it.
      const other = yield* Effect.promise(() => server.createTenant("Other"))
      const otherDiff = yield* dbSync(
        config({ databaseUrl: Redacted.make(fresh), directUrl: server.url, token: other.token }),
        (s) => s.diff()
      )
      expect(otherDiff.tables[0]).toMatchObject({ only_local: 2, only_remote: 0 })
    })
  )

  it.live("goes direct on the database URL the tenant hands out, in the tenant's schema", () =>
    Effect.gen(function* () {
      const local = yield* Effect.promise(() => migratedDatabase("local"))
      yield* Effect.promise(() => loadState(local, { users: [u("d1")], skills: [], contexts: [], sessionIds: [] }))
      const other = yield* Effect.promise(() => exposed.createTenant("Direct Co"))
      const r = yield* dbSync(
        config({ databaseUrl: Redacted.make(local), directUrl: exposed.url, token: other.token }),
        (s) => s.push()
      )
      expect(r.transport).toBe("direct")
      expect(r.remote).toContain("schema t_")
      const schema = (yield* sqlRows<{ s: string }>(serverDb, "SELECT agentsync_tenant_db($1) AS s", [
        other.tenantId
      ]))[0]!.s
      expect(yield* sqlRows(serverDb, `SELECT id FROM "${schema}".users`)).toEqual([{ id: "d1" }])
    })
  )

  it.live("rejects a malformed import body with the offending lines and ids, writing nothing", () =>
    Effect.gen(function* () {
      const lines = [
        { kind: "header", version: EXPORT_VERSION, exported_at: "2025-01-01T00:00:00Z" },
        { kind: "users", row: u("ok1") },
        { kind: "users", row: { ...u("bad1"), email: 42 } },
        { kind: "users", row: u("ok1") },
        { kind: "contexts", row: c("cx", "ok1", { updated_at: "soon" }) }
      ]
      const response = yield* Effect.promise(() =>
        fetch(`${server.url}/api/v1/sync/database/import`, {
          method: "POST",
          headers: { authorization: `Bearer ${Redacted.value(tenant.token)}`, "content-type": "application/x-ndjson" },
          body: `${lines.map((l) => JSON.stringify(l)).join("\n")}\nnot json\n`
        })
      )
      expect(response.status).toBe(400)
      const body = (yield* Effect.promise(() => response.json())) as { _tag: string; reason: string }
      expect(body._tag).toBe("InvalidInput")
      expect(body.reason).toContain("line 3 (users bad1)")
      expect(body.reason).toContain("line 4 (users ok1): duplicate users id")
      expect(body.reason).toContain("line 5 (contexts cx)")
      expect(body.reason).toContain("line 6 (header): not JSON")
      expect(body.reason).not.toContain("line 1")
      const schema = (yield* sqlRows<{ s: string }>(serverDb, "SELECT agentsync_tenant_db($1) AS s", [
        tenant.tenantId
      ]))[0]!.s
      expect(yield* sqlRows(serverDb, `SELECT count(*)::int AS n FROM "${schema}".users WHERE id = 'ok1'`)).toEqual([
        { n: 0 }
      ])
    })
  )

  it.live("refuses an export of an earlier format by its version, writing nothing", () =>
    Effect.gen(function* () {
      const response = yield* Effect.promise(() =>
        fetch(`${server.url}/api/v1/sync/database/import`, {
          method: "POST",
          headers: { authorization: `Bearer ${Redacted.value(tenant.token)}`, "content-type": "application/x-ndjson" },
          body: `${JSON.stringify({ kind: "header", version: 1, exported_at: "2025-01-01T00:00:00Z" })}\n${JSON.stringify({ kind: "users", row: u("old1") })}\n`
        })
      )
      expect(response.status).toBe(400)
      const body = (yield* Effect.promise(() => response.json())) as { reason: string }
      expect(body.reason).toContain("line 1 (header): export format version 1, this agentsync reads version 3")
      expect(body.reason).not.toContain("readonly")
    })
  )
})

describe("SyncService.syncAll", () => {
  it.live(
    "reports every operation's state: files NotStarted without a tenant, database Partial when a table fails",
    () =>
      Effect.gen(function* () {
        const [local, cloud] = yield* Effect.promise(() =>
          Promise.all([migratedDatabase("local"), migratedDatabase("cloud")])
        )
        yield* Effect.promise(() =>
          loadState(local, {
            users: [u("p1"), u("p2")],
            skills: [],
            contexts: [c("k1", "p1"), c("k2", "p2")],
            sessionIds: []
          })
        )
        yield* sqlRows(
          cloud,
          `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no contexts today'; END $$;
       CREATE TRIGGER refuse BEFORE INSERT ON user_contexts FOR EACH ROW EXECUTE FUNCTION refuse();`
        )
        writeFileSync(join(root, "services", "README.md"), "hello\n")
        const cfg = config({ databaseUrl: Redacted.make(local), cloudDatabaseUrl: Redacted.make(cloud) })
        const run = () =>
          Effect.flatMap(SyncService, (s) => s.syncAll()).pipe(
            Effect.provide(SyncService.Default.pipe(Layer.provide(Layer.succeed(CurrentConfig, cfg))))
          )
        const first = yield* run()
        expect(first.ok).toBe(false)
        expect(first.operations.map((o) => [o.operation, o.state._tag])).toEqual([
          ["files", "NotStarted"],
          ["database", "Partial"]
        ])
        expect(first.operations[1]!.state).toEqual({ _tag: "Partial", completed: 2, total: 4 })
        yield* sqlRows(cloud, "DROP TRIGGER refuse ON user_contexts")
        const second = yield* run()
        expect(second.operations[1]!.state).toEqual({ _tag: "Completed" })
        expect(counts(second.operations[1]!.report as DbSyncResult)).toEqual([
          [0, 0, 2, 0],
          [0, 0, 0, 0],
          [2, 0, 0, 0]
        ])
      })
  )
})

describe("skills keep the form local sync read them in, through the cloud and back", () => {
  const EXAMPLE_SKILL = join(import.meta.dirname, "../../examples/project/services/skills/incident-report")
  const localSync = (services: string, url: string, options: LocalSyncOptions) =>
    LocalSync.sync(options).pipe(
      Effect.provide(
        LocalSync.layer({
          servicesPath: services,
          projectRoot: join(services, ".."),
          databaseUrl: Redacted.make(url)
        })
      )
    )
  /** Every column of every skill as Postgres prints the row (a json column as stored, so key order counts). */
  const skillRows = (url: string) =>
    sqlRows<{ row: string }>(url, `SELECT row_to_json(s)::text AS row FROM skills s ORDER BY id COLLATE "C"`)

  for (const transport of ["direct", "api"] as const) {
    it.live(`an Agent Skills folder goes local → cloud → local with every column equal (${transport})`, () =>
      Effect.gen(function* () {
        const [local, back, cloud] = yield* Effect.promise(() =>
          Promise.all([migratedDatabase("local"), migratedDatabase("back"), migratedDatabase("cloud")])
        )
        const services = join(temp("skills"), "services")
        cpSync(EXAMPLE_SKILL, join(services, "skills/incident-report"), { recursive: true })
        // An executable SKILL.md: its mode travels with the row.
        chmodSync(join(services, "skills/incident-report/SKILL.md"), 0o755)
        mkdirSync(join(services, "skills/search"), { recursive: true })
        writeFileSync(join(services, "skills/search/config.yaml"), "id: search\nname: search\ndescription: finds\n")
        writeFileSync(join(services, "skills/search/SKILL.md"), "# Search\n\nFind things.\n")
        yield* localSync(services, local, { direction: "ToDatabase", kinds: ["skills"] })
        const [read] = yield* sqlRows<{ form: string; original: string | null; extra: unknown; mode: number }>(
          local,
          "SELECT form, original, extra, mode FROM skills WHERE id = 'incident-report'"
        )
        expect(read).toMatchObject({
          form: "file",
          mode: 0o755,
          extra: { license: "Apache-2.0", metadata: { owner: "sre", version: "1.2" } }
        })
        expect(read!.original).toMatch(/^---\nname: incident-report\n/)

        const remote =
          transport === "direct"
            ? { cloudDatabaseUrl: Redacted.make(cloud) }
            : {
                directUrl: server.url,
                token: (yield* Effect.promise(() => server.createTenant(`Skills ${Date.now()}`))).token
              }
        const push = yield* dbSync(config({ databaseUrl: Redacted.make(local), ...remote }), (s) => s.push())
        expect(push.transport).toBe(transport)
        const pull = yield* dbSync(config({ databaseUrl: Redacted.make(back), ...remote }), (s) => s.pull())
        expect(counts(pull)[1]).toEqual([2, 0, 0, 0])
        expect(yield* skillRows(back)).toEqual(yield* skillRows(local))
        expect(
          (yield* dbSync(config({ databaseUrl: Redacted.make(back), ...remote }), (s) => s.diff())).tables[1]
        ).toMatchObject({ different: 0, equal: 2 })

        // Written out from the database it came back to, the skill is in its own form, its SKILL.md byte for byte.
        const out = join(temp("out"), "services")
        yield* localSync(out, back, { direction: "ToDisk", kinds: ["skills"] })
        expect(readFileSync(join(out, "skills/incident-report/SKILL.md"), "utf8")).toBe(
          readFileSync(join(EXAMPLE_SKILL, "SKILL.md"), "utf8")
        )
        expect(() => readFileSync(join(out, "skills/incident-report/config.yaml"))).toThrow()
        expect(statSync(join(out, "skills/incident-report/SKILL.md")).mode & 0o777).toBe(0o755)
        expect(statSync(join(out, "skills/search/SKILL.md")).mode & 0o777).toBe(0o644)
      })
    )
  }

  it.scopedLive("a tenant schema made before the server knew these columns gets them when the server migrates", () =>
    Effect.gen(function* () {
      const db = yield* scopedDatabase("srvold")
      const first = yield* Effect.promise(() => startServer(db))
      yield* Effect.promise(first.stop)
      const [{ s: schema }] = (yield* sqlRows<{ s: string }>(db, "SELECT agentsync_tenant_db('made-before') AS s")) as [
        { s: string }
      ]
      // The shape such a schema had, and a server whose last migration was the one before.
      yield* sqlRows(
        db,
        `ALTER TABLE "${schema}".skills DROP COLUMN form, DROP COLUMN original, DROP COLUMN extra, DROP COLUMN mode`
      )
      yield* sqlRows(db, "DELETE FROM agentsync_server_migrations WHERE migration_id >= 6")
      const again = yield* Effect.promise(() => startServer(db))
      yield* Effect.promise(again.stop)
      const columns = yield* sqlRows<{ column_name: string; data_type: string }>(
        db,
        `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'skills' AND column_name IN ('form', 'original', 'extra', 'mode') ORDER BY column_name`,
        [schema]
      )
      expect(columns).toEqual([
        { column_name: "extra", data_type: "json" },
        { column_name: "form", data_type: "text" },
        { column_name: "mode", data_type: "integer" },
        { column_name: "original", data_type: "text" }
      ])
      // A server that had run migration 6 before `mode` was one of its columns: migration 12 adds it.
      yield* sqlRows(db, `ALTER TABLE "${schema}".skills DROP COLUMN mode`)
      yield* sqlRows(db, "DELETE FROM agentsync_server_migrations WHERE migration_id >= 12")
      const third = yield* Effect.promise(() => startServer(db))
      yield* Effect.promise(third.stop)
      expect(
        yield* sqlRows(
          db,
          `SELECT column_default FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'skills' AND column_name = 'mode'`,
          [schema]
        )
      ).toEqual([{ column_default: "420" }])
    })
  )

  it.scopedLive("the skills migration alters only the tenants' skills tables that lack a column (one lock each)", () =>
    Effect.gen(function* () {
      const db = yield* scopedDatabase("srvlocks")
      const first = yield* Effect.promise(() => startServer(db))
      yield* Effect.promise(first.stop)
      const schemaOf = (tenant: string) =>
        Effect.map(sqlRows<{ s: string }>(db, "SELECT agentsync_tenant_db($1) AS s", [tenant]), (rows) => rows[0]!.s)
      const [complete, lacking] = [yield* schemaOf("complete"), yield* schemaOf("lacking")]
      yield* sqlRows(db, `ALTER TABLE "${lacking}".skills DROP COLUMN mode`)
      const locked = yield* Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        return yield* sql.withTransaction(
          Effect.zipRight(
            tenantSkillsAsIsMigration,
            sql.unsafe<{ s: string }>(
              `SELECT c.relnamespace::regnamespace::text AS s FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
                WHERE l.pid = pg_backend_pid() AND l.mode = 'AccessExclusiveLock' AND c.relname = 'skills'`
            )
          )
        )
      }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(db), maxConnections: 1 })))
      expect(locked.map((r) => r.s)).toEqual([lacking])
      expect(complete).not.toBe(lacking)
      expect(
        yield* sqlRows(
          db,
          `SELECT column_default FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'skills' AND column_name = 'mode'`,
          [lacking]
        )
      ).toEqual([{ column_default: "420" }])
    })
  )
})
