/** The tenant server's database sync: each tenant's copy of users/skills/contexts in a schema of its own, exported and imported as NDJSON. */
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as SqlClient from "@effect/sql/SqlClient"
import { Chunk, Config, Effect, Option, Schema, Stream } from "effect"
import type { Caller } from "../../api/common.js"
import { DatabaseInfo, ImportResult, NDJSON } from "../../api/db.js"
import { IDEMPOTENCY_HEADER } from "../../api/index.js"
import { bodyLines, encodeBody } from "../../api/ndjson.js"
import { decodeExportLine, ExportChecker, type ExportProblem } from "../../domain/db/exportLines.js"
import { type RowOf, SYNC_TABLES, type SyncTable } from "../../domain/db/tables.js"
import { ApiError, InvalidInput } from "../../errors.js"
import { oneRow } from "../../services/oneRow.js"
import { countRows, type DbLocation, type ExportSource, tableDigests, tableRows } from "../../stages/db/export.js"
import { importSource } from "../../stages/db/import.js"
import { bothFamilies } from "../families.js"

/**
 * The skills columns of project migrations 0003_content_as_is (the form a skill was read in, its text, its other
 * fields) and 0005_item_mode (its SKILL.md's mode).
 */
const SKILLS_AS_IS = [
  `form text NOT NULL DEFAULT 'folder' CHECK (form IN ('folder', 'file'))`,
  "original text",
  `extra json NOT NULL DEFAULT '{}'`,
  "mode integer NOT NULL DEFAULT 420 CHECK (mode IN (420, 493))"
]

/**
 * The function that gives a tenant its schema (`t_` + 24 hex digits of md5(tenant id)) holding the synced tables
 * with the project's definitions, created on first use under an advisory lock. One schema per tenant keeps the
 * import and export SQL identical to the project database's, and scopes every row by tenant. A migration that
 * changes the synced tables replaces this function (so new tenants get the new shape) and alters the schemas that
 * exist; the function always creates the current shape.
 */
const tenantDatabaseFunction = (create: "CREATE" | "CREATE OR REPLACE") => `
${create} FUNCTION agentsync_tenant_db(tenant text) RETURNS text LANGUAGE plpgsql AS $fn$
DECLARE s text := 't_' || left(md5(tenant), 24);
BEGIN
  IF to_regclass(format('%I.user_contexts', s)) IS NULL THEN
    PERFORM pg_advisory_xact_lock(hashtext(s));
    EXECUTE format($ddl$
      CREATE SCHEMA IF NOT EXISTS %1$I;
      CREATE TABLE IF NOT EXISTS %1$I.users (
        id text PRIMARY KEY, name text NOT NULL UNIQUE, email text NOT NULL UNIQUE, display_name text NOT NULL DEFAULT '',
        roles text[] NOT NULL DEFAULT '{}', created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
      CREATE TABLE IF NOT EXISTS %1$I.user_sessions (
        id text PRIMARY KEY, user_id text NOT NULL REFERENCES %1$I.users(id) ON DELETE CASCADE,
        created_at timestamptz NOT NULL DEFAULT now());
      CREATE TABLE IF NOT EXISTS %1$I.user_contexts (
        id text PRIMARY KEY, user_id text NOT NULL REFERENCES %1$I.users(id) ON DELETE CASCADE,
        session_id text REFERENCES %1$I.user_sessions(id) ON DELETE SET NULL, name text NOT NULL,
        data jsonb NOT NULL DEFAULT '{}', created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
      CREATE TABLE IF NOT EXISTS %1$I.skills (
        id text PRIMARY KEY, name text NOT NULL, description text NOT NULL, enabled boolean NOT NULL, tags text[] NOT NULL,
        category text NOT NULL, assigned_agents text[] NOT NULL, instructions text NOT NULL, version_hash text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
        ${SKILLS_AS_IS.join(", ")});
    $ddl$, s);
  END IF;
  RETURN s;
END
$fn$;
`

/** Server migration: the tenants' synced tables, made on first use. */
export const tenantDatabaseMigration = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe(tenantDatabaseFunction("CREATE"))
})

/**
 * Server migration: tenants' skills carry the columns local sync keeps (form, original, extra; mode since server
 * migration 12, which runs this again), so a skill pushed to the cloud comes back in the form and mode it was read in.
 * Schemas made before get the columns they lack; new ones are made with them. Only the skills tables that lack one
 * are altered: each ALTER holds its table's ACCESS EXCLUSIVE lock to the end of the one transaction, and a lock per
 * tenant, thousands of them, could exhaust the lock table.
 */
