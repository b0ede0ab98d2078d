/** Reading the synced tables out of a Postgres database: schema check, row counts, sorted row streams, and the diff. */

import type { Readable } from "node:stream"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { Chunk, Context, Effect, Option, Stream } from "effect"
import pg from "pg"
import { to as copyTo } from "pg-copy-streams"
import type { TableDiffCounts } from "../../domain/db/importPlan.js"
import type { Digest, ExportSource } from "../../domain/db/source.js"
import {
  compareIds,
  type RowOf,
  rowDigest,
  SYNC_TABLES,
  type SyncTable,
  TABLE_NAME,
  TABLES
} from "../../domain/db/tables.js"
import { DatabaseError } from "../../errors.js"
import { oneRow } from "../../services/oneRow.js"
import { phase } from "../../services/Progress.js"
import { columnList, digestRow, informationSchemaTypes, selectList } from "./sql.js"

export type { Digest, ExportSource } from "../../domain/db/source.js"

/** Where the synced tables live: a client and, for a tenant's copy on the server, a schema. */
export interface DbLocation {
  readonly sql: SqlClient.SqlClient
  /** A Postgres schema holding the tables; the connection's current schema when absent. */
  readonly schema?: string | undefined
}

/** The columns of each table in the order the bulk path copies them. */
export const COPY_COLUMNS: Record<SyncTable, string> = {
  users: columnList(TABLES.users),
  skills: columnList(TABLES.skills),
  contexts: columnList(TABLES.contexts)
}

/**
 * The node-postgres client under a connection @effect/sql-pg has reserved (a transaction's, or one from
 * `reserve`): COPY needs the driver's own client. Undefined where the driver does not expose one, and the
 * callers fall back to the chunked path.
 */
