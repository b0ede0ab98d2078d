/** Reading the synced tables out of a Postgres database: schema check, row counts, sorted row streams, and the diff. */
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import type { Readable } from "node:stream"
import { Chunk, Context, Effect, Option, type Scope, Stream } from "effect"
import pg from "pg"
import { to as copyTo } from "pg-copy-streams"
import {
  compareIds,
  type RowOf,
  rowDigest,
  SYNC_TABLES,
  type SyncTable,
  TABLE_NAME,
  type TableDiffCounts
} from "../domain/dbExport.js"
import { DatabaseError } from "../errors.js"

/** Where the synced tables live: a client and, for a tenant's copy on the server, a schema. */
export interface DbLocation {
  readonly sql: SqlClient.SqlClient
  /** A Postgres schema holding the tables; the connection's current schema when absent. */
  readonly schema?: string | undefined
}

/** Rows of each synced table in id order (code points), in batches, plus the row counts up front. */
export interface ExportSource<E = never> {
  readonly counts: Effect.Effect<Record<SyncTable, number>, E | DatabaseError>
  readonly rows: <T extends SyncTable>(table: T) => Stream.Stream<ReadonlyArray<RowOf[T]>, E | DatabaseError>
  /**
   * The bulk path, offered by a Postgres source: the table as `COPY … TO STDOUT` text in the column order of
   * `COPY_COLUMNS`, on a connection held for as long as the scope is open.
   */
  readonly copy?: (table: SyncTable) => Effect.Effect<Readable, DatabaseError, Scope.Scope>
}