export const tenantSkillsAsIsMigration = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe(tenantDatabaseFunction("CREATE OR REPLACE"))
  const names = SKILLS_AS_IS.map((c) => `'${c.slice(0, c.indexOf(" "))}'`)
  yield* sql.unsafe(`
DO $do$
DECLARE s text;
BEGIN
  FOR s IN SELECT n.nspname FROM pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = 'skills' AND c.relkind = 'r'
    WHERE n.nspname ~ '^t_[0-9a-f]{24}$'
      AND (SELECT count(*) FROM pg_attribute a
            WHERE a.attrelid = c.oid AND a.attname IN (${names.join(", ")}) AND NOT a.attisdropped) < ${names.length} LOOP
    EXECUTE format('ALTER TABLE %I.skills ${SKILLS_AS_IS.map((c) => `ADD COLUMN IF NOT EXISTS ${c.replace(/'/g, "''")}`).join(", ")}', s);
  END LOOP;
END
$do$;
`)
})

/** The schema of a tenant's tables, created on first use. */
const tenantSchema = (sql: SqlClient.SqlClient, tenantId: string) =>
  sql.unsafe<{ schema: string }>("SELECT agentsync_tenant_db($1) AS schema", [tenantId]).pipe(
    Effect.flatMap((rows) => oneRow(rows, "agentsync_tenant_db")),
    Effect.map((row) => row.schema),
    Effect.mapError((e) => new ApiError({ status: 500, reason: `tenant database: ${e.message}` }))
  )

const serverError = (e: { readonly message: string }) => new ApiError({ status: 500, reason: e.message })

/** A table as NDJSON: header, rows (or digests), and an end line with the row count. */
const exportBody = (loc: DbLocation, table: SyncTable, digests: boolean): Stream.Stream<Uint8Array, ApiError> =>
  digests
    ? encodeBody(Stream.mapError(tableDigests(loc, table), serverError), ([id, digest]) => ({
        kind: "digest",
        id,
        digest
      }))
    : encodeBody(Stream.mapError(tableRows(loc, table), serverError), (row) => ({ kind: table, row }))

const MAX_LISTED = 50

const describeProblems = (problems: ReadonlyArray<ExportProblem>) => {
  const listed = problems
    .slice(0, MAX_LISTED)
    .map(
      (p) =>
        `${p.line === undefined ? "" : `line ${p.line} `}(${p.table}${p.id === undefined ? "" : ` ${p.id}`}): ${p.reason}`
    )
  const more = problems.length > MAX_LISTED ? `; and ${problems.length - MAX_LISTED} more` : ""
  return `malformed export body, nothing imported: ${listed.join("; ")}${more}`
}

/**
 * Reads and validates a whole import body before anything is written: every line must decode, rows come in
 * foreign-key order with unique ids (and unique user names and emails), and the end line's count must match.
 */
const readBody = (request: HttpServerRequest.HttpServerRequest) =>
  Effect.gen(function* () {
    const rows: { [T in SyncTable]: Array<RowOf[T]> } = { users: [], skills: [], contexts: [] }
    const checker = new ExportChecker()
    const problems: Array<ExportProblem> = checker.problems
    let lineNo = 0
    let header = false
    let end: number | undefined
    let order = 0
    yield* bodyLines(request.stream).pipe(
      Stream.runForEach(([n, text]) =>
        Effect.sync(() => {
          lineNo = n
          if (text.trim() === "") return
          const decoded = decodeExportLine(text)
          if (!decoded.ok) {
            const table = SYNC_TABLES.find((t) => t === decoded.table) ?? "header"
            // A header that does not decode (another format version) is reported as itself, not also as missing.
            if (decoded.table === "header") header = true
            problems.push({ table, id: decoded.id, line: lineNo, reason: decoded.reason })
            return
          }
          const line = decoded.line
          if (line.kind === "header") {
            if (lineNo !== 1)
              problems.push({ table: "header", id: undefined, line: lineNo, reason: "header must be the first line" })
            header = true
            return
          }
          if (line.kind === "end") {
            end = line.rows
            return
          }
          const index = SYNC_TABLES.indexOf(line.kind)
          if (index < order)
            problems.push({
              table: line.kind,
              id: line.row.id,
              line: lineNo,
              reason: "rows must come as users, then skills, then contexts"
            })
          order = Math.max(order, index)
          checker.add(line.kind, line.row, lineNo)
          if (line.kind === "users") rows.users.push(line.row)
          else if (line.kind === "skills") rows.skills.push(line.row)
          else rows.contexts.push(line.row)
        })
      ),
      Effect.mapError((e) => new InvalidInput({ reason: `import body could not be read: ${e.message}` }))
    )
    const count = rows.users.length + rows.skills.length + rows.contexts.length
    if (!header) problems.unshift({ table: "header", id: undefined, line: 1, reason: "missing header line" })
    if (end !== undefined && end !== count)
      problems.push({
        table: "header",
        id: undefined,
        line: lineNo,
        reason: `end line says ${end} rows, body has ${count}`
      })
    if (problems.length > 0) return yield* new InvalidInput({ reason: describeProblems(problems) })
    return rows
  })

/** Rows held in memory as an export source. */
export const memorySource = (
  rows: { readonly [T in SyncTable]: ReadonlyArray<RowOf[T]> },
  batch = 5000
): ExportSource => ({
  counts: Effect.succeed({ users: rows.users.length, skills: rows.skills.length, contexts: rows.contexts.length }),
  rows: (table) => Stream.fromIterable(rows[table]).pipe(Stream.grouped(batch), Stream.map(Chunk.toReadonlyArray))
})

const ops = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const exposed = yield* Config.option(Config.redacted("AGENTSYNC_SERVE_DATABASE_URL")).pipe(
    Effect.orElseSucceed(() => Option.none())
  )
  const location = (caller: Caller) => Effect.map(tenantSchema(sql, caller.tenantId), (schema) => ({ sql, schema }))
  return {
    info: (caller: Caller) =>
      Effect.gen(function* () {
        const loc = yield* location(caller)
        const counts = yield* countRows(loc).pipe(Effect.mapError(serverError))
        return new DatabaseInfo({
          url: Option.getOrNull(exposed),
          schema: loc.schema,
          counts
        })
      }),
    export: (caller: Caller, table: SyncTable, digests: boolean) =>
      Effect.map(location(caller), (loc) =>
        HttpServerResponse.stream(exportBody(loc, table, digests), { contentType: NDJSON })
      ),
    import: (caller: Caller, request: HttpServerRequest.HttpServerRequest, dryRun: boolean) =>
      Effect.gen(function* () {
        const rows = yield* readBody(request)
        // A retry of an import that committed (its answer lost) gets that import's result; nothing runs twice.
        const key = dryRun ? undefined : request.headers[IDEMPOTENCY_HEADER]?.slice(0, 200) || undefined
        if (key !== undefined) {
          const [done] = yield* sql<{ result: unknown }>`
            SELECT result FROM database_imports WHERE tenant_id = ${caller.tenantId} AND idempotency_key = ${key}`.pipe(
            Effect.mapError(serverError)
          )
          if (done !== undefined) return yield* decodeResult(done.result)
        }
        const loc = yield* location(caller)
        // A PartialImport is sent as itself (its cause stays here); any other database failure is a 500.
        const report = yield* importSource(loc, memorySource(rows), { dryRun }).pipe(
          Effect.catchTag("DatabaseError", (e) => Effect.fail(serverError(e)))
        )
        const result = new ImportResult(report)
        if (key !== undefined) {
          yield* sql`INSERT INTO database_imports (tenant_id, idempotency_key, result)
            VALUES (${caller.tenantId}, ${key}, ${JSON.stringify(report)}::jsonb) ON CONFLICT DO NOTHING`.pipe(
            Effect.mapError(serverError)
          )
        }
        return result
      })
  }
})

// Built once, not per request.
const decodeStoredText = Schema.decodeUnknown(Schema.parseJson(ImportResult))
const decodeStored = Schema.decodeUnknown(ImportResult)

const decodeResult = (stored: unknown) =>
  (typeof stored === "string" ? decodeStoredText(stored) : decodeStored(stored)).pipe(
    Effect.mapError((e) => serverError({ message: `stored import result: ${e.message}` }))
  )

const dryRunOf = (params: { readonly dry_run?: "true" | "false" | undefined }) => params.dry_run === "true"

/** The database handlers, once for both URL families. */
export const DatabaseLive = bothFamilies({ sync: "database", cloud: "cloudDatabase" }, (handlers, callerOf) =>
  Effect.map(ops, (o) =>
    handlers
      .handle("info", (r) => Effect.flatMap(callerOf(r), o.info))
      .handleRaw("export", (r) =>
        Effect.flatMap(callerOf(r), (c) => o.export(c, r.urlParams.table, r.urlParams.digests === "true"))
      )
      .handleRaw("import", (r) => Effect.flatMap(callerOf(r), (c) => o.import(c, r.request, dryRunOf(r.urlParams))))
  )
)
