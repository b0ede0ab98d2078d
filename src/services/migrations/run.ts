/** Runs a record of migrations on PostgreSQL so that processes started together on a fresh database serialise. */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"

/** The advisory lock every migrator of agentsync takes, whichever record it runs: one key per database. */
const MIGRATIONS_LOCK = "agentsync migrations"

/**
 * The migrator checks for its table and then creates it, which races: of two processes on a fresh database, one
 * fails with "relation already exists". And two records may share a migration (the project's and the server's both
 * create `job_runs`, for a `jobs run` and a `serve --jobs` on one database), which under the migrator's own lock, a
 * lock on its table, two records would run at once. So every run holds one transaction-scoped advisory lock, the
 * same for every record, from before its table is looked for until its migrations have committed (the migrator's
 * transaction nests in this one as a savepoint; on the embedded database's one connection too). The table is
 * created only when it is missing: a role that may not create tables, as an application's often may not once an
 * administrator has migrated, is refused even `CREATE TABLE IF NOT EXISTS` on a table that exists.
 */
export const runMigrations = (table: string, record: Parameters<typeof Migrator.fromRecord>[0]) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    return yield* sql.withTransaction(
      Effect.gen(function* () {
        yield* sql`SELECT pg_advisory_xact_lock(hashtext(${MIGRATIONS_LOCK}))`
        const [found] = yield* sql<{ readonly exists: boolean }>`SELECT to_regclass(${table}) IS NOT NULL AS exists`
        if (found?.exists !== true)
          yield* sql`CREATE TABLE ${sql(table)} (
            migration_id integer primary key,
            created_at timestamp with time zone not null default now(),
            name text not null
          )`
        return yield* Migrator.make({})({ loader: Migrator.fromRecord(record), table })
      })
    )
  })
