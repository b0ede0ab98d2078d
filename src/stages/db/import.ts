/** Writing the synced tables into a Postgres database: chunked set-based upserts, one transaction per table. */
import { pipeline } from "node:stream/promises"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { Chunk, Effect, Option, Stream } from "effect"
import { from as copyFrom } from "pg-copy-streams"
import { comparedColumns } from "../../domain/db/columns.js"
import type { Skip, TableImportReport } from "../../domain/db/importPlan.js"
import type { ImportOptions, ImportReport } from "../../domain/db/source.js"
import { type RowOf, SYNC_TABLES, type SyncTable, TABLE_NAME, TABLES } from "../../domain/db/tables.js"
import { DatabaseError, PartialImport } from "../../errors.js"
import { oneRow } from "../../services/oneRow.js"
import { phase } from "../../services/Progress.js"
import {
  COPY_COLUMNS,
  checkSchema,
  type DbLocation,
  dbError,
  type ExportSource,
  qualified,
  rawClient
} from "./export.js"
import {
  chunkParams,
  chunkSource,
  comparedTuple,
  stagingColumns,
  targetDiffers,
  typedSource,
  upsertActed
} from "./sql.js"

export type { ImportOptions, ImportReport } from "../../domain/db/source.js"

interface ChunkResult {
  readonly inserted: number
  readonly updated: number
  readonly unchanged: number
  readonly skipped: number
  readonly session_cleared: number
  readonly skips: ReadonlyArray<Skip>
}

const COUNTS = `count(*) FILTER (WHERE action = 'insert')::int AS inserted,
  count(*) FILTER (WHERE action = 'update')::int AS updated,
  count(*) FILTER (WHERE action = 'unchanged')::int AS unchanged,
  count(*) FILTER (WHERE action = 'skip')::int AS skipped`

/**
 * One statement per chunk: decode the column arrays, classify each row against the target as it stood before
 * the import (the rules of `planImport`), upsert the rows to write (created_at kept on update), and return the
 * counts. `owners` is where the users' names and emails are looked up: the users table itself when the whole
 * table is one statement (a statement sees the table as it was when it started), else a snapshot taken before
 * the first chunk, because a later chunk would otherwise see names and emails an earlier chunk freed or took.
 */
const statements = (
  loc: DbLocation,
  src: Record<SyncTable, string>,
  maxSkips: number,
  owners?: string
): Record<SyncTable, string> => {
  const users = qualified(loc, "users")
  const nameOwners = owners ?? users
  const skills = qualified(loc, "skills")
  const contexts = qualified(loc, "user_contexts")
  const sessions = qualified(loc, "user_sessions")
  const U = TABLES.users
  const S = TABLES.skills
  const C = TABLES.contexts
  // A context's compared columns, from the target (`x_…`) and from the source with its session made effective.
  const contextCompared = comparedColumns(C).map(([name]) => name)
  return {
    users: `WITH src AS (${src.users}), plan AS (
  SELECT ${typedSource(U)},
    (SELECT o.id FROM ${nameOwners} o WHERE o.name = s.name AND o.id <> s.id LIMIT 1) AS name_owner,
    (SELECT o.id FROM ${nameOwners} o WHERE o.email = s.email AND o.id <> s.id LIMIT 1) AS email_owner,
    x.id IS NOT NULL AS present,
    ${targetDiffers(U)} AS changed
  FROM src s LEFT JOIN ${users} x ON x.id = s.id
), act AS (
  SELECT *, CASE WHEN name_owner IS NOT NULL OR email_owner IS NOT NULL THEN 'skip'
                 WHEN NOT present THEN 'insert' WHEN changed THEN 'update' ELSE 'unchanged' END AS action
  FROM plan
), written AS (${upsertActed(users, U)})
SELECT ${COUNTS}, 0 AS session_cleared, (SELECT count(*) FROM written)::int AS written,
  (SELECT coalesce(json_agg(k), '[]') FROM (
    SELECT id, CASE WHEN name_owner IS NOT NULL THEN 'name belongs to user ' || name_owner ELSE 'email belongs to user ' || email_owner END AS reason
      FROM act WHERE action = 'skip' ORDER BY id LIMIT ${maxSkips}) k) AS skips
FROM act`,
    // `extra` is json (its text, key order included, is what is written); it is compared as jsonb, like contexts' data.
    skills: `WITH src AS (${src.skills}), act AS (
  SELECT ${typedSource(S)},
    CASE WHEN x.id IS NULL THEN 'insert' WHEN ${targetDiffers(S)} THEN 'update' ELSE 'unchanged' END AS action
  FROM src s LEFT JOIN ${skills} x ON x.id = s.id
), written AS (${upsertActed(skills, S)})
SELECT ${COUNTS}, 0 AS session_cleared, (SELECT count(*) FROM written)::int AS written, '[]'::json AS skips FROM act`,
    contexts: `WITH src AS (${src.contexts}), plan AS (
  SELECT ${typedSource(C, ["session_id"])},
    EXISTS (SELECT 1 FROM ${users} u WHERE u.id = s.user_id) AS user_ok,
    s.session_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ${sessions} ss WHERE ss.id = s.session_id) AS session_cleared,
    s.session_id AS given_session,
    x.id IS NOT NULL AS present, ${contextCompared.map((n) => `x.${n} AS x_${n}`).join(", ")}
  FROM src s LEFT JOIN ${contexts} x ON x.id = s.id
), eff AS (
  SELECT *, CASE WHEN session_cleared THEN NULL ELSE given_session END AS session_id FROM plan
), act AS (
  SELECT *, CASE WHEN NOT user_ok THEN 'skip' WHEN NOT present THEN 'insert'
                 WHEN ${comparedTuple(C, (n) => `x_${n}`)} IS DISTINCT FROM ${comparedTuple(C, (n) => n)}
                   THEN 'update' ELSE 'unchanged' END AS action
  FROM eff
), written AS (${upsertActed(contexts, C)})
SELECT ${COUNTS}, (count(*) FILTER (WHERE action <> 'skip' AND session_cleared))::int AS session_cleared,
  (SELECT count(*) FROM written)::int AS written,
  (SELECT coalesce(json_agg(k), '[]') FROM (
    SELECT id, 'user ' || user_id || ' does not exist' AS reason FROM act WHERE action = 'skip' ORDER BY id LIMIT ${maxSkips}) k) AS skips
FROM act`
  }
}

