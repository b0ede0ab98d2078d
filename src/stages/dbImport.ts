/** Writing the synced tables into a Postgres database: chunked set-based upserts, one transaction per table. */
import { pipeline } from "node:stream/promises"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { Effect, Option, Stream } from "effect"
import { from as copyFrom } from "pg-copy-streams"
import {
  type ContextExport,
  type RowOf,
  type SkillExport,
  type Skip,
  SYNC_TABLES,
  type SyncTable,
  TABLE_NAME,
  type TableImportReport,
  type UserExport
} from "../domain/dbExport.js"
import { DatabaseError, PartialImport } from "../errors.js"
import {
  COPY_COLUMNS,
  checkSchema,
  type DbLocation,
  dbError,
  type ExportSource,
  qualified,
  rawClient
} from "./dbExport.js"

export interface ImportOptions {
  readonly dryRun: boolean
  /** Rows per statement. Each column travels as one array parameter, so the 65,535-parameter cap never applies. */
  readonly chunkSize?: number
  /** How many skipped rows to list per table (the count is always complete). */
  readonly maxSkips?: number
  /** Use COPY when the source offers it (default true); false forces the chunked path. */
  readonly bulk?: boolean
}

export interface ImportReport {
  readonly dry_run: boolean
  readonly tables: ReadonlyArray<TableImportReport>
}