/** The columns of each table in the order the bulk path copies them. */
export const COPY_COLUMNS: Record<SyncTable, string> = {
  users: "id, name, email, display_name, roles, created_at, updated_at",
  skills: "id, name, description, enabled, tags, category, assigned_agents, instructions, version_hash, created_at, updated_at",
  contexts: "id, user_id, session_id, name, data, created_at, updated_at"
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

interface ColumnSpec {
  readonly type: string
  /** The target must accept a row without this column only when it has a default or is nullable. */
}
const TS = "timestamp with time zone"
export const EXPECTED_COLUMNS: Record<string, Record<string, ColumnSpec>> = {
  users: {
    id: { type: "text" },
    name: { type: "text" },
    email: { type: "text" },
    display_name: { type: "text" },
    roles: { type: "text[]" },
    created_at: { type: TS },
    updated_at: { type: TS }
  },
  skills: {
    id: { type: "text" },
    name: { type: "text" },
    description: { type: "text" },
    enabled: { type: "boolean" },
    tags: { type: "text[]" },
    category: { type: "text" },
    assigned_agents: { type: "text[]" },
    instructions: { type: "text" },
    version_hash: { type: "text" },
    created_at: { type: TS },
    updated_at: { type: TS }
  },
  user_contexts: {
    id: { type: "text" },
    user_id: { type: "text" },
    session_id: { type: "text" },
    name: { type: "text" },
    data: { type: "jsonb" },
    created_at: { type: TS },
    updated_at: { type: TS }
  },
  user_sessions: { id: { type: "text" } }
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
  for (const table of tables) {
    const found = rows.filter((r) => r.table_name === table)
    const expected = EXPECTED_COLUMNS[table]!
    if (found.length === 0) {
      problems.push(`table ${table} is missing`)
      continue
    }
    for (const [column, spec] of Object.entries(expected)) {
      const col = found.find((r) => r.column_name === column)
      if (col === undefined) {
        problems.push(`column ${table}.${column} is missing`)
        continue
      }
      const type = col.data_type === "ARRAY" ? `${col.udt_name.replace(/^_/, "")}[]` : col.data_type
      if (type !== spec.type) problems.push(`column ${table}.${column} is ${type}, expected ${spec.type}`)
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

const ts = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS ${column}`

const SELECT: Record<SyncTable, string> = {
  users: `id, name, email, display_name, roles, ${ts("created_at")}, ${ts("updated_at")}`,
  skills: `id, name, description, enabled, tags, category, assigned_agents, instructions, version_hash, ${ts("created_at")}, ${ts("updated_at")}`,
  contexts: `id, user_id, session_id, name, data, ${ts("created_at")}, ${ts("updated_at")}`
}

/**
 * Rows rendered as the export carries them: timestamps canonical UTC text, arrays and JSON decoded by the driver.
 * Read through a server-side cursor on a connection of its own, so memory holds one batch at a time and the
 * read never lands on a transaction another client has open.
 */
export const tableRows = <T extends SyncTable>(loc: DbLocation, table: T, batch = 2000): Stream.Stream<ReadonlyArray<RowOf[T]>, DatabaseError> =>
  Stream.unwrapScoped(
    Effect.map(outsideTransactionEffect(loc.sql.reserve), (conn) =>
      conn.executeStream(`SELECT ${SELECT[table]} FROM ${qualified(loc, TABLE_NAME[table])} ORDER BY id COLLATE "C"`, [], undefined)
    ).pipe(Effect.mapError(dbError(`connecting to read ${TABLE_NAME[table]}`)))
  ).pipe(
    Stream.mapError((e) => (e instanceof SqlError ? dbError(`reading ${TABLE_NAME[table]}`)(e) : e)),
    Stream.rechunk(batch),
    Stream.chunks,
    Stream.map((c) => Chunk.toReadonlyArray(c) as ReadonlyArray<RowOf[T]>)
  )

export const countRows = Effect.fn("DbExport.countRows")(function* (loc: DbLocation) {
  const [row] = yield* loc.sql
    .unsafe<Record<SyncTable, number>>(
      `SELECT (SELECT count(*) FROM ${qualified(loc, "users")})::int AS users,
              (SELECT count(*) FROM ${qualified(loc, "skills")})::int AS skills,
              (SELECT count(*) FROM ${qualified(loc, "user_contexts")})::int AS contexts`
    )
    .pipe(Effect.mapError(dbError("counting rows")), outsideTransactionEffect)
  return row!
})

/** A table as COPY text, streamed from a connection of its own. */
export const copyOut = (loc: DbLocation, table: SyncTable) =>
  Effect.gen(function* () {
    const conn = yield* outsideTransactionEffect(loc.sql.reserve).pipe(Effect.mapError(dbError(`connecting to copy ${TABLE_NAME[table]}`)))
    const raw = rawClient(conn)
    if (raw === undefined) return yield* new DatabaseError({ reason: "the database driver does not expose COPY" })
    return raw.query(copyTo(`COPY (SELECT ${COPY_COLUMNS[table]} FROM ${qualified(loc, TABLE_NAME[table])}) TO STDOUT`)) as Readable
  })

/** A database as an export source. */
export const sqlSource = (loc: DbLocation, batch = 2000): ExportSource => ({
  counts: countRows(loc),
  rows: (table) => tableRows(loc, table, batch),
  copy: (table) => copyOut(loc, table)
})

// ---------------------------------------------------------------------------------------------------------------
// Diff: a merge join of two id-sorted streams, comparing row digests; memory stays at one batch per side.

type Pull<A, E> = Effect.Effect<Chunk.Chunk<A>, Option.Option<E>>

/** Counts rows only on the left, only on the right, different and equal, for one table. */
export const diffTable = <T extends SyncTable, E1, E2>(
  table: T,
  left: Stream.Stream<ReadonlyArray<RowOf[T]>, E1>,
  right: Stream.Stream<ReadonlyArray<RowOf[T]>, E2>
): Effect.Effect<TableDiffCounts, E1 | E2> =>
  Effect.scoped(
    Effect.gen(function* () {
      const digests = <E>(s: Stream.Stream<ReadonlyArray<RowOf[T]>, E>) =>
        s.pipe(
          Stream.mapConcat((rows) => rows.map((r) => [r.id, rowDigest(table, r)] as const)),
          Stream.toPull
        )
      const pullL: Pull<readonly [string, string], E1> = yield* digests(left)
      const pullR: Pull<readonly [string, string], E2> = yield* digests(right)
      const reader = <E>(pull: Pull<readonly [string, string], E>) => {
        let buf: ReadonlyArray<readonly [string, string]> = []
        let i = 0
        let done = false
        const peek: Effect.Effect<readonly [string, string] | undefined, E> = Effect.suspend(() => {
          if (i < buf.length) return Effect.succeed(buf[i])
          if (done) return Effect.succeed(undefined)
          return pull.pipe(
            Effect.flatMap((c) =>
              Effect.sync(() => {
                buf = Chunk.toReadonlyArray(c)
                i = 0
              })
            ),
            Effect.catchAll((o) =>
              Option.isNone(o)
                ? Effect.sync(() => {
                    done = true
                  })
                : Effect.fail(o.value)
            ),
            Effect.zipRight(Effect.suspend(() => peek))
          )
        })
        return { peek, next: () => void i++ }
      }
      const l = reader(pullL)
      const r = reader(pullR)
      let only_local = 0
      let only_remote = 0
      let different = 0
      let equal = 0
      for (;;) {
        const a = yield* l.peek
        const b = yield* r.peek
        if (a === undefined && b === undefined) break
        const order = a === undefined ? 1 : b === undefined ? -1 : compareIds(a[0], b[0])
        if (order < 0) {
          only_local++
          l.next()
        } else if (order > 0) {
          only_remote++
          r.next()
        } else {
          if (a![1] === b![1]) equal++
          else different++
          l.next()
          r.next()
        }
      }
      return { table, only_local, only_remote, different, equal }
    })
  )

/** The per-table diff of two sources (local on the left). */
export const diffSources = <E1, E2>(local: ExportSource<E1>, remote: ExportSource<E2>) =>
  Effect.forEach(SYNC_TABLES, (table) => diffTable(table, local.rows(table), remote.rows(table)))
