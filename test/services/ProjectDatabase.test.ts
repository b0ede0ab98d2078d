// The Database port on the real PostgreSQL and on the embedded default: migrations, the agreed tables, clear connection errors.
import { mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { SqlClient } from "@effect/sql"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer, Option, Redacted } from "effect"
import * as Database from "../../src/services/ProjectDatabase.js"
import { adminUrl, query, scopedDatabase } from "../support/pg.js"

const temps: Array<string> = []
afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true })
})

const closedPort = () =>
  new Promise<number>((resolve) => {
    const srv = createServer()
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      srv.close(() => resolve(port))
    })
  })

const withDb = <A, E, LE>(
  layer: Layer.Layer<SqlClient.SqlClient, LE>,
  f: (sql: SqlClient.SqlClient) => Effect.Effect<A, E, SqlClient.SqlClient>
) => Effect.exit(Effect.flatMap(SqlClient.SqlClient, f).pipe(Effect.provide(layer), Effect.scoped))

const columnsOf = (sql: SqlClient.SqlClient, table: string) =>
  sql<{ column_name: string; data_type: string; is_nullable: string; column_default: string | null }>`
    SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns
    WHERE table_schema = 'public' AND table_name = ${table} ORDER BY ordinal_position`

describe("Database on PostgreSQL (DATABASE_URL)", () => {
  it.scopedLive("runs the project migrations once and creates the agreed tables exactly", () =>
    Effect.gen(function* () {
      const url = yield* scopedDatabase("db")
      const options = { url: Option.some(Redacted.make(url)), dataDir: "/nonexistent" }
      const exit = yield* withDb(Database.layerMigrated(options), (sql) =>
        Effect.gen(function* () {
          // A second run of the migrations is a no-op.
          const again = yield* Database.runProjectMigrations()
          const applied = yield* sql<{ name: string }>`SELECT name FROM agentsync_migrations ORDER BY migration_id`
          const users = yield* columnsOf(sql, "users")
          const contexts = yield* columnsOf(sql, "user_contexts")
          const skills = yield* columnsOf(sql, "skills")
          const sessions = yield* columnsOf(sql, "user_sessions")
          const tables = yield* sql<{ table_name: string }>`
          SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name`
          return { again, applied, users, contexts, skills, sessions, tables: tables.map((t) => t.table_name) }
        })
      )
      if (Exit.isFailure(exit)) throw new Error(String(exit.cause))
      const r = exit.value
      expect(r.again).toEqual([])
      expect(r.applied.map((a) => a.name)).toEqual([
        "project_tables",
        "content_file_sha",
        "content_as_is",
        "job_runs",
        "item_mode",
        "front_matter_after_blank_lines"
      ])
      expect(r.tables).toEqual(
        expect.arrayContaining([
          "agents",
          "skills",
          "contents",
          "content_sources",
          "access_rules",
          "user_access_rules",
          "users",
          "user_sessions",
          "user_contexts",
          "item_files",
          "item_blobs",
          "job_runs"
        ])
      )
      const shape = (cols: ReadonlyArray<{ column_name: string; data_type: string; is_nullable: string }>) =>
        cols.map((c) => `${c.column_name} ${c.data_type}${c.is_nullable === "NO" ? " not null" : ""}`)
      expect(shape(r.users)).toEqual([
        "id text not null",
        "name text not null",
        "email text not null",
        "display_name text not null",
        "roles ARRAY not null",
        "created_at timestamp with time zone not null",
        "updated_at timestamp with time zone not null"
      ])
      expect(shape(r.sessions)).toEqual([
        "id text not null",
        "user_id text not null",
        "created_at timestamp with time zone not null"
      ])
      expect(shape(r.contexts)).toEqual([
        "id text not null",
        "user_id text not null",
        "session_id text",
        "name text not null",
        "data jsonb not null",
        "created_at timestamp with time zone not null",
        "updated_at timestamp with time zone not null"
      ])
      expect(shape(r.skills)).toEqual([
        "id text not null",
        "name text not null",
        "description text not null",
        "enabled boolean not null",
        "tags ARRAY not null",
        "category text not null",
        "assigned_agents ARRAY not null",
        "instructions text not null",
        "version_hash text not null",
        "created_at timestamp with time zone not null",
        "updated_at timestamp with time zone not null",
        // How the skill was laid out on disk and the text it was read from (local sync writes it back so).
        "form text not null",
        "original text",
        "extra json not null",
        // The mode of its SKILL.md: 0644, or 0755 when executable.
        "mode integer not null"
      ])
    })
  )

  it.scopedLive("runs started together on a fresh database all migrate it, once (no 'already exists')", () =>
    Effect.gen(function* () {
      for (let attempt = 0; attempt < 3; attempt++) {
        const url = yield* scopedDatabase("dbrace")
        const options = { url: Option.some(Redacted.make(url)), dataDir: "/nonexistent" }
        // Six processes' worth: each its own pool, all at once, as `agentsync` runs started together are.
        const exits = yield* Effect.all(
          Array.from({ length: 6 }, () => withDb(Database.layerMigrated(options), () => Effect.void)),
          { concurrency: "unbounded" }
        )
        for (const exit of exits) expect(Exit.isSuccess(exit) ? "ok" : String(exit.cause)).toBe("ok")
        const applied = yield* withDb(
          Database.layer(options),
          (sql) => sql<{ name: string }>`SELECT name FROM agentsync_migrations ORDER BY migration_id`
        )
        expect(Exit.isSuccess(applied) ? applied.value.map((a) => a.name) : String(applied)).toEqual([
          "project_tables",
          "content_file_sha",
          "content_as_is",
          "job_runs",
          "item_mode",
          "front_matter_after_blank_lines"
        ])
      }
    })
  )

  it.scopedLive("an application role that may not create tables opens a database an administrator migrated", () =>
    Effect.gen(function* () {
      const url = yield* scopedDatabase("dbapp")
      const admin = { url: Option.some(Redacted.make(url)), dataDir: "/nonexistent" }
      const migrated = yield* withDb(Database.layerMigrated(admin), () => Effect.void)
      expect(Exit.isSuccess(migrated) ? "ok" : String(migrated)).toBe("ok")
      // Roles belong to the whole server: a name of this test's own, dropped when it ends.
      const role = `app_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6)}`
      const database = new URL(url).pathname.slice(1)
      yield* Effect.acquireRelease(
        Effect.promise(async () => {
          await query(adminUrl(), `CREATE ROLE ${role} LOGIN PASSWORD 'app-secret'`)
          await query(adminUrl(), `GRANT CONNECT ON DATABASE "${database}" TO ${role}`)
          for (const statement of [
            "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
            `GRANT USAGE ON SCHEMA public TO ${role}`,
            `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role}`
          ])
            await query(url, statement)
        }),
        () =>
          Effect.promise(async () => {
            await query(url, `DROP OWNED BY ${role}`)
            await query(adminUrl(), `DROP ROLE ${role}`)
          })
      )
      const asApp = new URL(url)
      asApp.username = role
      asApp.password = "app-secret"
      const app = { url: Option.some(Redacted.make(asApp.href)), dataDir: "/nonexistent" }
      const opened = yield* withDb(
        Database.layerMigrated(app),
        (sql) => sql<{ n: number }>`SELECT count(*)::int AS n FROM users`
      )
      expect(Exit.isSuccess(opened) ? opened.value : String(opened)).toEqual([{ n: 0 }])
    })
  )

  it.scopedLive("a server that is down is one Database error naming host:port, never the password", () =>
    Effect.gen(function* () {
      const port = yield* Effect.promise(() => closedPort())
      const secret = "s3cret-Pa55"
      const url = `postgres://someone:${secret}@127.0.0.1:${port}/db`
      const exit = yield* withDb(
        Database.layer({ url: Option.some(Redacted.make(url)), dataDir: "/nonexistent" }),
        (sql) => sql`SELECT 1`
      )
      expect(Exit.isFailure(exit)).toBe(true)
      const text = JSON.stringify(exit) + String(Exit.isFailure(exit) ? exit.cause : "")
      expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error._tag : undefined).toBe(
        "DatabaseError"
      )
      const message = Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error.message : ""
      expect(message).toContain(`127.0.0.1:${port}`)
      expect(message).not.toContain(secret)
      expect(text).not.toContain(secret)
    })
  )

  it.scopedLive("a refused login (unknown role) is one Database error naming host:port", () =>
    Effect.gen(function* () {
      const admin = new URL(adminUrl())
      admin.username = "nobody_here"
      admin.password = "hunter2hunter2"
      const exit = yield* withDb(
        Database.layer({ url: Option.some(Redacted.make(admin.toString())), dataDir: "/nonexistent" }),
        (sql) => sql`SELECT 1`
      )
      const error = Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : undefined
      expect(error?._tag).toBe("DatabaseError")
      expect(error?.message).toContain(`${admin.hostname}:${admin.port}`)
      expect(error?.message).toMatch(/nobody_here/)
      expect(error?.message).not.toContain("hunter2hunter2")
    })
  )
})