/** Rows of a chunk: each column one array parameter. */
const CHUNK_SOURCE: Record<SyncTable, string> = {
  users: chunkSource(TABLES.users),
  skills: chunkSource(TABLES.skills),
  contexts: chunkSource(TABLES.contexts)
}

const staging = (table: SyncTable) => `agentsync_import_${table}`
/** The users' names and emails as they were before the import, for the chunked path (dropped with the transaction). */
const OWNERS = "pg_temp.agentsync_import_owners"
const STAGED_SOURCE: Record<SyncTable, string> = {
  users: `SELECT * FROM pg_temp.${staging("users")}`,
  skills: `SELECT * FROM pg_temp.${staging("skills")}`,
  contexts: `SELECT * FROM pg_temp.${staging("contexts")}`
}

const emptyReport = (table: SyncTable, total: number): TableImportReport => ({
  table,
  total,
  inserted: 0,
  updated: 0,
  unchanged: 0,
  skipped: 0,
  skips: [],
  session_cleared: 0,
  committed: false
})

const addChunk = (acc: TableImportReport, r: ChunkResult, maxSkips: number): TableImportReport => ({
  ...acc,
  inserted: acc.inserted + r.inserted,
  updated: acc.updated + r.updated,
  unchanged: acc.unchanged + r.unchanged,
  skipped: acc.skipped + r.skipped,
  session_cleared: acc.session_cleared + r.session_cleared,
  skips: acc.skips.length >= maxSkips ? acc.skips : [...acc.skips, ...r.skips].slice(0, maxSkips)
})

/** The classifying statement's one row (an aggregate). */
const classified = (what: string) => (rows: ReadonlyArray<ChunkResult>) =>
  oneRow(rows, `${what}: the classifying statement`)

/** Chunked path: rows in chunks, each chunk one statement with one array parameter per column. */
const importChunked = <T extends SyncTable, E>(
  loc: DbLocation,
  table: T,
  rows: Stream.Stream<ReadonlyArray<RowOf[T]>, E>,
  total: number,
  options: ImportOptions
): Effect.Effect<TableImportReport, E | DatabaseError> => {
  const maxSkips = options.maxSkips ?? 100
  const what = `importing ${TABLE_NAME[table]}`
  // Only users are classified against other rows of their own table (names and emails owned by another id).
  const snapshot =
    table === "users"
      ? Effect.forEach(
          [
            `CREATE TEMP TABLE agentsync_import_owners ON COMMIT DROP AS SELECT id, name, email FROM ${qualified(loc, "users")}`,
            `CREATE INDEX ON ${OWNERS} (name)`,
            `CREATE INDEX ON ${OWNERS} (email)`,
            `ANALYZE ${OWNERS}`
          ],
          (statement) => loc.sql.unsafe(statement).pipe(Effect.mapError(dbError(what))),
          { discard: true }
        )
      : Effect.void
  const text = statements(loc, CHUNK_SOURCE, maxSkips, table === "users" ? OWNERS : undefined)[table]
  const fold = rows.pipe(
    Stream.rechunk(1),
    Stream.mapConcat((batch) => batch),
    Stream.grouped(options.chunkSize ?? 5000),
    Stream.runFoldEffect(emptyReport(table, total), (acc, chunk) =>
      loc.sql.unsafe<ChunkResult>(text, chunkParams(TABLES[table], Chunk.toReadonlyArray(chunk))).pipe(
        Effect.mapError(dbError(what)),
        Effect.flatMap(classified(what)),
        Effect.map((r) => addChunk(acc, r, maxSkips))
      )
    )
  )
  return Effect.zipRight(snapshot, fold)
}

/**
 * Imports one table on the current transaction. The bulk path, when the source is a Postgres database and the
 * driver exposes its client: COPY from the source straight into a staging table (bytes piped, never parsed
 * here), then the same classifying upsert as one statement over the staging table. Otherwise the chunked path.
 */