/** A Postgres array literal for a text array, so that an array of arrays travels as one text[] parameter. */
export const pgTextArray = (items: ReadonlyArray<string>): string =>
  `{${items.map((s) => `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`).join(",")}}`

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
  return {
    users: `WITH src AS (${src.users}), plan AS (
  SELECT s.id, s.name, s.email, s.display_name, s.roles::text[] AS roles, s.created_at, s.updated_at,
    (SELECT o.id FROM ${nameOwners} o WHERE o.name = s.name AND o.id <> s.id LIMIT 1) AS name_owner,
    (SELECT o.id FROM ${nameOwners} o WHERE o.email = s.email AND o.id <> s.id LIMIT 1) AS email_owner,
    x.id IS NOT NULL AS present,
    (x.name, x.email, x.display_name, x.roles, x.updated_at) IS DISTINCT FROM (s.name, s.email, s.display_name, s.roles::text[], s.updated_at) AS changed
  FROM src s LEFT JOIN ${users} x ON x.id = s.id
), act AS (
  SELECT *, CASE WHEN name_owner IS NOT NULL OR email_owner IS NOT NULL THEN 'skip'
                 WHEN NOT present THEN 'insert' WHEN changed THEN 'update' ELSE 'unchanged' END AS action
  FROM plan
), written AS (
  INSERT INTO ${users} AS t (id, name, email, display_name, roles, created_at, updated_at)
  SELECT id, name, email, display_name, roles, created_at, updated_at FROM act WHERE action IN ('insert', 'update')
  ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, email = EXCLUDED.email, display_name = EXCLUDED.display_name,
    roles = EXCLUDED.roles, updated_at = EXCLUDED.updated_at
  RETURNING 1
)
SELECT ${COUNTS}, 0 AS session_cleared, (SELECT count(*) FROM written)::int AS written,
  (SELECT coalesce(json_agg(k), '[]') FROM (
    SELECT id, CASE WHEN name_owner IS NOT NULL THEN 'name belongs to user ' || name_owner ELSE 'email belongs to user ' || email_owner END AS reason
      FROM act WHERE action = 'skip' ORDER BY id LIMIT ${maxSkips}) k) AS skips
FROM act`,
    // `extra` is json (its text, key order included, is what is written); it is compared as jsonb, like contexts' data.
    skills: `WITH src AS (${src.skills}), act AS (
  SELECT s.id, s.name, s.description, s.enabled, s.tags::text[] AS tags, s.category, s.assigned_agents::text[] AS assigned_agents,
    s.instructions, s.form, s.original, s.extra::json AS extra, s.version_hash, s.created_at, s.updated_at,
    CASE WHEN x.id IS NULL THEN 'insert'
         WHEN (x.name, x.description, x.enabled, x.tags, x.category, x.assigned_agents, x.instructions, x.form, x.original, x.extra::jsonb,
               x.version_hash, x.updated_at)
              IS DISTINCT FROM (s.name, s.description, s.enabled, s.tags::text[], s.category, s.assigned_agents::text[], s.instructions, s.form,
               s.original, s.extra::jsonb, s.version_hash, s.updated_at)
           THEN 'update' ELSE 'unchanged' END AS action
  FROM src s LEFT JOIN ${skills} x ON x.id = s.id
), written AS (
  INSERT INTO ${skills} AS t (id, name, description, enabled, tags, category, assigned_agents, instructions, form, original, extra, version_hash,
    created_at, updated_at)
  SELECT id, name, description, enabled, tags, category, assigned_agents, instructions, form, original, extra, version_hash, created_at, updated_at
    FROM act WHERE action IN ('insert', 'update')
  ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, description = EXCLUDED.description, enabled = EXCLUDED.enabled,
    tags = EXCLUDED.tags, category = EXCLUDED.category, assigned_agents = EXCLUDED.assigned_agents,
    instructions = EXCLUDED.instructions, form = EXCLUDED.form, original = EXCLUDED.original, extra = EXCLUDED.extra,
    version_hash = EXCLUDED.version_hash, updated_at = EXCLUDED.updated_at
  RETURNING 1
)
SELECT ${COUNTS}, 0 AS session_cleared, (SELECT count(*) FROM written)::int AS written, '[]'::json AS skips FROM act`,
    contexts: `WITH src AS (${src.contexts}), plan AS (
  SELECT s.id, s.user_id, s.name, s.data::jsonb AS data, s.created_at, s.updated_at,
    EXISTS (SELECT 1 FROM ${users} u WHERE u.id = s.user_id) AS user_ok,
    s.session_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ${sessions} ss WHERE ss.id = s.session_id) AS session_cleared,
    s.session_id AS given_session,
    x.id IS NOT NULL AS present, x.user_id AS x_user_id, x.session_id AS x_session_id, x.name AS x_name, x.data AS x_data,
    x.updated_at AS x_updated_at
  FROM src s LEFT JOIN ${contexts} x ON x.id = s.id
), eff AS (
  SELECT *, CASE WHEN session_cleared THEN NULL ELSE given_session END AS session_id FROM plan
), act AS (
  SELECT *, CASE WHEN NOT user_ok THEN 'skip' WHEN NOT present THEN 'insert'
                 WHEN (x_user_id, x_session_id, x_name, x_data, x_updated_at) IS DISTINCT FROM (user_id, session_id, name, data, updated_at)
                   THEN 'update' ELSE 'unchanged' END AS action
  FROM eff
), written AS (
  INSERT INTO ${contexts} AS t (id, user_id, session_id, name, data, created_at, updated_at)
  SELECT id, user_id, session_id, name, data, created_at, updated_at FROM act WHERE action IN ('insert', 'update')
  ON CONFLICT (id) DO UPDATE SET user_id = EXCLUDED.user_id, session_id = EXCLUDED.session_id, name = EXCLUDED.name,
    data = EXCLUDED.data, updated_at = EXCLUDED.updated_at
  RETURNING 1
)
SELECT ${COUNTS}, (count(*) FILTER (WHERE action <> 'skip' AND session_cleared))::int AS session_cleared,
  (SELECT count(*) FROM written)::int AS written,
  (SELECT coalesce(json_agg(k), '[]') FROM (
    SELECT id, 'user ' || user_id || ' does not exist' AS reason FROM act WHERE action = 'skip' ORDER BY id LIMIT ${maxSkips}) k) AS skips
FROM act`
  }
}

