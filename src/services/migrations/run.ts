/** Runs a record of migrations on PostgreSQL so that processes started together on a fresh database serialise. */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import { Data, Effect } from "effect"

/** The advisory lock every migrator of agentsync takes, whichever record it runs: one key per database. */
const MIGRATIONS_LOCK = "agentsync migrations"

/**
 * A migration the code holds that a database never applied though it applied a later one: the migrator runs no id
 * below the highest applied, so it would never run. Refused before anything of the run is migrated, rather than
 * left silently out of the schema.
 */
export class MigrationGap extends Data.TaggedError("MigrationGap")<{
  /** The migration never applied, as its record names it (`0004_job_runs`). */
  readonly migration: string
  /** The highest migration the database has applied. */
  readonly latest: string
  readonly table: string
}> {
  /** What is wrong and what to do: an operator runs a build that has every migration the database has; a developer renumbers. */
  get reason() {
    return `migration ${this.migration} was never applied: the database already has the later ${this.latest} (${this.table}), and no migration below the highest applied is ever run, so nothing was migrated. Run a build that has both (this database was migrated by one with ${this.latest} but without ${this.migration}: upgrade to a build that has ${this.migration} too, or restore the database from before ${this.latest}); a developer adding ${this.migration} gives it the next id above ${this.latest}`
  }
  override get message() {
    return this.reason
  }
}

/**
 * What a run finds wrong with a record against the ids a database has applied: the first migration of the record
 * not applied, when some applied id is higher (a gap the migrator never fills), with the highest applied.
 */
export const gapOf = (
  record: Readonly<Record<string, unknown>>,
  applied: ReadonlyArray<{ readonly id: number; readonly name: string }>
): { readonly migration: string; readonly latest: string } | undefined => {
  if (applied.length === 0) return undefined
  const have = new Set(applied.map((a) => a.id))
  let latest = applied[0]!
  for (const a of applied) if (a.id > latest.id) latest = a
  const keys = Object.keys(record).flatMap((key) => {
    const m = /^(\d+)_(.+)$/.exec(key)
    return m === null ? [] : [{ key, id: Number(m[1]) }]
  })
  const named = new Map(keys.map((k) => [k.id, k.key]))
  const missing = keys.filter((k) => !have.has(k.id) && k.id < latest.id).sort((a, b) => a.id - b.id)[0]
  return missing === undefined
    ? undefined
    : { migration: missing.key, latest: named.get(latest.id) ?? `${latest.id}_${latest.name}` }
}

/** Whether every migration of a record is among the ids applied (then the migrator has nothing to run). */
const allApplied = (record: Readonly<Record<string, unknown>>, applied: ReadonlyArray<{ readonly id: number }>) => {
  const have = new Set(applied.map((a) => a.id))
  return Object.keys(record).every((key) => {
    const m = /^(\d+)_(.+)$/.exec(key)
    return m === null || have.has(Number(m[1]))
  })
}

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
        // The ids applied: with every one of the record's among them there is nothing to run (the migrator, which
        // would lock its table and read it twice to find so, is not asked); a gap below the highest is refused.
        const before =
          found?.exists === true
            ? yield* sql<{
                readonly id: number
                readonly name: string
              }>`SELECT migration_id AS id, name FROM ${sql(table)}`
            : []
        if (found?.exists !== true)
          yield* sql`CREATE TABLE ${sql(table)} (
            migration_id integer primary key,
            created_at timestamp with time zone not null default now(),
            name text not null
          )`
        if (allApplied(record, before)) return []
        // Checked before the migrator: it runs only ids above the highest applied, so the ids read now answer as
        // those after its run would, and a refused run has run no migration (none run, then rolled back).
        const gap = gapOf(record, before)
        if (gap !== undefined) return yield* new MigrationGap({ ...gap, table })
        return yield* Migrator.make({})({ loader: Migrator.fromRecord(record), table })
      })
    )
  })