describe("Database embedded default (no DATABASE_URL)", () => {
  it.scopedLive(
    "persists under dataDir across runs, holds one process at a time, and migrates",
    () =>
      Effect.gen(function* () {
        const root = mkdtempSync(join(tmpdir(), "agentsync-embedded-"))
        temps.push(root)
        const dataDir = Database.embeddedDataDir(root)
        const options = { url: Option.none(), dataDir }
        const first = yield* withDb(Database.layerMigrated(options), (sql) =>
          Effect.gen(function* () {
            yield* sql`INSERT INTO users (id, name, email) VALUES ('u1', 'ada', 'ada@example.com')`
            // A second opener of the same data directory is refused while this one runs.
            const second = yield* Effect.exit(Layer.build(Database.layer(options)).pipe(Effect.scoped))
            return second
          })
        )
        if (Exit.isFailure(first)) throw new Error(String(first.cause))
        const second = first.value
        expect(Exit.isFailure(second) && second.cause._tag === "Fail" ? second.cause.error._tag : undefined).toBe(
          "SyncInProgress"
        )

        const reopened = yield* withDb(
          Database.layerMigrated(options),
          (sql) => sql<{ name: string }>`SELECT name FROM users`
        )
        if (Exit.isFailure(reopened)) throw new Error(String(reopened.cause))
        expect(reopened.value).toEqual([{ name: "ada" }])
      }),
    120_000
  )
})