/** Rows of a chunk: each column one array parameter. */
const CHUNK_SOURCE: Record<SyncTable, string> = {
  users: `SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[])
    AS s(id, name, email, display_name, roles, created_at, updated_at)`,
  skills: `SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::boolean[], $5::text[], $6::text[], $7::text[], $8::text[],
                       $9::text[], $10::text[], $11::text[], $12::text[], $13::timestamptz[], $14::timestamptz[])
    AS s(id, name, description, enabled, tags, category, assigned_agents, instructions, form, original, extra, version_hash, created_at, updated_at)`,
  contexts: `SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[])
    AS s(id, user_id, session_id, name, data, created_at, updated_at)`
}

/** The bulk path's staging tables: the columns of COPY_COLUMNS with their types, dropped with the transaction. */
const STAGING_COLUMNS: Record<SyncTable, string> = {
  users:
    "id text, name text, email text, display_name text, roles text[], created_at timestamptz, updated_at timestamptz",
  skills:
    "id text, name text, description text, enabled boolean, tags text[], category text, assigned_agents text[], instructions text, form text, original text, extra json, version_hash text, created_at timestamptz, updated_at timestamptz",
  contexts:
    "id text, user_id text, session_id text, name text, data jsonb, created_at timestamptz, updated_at timestamptz"
}
const staging = (table: SyncTable) => `agentsync_import_${table}`
/** The users' names and emails as they were before the import, for the chunked path (dropped with the transaction). */
const OWNERS = "pg_temp.agentsync_import_owners"
const STAGED_SOURCE: Record<SyncTable, string> = {
  users: `SELECT * FROM pg_temp.${staging("users")}`,
  skills: `SELECT * FROM pg_temp.${staging("skills")}`,
  contexts: `SELECT * FROM pg_temp.${staging("contexts")}`
}

/** The column arrays of a chunk, in the order of the statement's parameters. */
const columns: { readonly [T in SyncTable]: (rows: ReadonlyArray<RowOf[T]>) => ReadonlyArray<ReadonlyArray<unknown>> } =
  {
    users: (rows: ReadonlyArray<UserExport>) => [
      rows.map((r) => r.id),
      rows.map((r) => r.name),
      rows.map((r) => r.email),
      rows.map((r) => r.display_name),
      rows.map((r) => pgTextArray(r.roles)),
      rows.map((r) => r.created_at),
      rows.map((r) => r.updated_at)
    ],
    skills: (rows: ReadonlyArray<SkillExport>) => [
      rows.map((r) => r.id),
      rows.map((r) => r.name),
      rows.map((r) => r.description),
      rows.map((r) => r.enabled),
      rows.map((r) => pgTextArray(r.tags)),
      rows.map((r) => r.category),
      rows.map((r) => pgTextArray(r.assigned_agents)),
      rows.map((r) => r.instructions),
      rows.map((r) => r.form),
      rows.map((r) => r.original),
      rows.map((r) => JSON.stringify(r.extra)),
      rows.map((r) => r.version_hash),
      rows.map((r) => r.created_at),
      rows.map((r) => r.updated_at)
    ],
    contexts: (rows: ReadonlyArray<ContextExport>) => [
      rows.map((r) => r.id),
      rows.map((r) => r.user_id),
      rows.map((r) => r.session_id),
      rows.map((r) => r.name),
      rows.map((r) => JSON.stringify(r.data)),
      rows.map((r) => r.created_at),
      rows.map((r) => r.updated_at)
    ]
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
      loc.sql.unsafe<ChunkResult>(text, columns[table]([...chunk] as never) as Array<unknown>).pipe(
        Effect.mapError(dbError(what)),
        Effect.map(([r]) => addChunk(acc, r!, maxSkips))
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
      .unsafe(`CREATE TEMP TABLE ${staging(table)} (${STAGING_COLUMNS[table]}) ON COMMIT DROP`)
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
    const [r] = yield* loc.sql
      .unsafe<ChunkResult>(statements(loc, STAGED_SOURCE, maxSkips)[table])
      .pipe(Effect.mapError(dbError(what)))
    return addChunk(emptyReport(table, total), r!, maxSkips)
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
      const result = yield* loc.sql.withTransaction(importTable(loc, table, source, counts[table], options)).pipe(
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