const importTable = <T extends SyncTable, E>(
  loc: DbLocation,
  table: T,
  source: ExportSource<E>,
  total: number,
  options: ImportOptions
): Effect.Effect<TableImportReport, E | DatabaseError> =>
  Effect.gen(function* () {
    // The classifying statement is estimated costly enough for JIT, whose compile time (over a second) would
    // dwarf the statement itself; it only changes how a plan runs, never what it returns.
    yield* loc.sql.unsafe("SET LOCAL jit = off").pipe(Effect.mapError(dbError("SET jit")))
    const chunked = importChunked(loc, table, source.rows(table), total, options)
    const copy = source.copy
    if (copy === undefined || options.bulk === false) return yield* chunked
    const conn = yield* Effect.serviceOption(SqlClient.TransactionConnection)
    const raw = Option.isSome(conn) ? rawClient(conn.value[0]) : undefined
    if (raw === undefined) return yield* chunked
    const what = `importing ${TABLE_NAME[table]}`
    yield* loc.sql
      .unsafe(`CREATE TEMP TABLE ${staging(table)} (${stagingColumns(TABLES[table])}) ON COMMIT DROP`)
      .pipe(Effect.mapError(dbError(what)))
    yield* Effect.scoped(
      Effect.flatMap(copy(table), (readable) =>
        Effect.tryPromise({
          try: () =>
            pipeline(
              readable,
              raw.query(copyFrom(`COPY pg_temp.${staging(table)} (${COPY_COLUMNS[table]}) FROM STDIN`))
            ),
          catch: (cause) => new DatabaseError({ reason: `${what}: copy failed: ${(cause as Error).message}`, cause })
        })
      )
    )
    const maxSkips = options.maxSkips ?? 100
    const r = yield* loc.sql
      .unsafe<ChunkResult>(statements(loc, STAGED_SOURCE, maxSkips)[table])
      .pipe(Effect.mapError(dbError(what)), Effect.flatMap(classified(what)))
    return addChunk(emptyReport(table, total), r, maxSkips)
  })

const sqlToDb =
  (what: string) =>
  <E>(e: E | SqlError): E | DatabaseError =>
    e instanceof SqlError ? dbError(what)(e) : e

class DryRunDone {
  readonly _tag = "DryRunDone"
  constructor(readonly report: ImportReport) {}
}

/**
 * Imports a source into a database in foreign-key order (users, skills, contexts), each table in its own
 * transaction. The schema of the target is checked before anything is written. When a table fails after
 * others committed, the error is a PartialImport counting the rows of the committed tables; a rerun converges
 * because every write is an upsert. A dry run runs the very same statements inside one transaction that is
 * rolled back, so its counts are exactly what a real run would do, and nothing is kept.
 */
export const importSource = Effect.fn("DbImport.importSource")(function* <E>(
  loc: DbLocation,
  source: ExportSource<E>,
  options: ImportOptions
) {
  yield* checkSchema(loc, "target")
  const counts = yield* source.counts
  const total = counts.users + counts.skills + counts.contexts
  const reports: Array<TableImportReport> = []
  const run = Effect.gen(function* () {
    for (const table of SYNC_TABLES) {
      const result = yield* phase(
        TABLE_NAME[table],
        loc.sql.withTransaction(importTable(loc, table, source, counts[table], options)),
        { total: counts[table], unit: "rows", count: (r) => r.total }
      ).pipe(
        // @effect/sql turns a failed COMMIT or ROLLBACK into a defect; a connection lost mid-import is one, and
        // is reported like any failure of the table (the server rolls back an open transaction it loses).
        Effect.catchSomeDefect((d) =>
          d instanceof SqlError
            ? Option.some(Effect.fail(dbError(`ending the ${TABLE_NAME[table]} transaction`)(d)))
            : Option.none()
        ),
        Effect.mapError(sqlToDb(`committing ${TABLE_NAME[table]}`)),
        Effect.either
      )
      if (result._tag === "Left") {
        const error = result.left as E | DatabaseError
        const committed = reports.reduce((n, r) => n + r.total, 0)
        const done = reports.map((r) => r.table).join(", ")
        const message = error instanceof Error ? error.message : String(error)
        if (reports.length === 0) return yield* Effect.fail(error)
        return yield* new PartialImport({
          completed: committed,
          total,
          reason: `${done} ${options.dryRun ? "would commit" : "committed"}; ${TABLE_NAME[table]} rolled back: ${message}`,
          cause: error
        })
      }
      reports.push({ ...result.right, committed: !options.dryRun })
    }
    return { dry_run: options.dryRun, tables: reports } satisfies ImportReport
  })
  if (!options.dryRun) return yield* run
  return yield* loc.sql.withTransaction(Effect.flatMap(run, (report) => Effect.fail(new DryRunDone(report)))).pipe(
    Effect.catchIf(
      (e): e is DryRunDone => e instanceof DryRunDone,
      (d) => Effect.succeed(d.report)
    ),
    Effect.mapError(sqlToDb("rolling back the dry run"))
  )
})
