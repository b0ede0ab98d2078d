/** Runs a record of migrations on PostgreSQL so that processes started together on a fresh database serialise. */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"

/**
 * The migrator checks for its table and then creates it, which races: of two processes on a fresh database, one
 * fails with "relation already exists". The table is created here first, under a transaction-scoped advisory lock
 * named after it, and only when it is missing (a role that may not create tables, as an application's often may
 * not once an administrator has migrated, is refused even `CREATE TABLE IF NOT EXISTS` on a table that exists); the
 * migrator then holds a lock on that table while it runs the migrations, once.
 */
export const runMigrations = (table: string, record: Parameters<typeof Migrator.fromRecord>[0]) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql.withTransaction(
      Effect.gen(function* () {
        yield* sql`SELECT pg_advisory_xact_lock(hashtext(${table}))`
        const [found] = yield* sql<{ readonly exists: boolean }>`SELECT to_regclass(${table}) IS NOT NULL AS exists`
        if (found?.exists !== true)
          yield* sql`CREATE TABLE ${sql(table)} (
            migration_id integer primary key,
            created_at timestamp with time zone not null default now(),
            name text not null
          )`
      })
    )
    return yield* Migrator.make({})({ loader: Migrator.fromRecord(record), table })
  })