export const rawClient = (conn: unknown): pg.ClientBase | undefined => {
  const raw = (conn as { readonly pg?: unknown } | undefined)?.pg
  return raw instanceof pg.Client || (typeof raw === "object" && raw !== null && "query" in raw && "connection" in raw)
    ? (raw as pg.ClientBase)
    : undefined
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/

/** `"schema".table` or `table`; the schema name is checked, never interpolated unchecked. */
export const qualified = (loc: Pick<DbLocation, "schema">, table: string): string => {
  if (loc.schema === undefined) return table
  if (!SCHEMA_NAME.test(loc.schema)) throw new RangeError(`invalid schema name ${JSON.stringify(loc.schema)}`)
  return `"${loc.schema}".${table}`
}

/** A SqlError as a DatabaseError: what was being done and the server's message, never a connection string. */
export const dbError =
  (what: string) =>
  (e: SqlError): DatabaseError => {
    const cause = e.cause as { message?: unknown; detail?: unknown } | undefined
    const msg = typeof cause?.message === "string" ? cause.message : e.message
    const detail = typeof cause?.detail === "string" ? ` (${cause.detail})` : ""
    return new DatabaseError({ reason: `${what}: ${msg}${detail}`, cause: e })
  }

/**
 * Runs an effect or stream outside any open transaction: @effect/sql keeps the transaction's connection in one
 * context entry shared by every client, so a read of the other database inside a write transaction would
 * otherwise be sent over the write connection.
 */
const omitTransaction = <R>(ctx: Context.Context<R>): Context.Context<R> =>
  Context.omit(SqlClient.TransactionConnection)(ctx) as Context.Context<R>
export const outsideTransactionEffect = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.mapInputContext(self, omitTransaction<R>)

// ---------------------------------------------------------------------------------------------------------------
// Schema check

/** Each table's columns with the type `information_schema` reports, plus the sessions a context may point at. */
export const EXPECTED_COLUMNS: Record<string, Record<string, string>> = {
  ...Object.fromEntries(SYNC_TABLES.map((t) => [TABLES[t].name, informationSchemaTypes(TABLES[t])])),
  user_sessions: { id: "text" }
}

interface ColumnRow {
  readonly table_name: string
  readonly column_name: string
  readonly data_type: string
  readonly udt_name: string
  readonly is_nullable: string
  readonly has_default: boolean
}

/** The mismatches between a database and the synced tables' shape, one line each (empty when it fits). */
export const schemaProblems = Effect.fn("DbExport.schemaProblems")(function* (loc: DbLocation) {
  const tables = Object.keys(EXPECTED_COLUMNS)
  const rows = yield* loc.sql
    .unsafe<ColumnRow>(
      `SELECT table_name, column_name, data_type, udt_name, is_nullable, column_default IS NOT NULL OR is_identity = 'YES' AS has_default
         FROM information_schema.columns
        WHERE table_schema = coalesce($1, current_schema()) AND table_name = ANY($2::text[])`,
      [loc.schema ?? null, tables]
    )
    .pipe(Effect.mapError(dbError("reading information_schema")))
  const problems: Array<string> = []
  for (const [table, expected] of Object.entries(EXPECTED_COLUMNS)) {
    const found = rows.filter((r) => r.table_name === table)
    if (found.length === 0) {
      problems.push(`table ${table} is missing`)
      continue
    }
    for (const [column, type] of Object.entries(expected)) {
      const col = found.find((r) => r.column_name === column)
      if (col === undefined) {
        problems.push(`column ${table}.${column} is missing`)
        continue
      }
      const actual = col.data_type === "ARRAY" ? `${col.udt_name.replace(/^_/, "")}[]` : col.data_type
      if (actual !== type) problems.push(`column ${table}.${column} is ${actual}, expected ${type}`)
    }
    for (const col of found) {
      if (table !== "user_sessions" && !(col.column_name in expected) && col.is_nullable === "NO" && !col.has_default) {
        problems.push(`column ${table}.${col.column_name} is NOT NULL without a default, which an import cannot fill`)
      }
    }
  }
  return problems
})

/** Fails with a DatabaseError naming every mismatch when the database does not have the synced tables' shape. */
export const checkSchema = Effect.fn("DbExport.checkSchema")(function* (loc: DbLocation, side: string) {
  const problems = yield* schemaProblems(loc)
  if (problems.length > 0) {
    return yield* new DatabaseError({ reason: `schema mismatch on the ${side} database: ${problems.join("; ")}` })
  }
})

// ---------------------------------------------------------------------------------------------------------------
// Reading rows

/**
 * The rows of a query, `batch` at a time, through a server-side cursor in a read-only snapshot on a connection
 * of its own: memory holds one batch, the rows are one consistent snapshot, and the read never lands on a
 * transaction another client has open.
 */
export const cursorRows = <A>(
  loc: DbLocation,
  text: string,
  what: string,
  batch = 5000
): Stream.Stream<ReadonlyArray<A>, DatabaseError> =>
  Stream.unwrapScoped(
    Effect.gen(function* () {
      const conn = yield* outsideTransactionEffect(loc.sql.reserve)
      yield* conn.executeUnprepared("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", [], undefined)
      // A read-only transaction: ending it can lose nothing, and a connection that is already gone has ended it.
      yield* Effect.addFinalizer(() => Effect.ignore(conn.executeUnprepared("ROLLBACK", [], undefined)))
      yield* conn.executeUnprepared(`DECLARE agentsync_cursor NO SCROLL CURSOR FOR ${text}`, [], undefined)
      const fetch = conn.executeUnprepared(`FETCH ${batch} FROM agentsync_cursor`, [], undefined)
      return Stream.repeatEffectOption(
        fetch.pipe(
          Effect.mapError((e) => Option.some(dbError(what)(e))),
          Effect.flatMap((rows) =>
            rows.length === 0 ? Effect.fail(Option.none()) : Effect.succeed(rows as ReadonlyArray<A>)
          )
        )
      )
    }).pipe(Effect.mapError((e) => (e instanceof SqlError ? dbError(what)(e) : e)))
  )

/** Rows rendered as the export carries them: timestamps canonical UTC text, arrays and JSON decoded by the driver. */
export const tableRows = <T extends SyncTable>(
  loc: DbLocation,
  table: T,
  batch = 2000
): Stream.Stream<ReadonlyArray<RowOf[T]>, DatabaseError> =>
  cursorRows<RowOf[T]>(
    loc,
    `SELECT ${selectList(TABLES[table])} FROM ${qualified(loc, TABLE_NAME[table])} ORDER BY id COLLATE "C"`,
    `reading ${TABLE_NAME[table]}`,
    batch
  )

export const countRows = Effect.fn("DbExport.countRows")(function* (loc: DbLocation) {
  const rows = yield* loc.sql
    .unsafe<Record<SyncTable, number>>(
      `SELECT (SELECT count(*) FROM ${qualified(loc, "users")})::int AS users,
              (SELECT count(*) FROM ${qualified(loc, "skills")})::int AS skills,
              (SELECT count(*) FROM ${qualified(loc, "user_contexts")})::int AS contexts`
    )
    .pipe(Effect.mapError(dbError("counting rows")), outsideTransactionEffect)
  return yield* oneRow(rows, "counting rows")
})

/** A table as COPY text, streamed from a connection of its own. */
export const copyOut = (loc: DbLocation, table: SyncTable) =>
  Effect.gen(function* () {
    const conn = yield* outsideTransactionEffect(loc.sql.reserve).pipe(
      Effect.mapError(dbError(`connecting to copy ${TABLE_NAME[table]}`))
    )
    const raw = rawClient(conn)
    if (raw === undefined) return yield* new DatabaseError({ reason: "the database driver does not expose COPY" })
    return raw.query(
      copyTo(`COPY (SELECT ${COPY_COLUMNS[table]} FROM ${qualified(loc, TABLE_NAME[table])}) TO STDOUT`)
    ) as Readable
  })

/** A database as an export source. */
export const sqlSource = (loc: DbLocation, batch = 2000): ExportSource => ({
  counts: countRows(loc),
  rows: (table) => tableRows(loc, table, batch),
  copy: (table) => copyOut(loc, table),
  digests: (table) => tableDigests(loc, table)
})

// ---------------------------------------------------------------------------------------------------------------
// Diff: a merge join of two id-sorted streams of (id, digest of the compared columns); memory stays at one
// batch per side.

/**
 * Digests computed by Postgres (md5 of the row's text form: jsonb and arrays print canonically), so only ids
 * and digests travel. Both sides of a diff must digest the same way: two databases (or a tenant server, which
 * runs this same query) do; otherwise the rows are digested here with `rowDigest`.
 */
export const tableDigests = (
  loc: DbLocation,
  table: SyncTable,
  batch = 10000
): Stream.Stream<ReadonlyArray<Digest>, DatabaseError> =>
  cursorRows<{ readonly id: string; readonly digest: string }>(
    loc,
    `SELECT id, md5(${digestRow(TABLES[table])}::text) AS digest FROM ${qualified(loc, TABLE_NAME[table])} ORDER BY id COLLATE "C"`,
    `reading ${TABLE_NAME[table]}`,
    batch
  ).pipe(Stream.map((rows) => rows.map((r): Digest => [r.id, r.digest])))

/** Counts ids only on the left, only on the right, with different and with equal digests. */
export const diffDigests = <E1, E2>(
  table: SyncTable,
  left: Stream.Stream<ReadonlyArray<Digest>, E1>,
  right: Stream.Stream<ReadonlyArray<Digest>, E2>
): Effect.Effect<TableDiffCounts, E1 | E2> =>
  Effect.scoped(
    Effect.gen(function* () {
      const side = <E>(pull: Effect.Effect<Chunk.Chunk<ReadonlyArray<Digest>>, Option.Option<E>>) => {
        const state = { buf: [] as ReadonlyArray<Digest>, i: 0, done: false }
        // Refills the buffer when it is used up; the merge below runs synchronously over whole batches.
        const fill: Effect.Effect<void, E> = Effect.suspend(() => {
          if (state.done || state.i < state.buf.length) return Effect.void
          return pull.pipe(
            Effect.map(Option.some),
            Effect.catchAll((o) =>
              Option.isNone(o)
                ? Effect.succeed(Option.none<Chunk.Chunk<ReadonlyArray<Digest>>>())
                : Effect.fail(o.value)
            ),
            Effect.flatMap((next) => {
              if (Option.isNone(next)) {
                state.done = true
                return Effect.void
              }
              state.buf = Chunk.toReadonlyArray(next.value).flat()
              state.i = 0
              return fill
            })
          )
        })
        return { state, fill }
      }
      const l = side(yield* Stream.toPull(left))
      const r = side(yield* Stream.toPull(right))
      const counts = { table, only_local: 0, only_remote: 0, different: 0, equal: 0 }
      for (;;) {
        yield* l.fill
        yield* r.fill
        const a = l.state
        const b = r.state
        if (a.done && b.done) break
        // Merge until one side needs a refill.
        while ((a.i < a.buf.length || a.done) && (b.i < b.buf.length || b.done) && !(a.done && b.done)) {
          const x = a.buf[a.i]
          const y = b.buf[b.i]
          const order = x === undefined ? 1 : y === undefined ? -1 : compareIds(x[0], y[0])
          if (order < 0) {
            counts.only_local++
            a.i++
          } else if (order > 0) {
            counts.only_remote++
            b.i++
          } else if (x !== undefined && y !== undefined) {
            if (x[1] === y[1]) counts.equal++
            else counts.different++
            a.i++
            b.i++
          }
          if ((!a.done && a.i >= a.buf.length) || (!b.done && b.i >= b.buf.length)) break
        }
      }
      return counts satisfies TableDiffCounts
    })
  )

const jsDigests = <T extends SyncTable, E>(table: T, rows: Stream.Stream<ReadonlyArray<RowOf[T]>, E>) =>
  Stream.map(rows, (batch) => batch.map((row): Digest => [row.id, rowDigest(table, row)]))

/** The per-table diff of two sources (local on the left): by Postgres digests where both offer them. */
export const diffSources = <E1, E2>(local: ExportSource<E1>, remote: ExportSource<E2>) =>
  Effect.forEach(SYNC_TABLES, (table) =>
    phase(
      `comparing ${TABLE_NAME[table]}`,
      local.digests !== undefined && remote.digests !== undefined
        ? diffDigests(table, local.digests(table), remote.digests(table))
        : diffDigests(table, jsDigests(table, local.rows(table)), jsDigests(table, remote.rows(table))),
      { unit: "rows", count: (d) => d.only_local + d.only_remote + d.different + d.equal }
    )
  )
