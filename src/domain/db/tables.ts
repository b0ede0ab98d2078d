/** The database export (users, skills, contexts) as Schema models, and the pure import planner and row diff. */
import { Schema } from "effect"
import { canonicalJson, sha256 } from "../hash.js"
import { Json, JsonKey } from "../model.js"
import {
  type Column,
  column,
  fieldsOf,
  sameInstant,
  sameRowOf,
  storable,
  type TableSpec,
  timestampMicros
} from "./columns.js"

/** The export format's version; an import refuses any other (2: skills carry `form`, `original` and `extra`). */
export const EXPORT_VERSION = 2 as const

/** Text Postgres can store: no NUL character, no lone surrogate (which would not survive UTF-8). */
export const DbText = Schema.String.pipe(
  Schema.filter(storable, {
    message: () => "must not contain NUL or unpaired surrogates"
  }),
  Schema.annotations({ identifier: "DbText" })
)

/** A primary key: non-empty text of at most 256 characters. */
export const RowId = DbText.pipe(
  Schema.minLength(1),
  Schema.maxLength(256),
  Schema.annotations({ identifier: "RowId" })
)

export { sameInstant }

/** The canonical rendering: UTC, six fractional digits, as the export stage selects it from Postgres. */
export const canonicalTimestamp = (s: string): string => {
  const us = timestampMicros(s)
  if (us === undefined) throw new RangeError(`not a timestamp: ${s}`)
  const ms = Number(us / 1000n)
  const frac = (us % 1_000_000n).toString().padStart(6, "0")
  return `${new Date(ms).toISOString().slice(0, 19)}.${frac}Z`
}

/** An ISO-8601 date-time with an offset, up to microseconds (Postgres' precision), years 1000–9999. */
export const Timestamp = Schema.String.pipe(
  Schema.filter(
    (s) => {
      const us = timestampMicros(s)
      return us !== undefined && s >= "1000" && s < "9999-12-31"
    },
    { message: () => "must be an ISO-8601 date-time with an offset, e.g. 2025-03-01T10:00:00.000000Z" }
  ),
  Schema.annotations({
    identifier: "Timestamp",
    arbitrary: () => (fc) =>
      fc
        .tuple(fc.integer({ min: 946_684_800, max: 4_102_444_799 }), fc.integer({ min: 0, max: 999_999 }))
        .map(([s, us]) => `${new Date(s * 1000).toISOString().slice(0, 19)}.${String(us).padStart(6, "0")}Z`)
  })
)

const DbJson: Schema.Schema<Json> = Json.pipe(
  Schema.filter(
    (j) => {
      const text = canonicalJson(j)
      return !text.includes("\\u0000") && storable(text)
    },
    {
      message: () => "must not contain NUL characters"
    }
  )
)

const Texts = Schema.Array(DbText)

/** A skill's fields beyond the known ones, in written order (a `json` column, not `jsonb`, so the order survives). */
const DbJsonObject = Schema.Record({ key: DbText.pipe(Schema.filter(Schema.is(JsonKey))), value: DbJson })

const table = <C extends Record<string, Column>>(name: string, columns: C): TableSpec<C> => ({ name, columns })

/** The synced tables, described once: every column list, cast, COPY and digest statement and row comparison derives from this. */
export const TABLES = {
  users: table("users", {
    id: column("text", RowId),
    name: column("text", DbText),
    email: column("text", DbText),
    display_name: column("text", DbText),
    roles: column("text[]", Texts),
    created_at: column("timestamptz", Timestamp),
    updated_at: column("timestamptz", Timestamp)
  }),
  skills: table("skills", {
    id: column("text", RowId),
    name: column("text", DbText),
    description: column("text", DbText),
    enabled: column("boolean", Schema.Boolean),
    tags: column("text[]", Texts),
    category: column("text", DbText),
    assigned_agents: column("text[]", Texts),
    instructions: column("text", DbText),
    /** How local sync lays the skill out on disk: `folder` (config.yaml + SKILL.md) or `file` (an Agent Skills SKILL.md). */
    form: column("text", Schema.Literal("folder", "file")),
    /** The text it was read from (config.yaml, or the SKILL.md front matter), so it is written back byte for byte. */
    original: column("text", Schema.NullOr(DbText)),
    extra: column("json", DbJsonObject),
    version_hash: column("text", DbText),
    created_at: column("timestamptz", Timestamp),
    updated_at: column("timestamptz", Timestamp)
  }),
  contexts: table("user_contexts", {
    id: column("text", RowId),
    user_id: column("text", RowId),
    session_id: column("text", Schema.NullOr(RowId)),
    name: column("text", DbText),
    data: column("jsonb", DbJson),
    created_at: column("timestamptz", Timestamp),
    updated_at: column("timestamptz", Timestamp)
  })
}

export const UserExport = Schema.Struct(fieldsOf(TABLES.users.columns)).annotations({ identifier: "UserExport" })
export type UserExport = typeof UserExport.Type

export const SkillExport = Schema.Struct(fieldsOf(TABLES.skills.columns)).annotations({ identifier: "SkillExport" })
export type SkillExport = typeof SkillExport.Type

export const ContextExport = Schema.Struct(fieldsOf(TABLES.contexts.columns)).annotations({
  identifier: "ContextExport"
})
export type ContextExport = typeof ContextExport.Type

/** A whole export held in memory (library use, small exports); the transports stream the same rows instead. */
export const DatabaseExport = Schema.Struct({
  version: Schema.Literal(EXPORT_VERSION),
  exported_at: Timestamp,
  users: Schema.Array(UserExport),
  skills: Schema.Array(SkillExport),
  contexts: Schema.Array(ContextExport)
}).annotations({ identifier: "DatabaseExport" })
export type DatabaseExport = typeof DatabaseExport.Type

/** The synced tables, in foreign-key order (the order of export and import). */
export const SYNC_TABLES = ["users", "skills", "contexts"] as const
export type SyncTable = (typeof SYNC_TABLES)[number]

/** The Postgres table behind each synced table. */
export const TABLE_NAME: Record<SyncTable, string> = {
  users: TABLES.users.name,
  skills: TABLES.skills.name,
  contexts: TABLES.contexts.name
}

export interface RowOf {
  readonly users: UserExport
  readonly skills: SkillExport
  readonly contexts: ContextExport
}
export type AnyRow = RowOf[SyncTable]

/**
 * One line of the streamed (NDJSON) form: a header first, then rows grouped by table in foreign-key order.
 * The header carries the row counts so a receiver can report progress and check completeness.
 */
export const ExportHeader = Schema.Struct({
  kind: Schema.Literal("header"),
  version: Schema.Literal(EXPORT_VERSION),
  exported_at: Timestamp,
  counts: Schema.optional(
    Schema.Struct({ users: Schema.NonNegativeInt, skills: Schema.NonNegativeInt, contexts: Schema.NonNegativeInt })
  )
})
export type ExportHeader = typeof ExportHeader.Type
/** The last line of a streamed table or body: how many rows came, so a truncated stream is never taken as complete. */
export const ExportEnd = Schema.Struct({ kind: Schema.Literal("end"), rows: Schema.NonNegativeInt })
export const ExportLine = Schema.Union(
  ExportHeader,
  ExportEnd,
  Schema.Struct({ kind: Schema.Literal("users"), row: UserExport }),
  Schema.Struct({ kind: Schema.Literal("skills"), row: SkillExport }),
  Schema.Struct({ kind: Schema.Literal("contexts"), row: ContextExport })
)
export type ExportLine = typeof ExportLine.Type

/** One NDJSON line decoded, or why not (with the row's id when one can be read). */
export const decodeExportLine = (
  text: string
):
  | { readonly ok: true; readonly line: ExportLine }
  | {
      readonly ok: false
      readonly id: string | undefined
      readonly table: string | undefined
      readonly reason: string
    } => {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (e) {
    return { ok: false, id: undefined, table: undefined, reason: `not JSON: ${(e as Error).message}` }
  }
  const header = value as { kind?: unknown; version?: unknown } | null
  if (header?.kind === "header" && header.version !== EXPORT_VERSION) {
    const given = JSON.stringify(header.version)
    return {
      ok: false,
      id: undefined,
      table: "header",
      reason: `export format version ${given}, this agentsync reads version ${EXPORT_VERSION}: run the same agentsync version on both sides`
    }
  }
  const decoded = Schema.decodeUnknownEither(ExportLine, { errors: "all", onExcessProperty: "error" })(value)
  if (decoded._tag === "Right") return { ok: true, line: decoded.right }
  const v = value as { kind?: unknown; row?: { id?: unknown } } | null
  const id = typeof v?.row?.id === "string" ? v.row.id : undefined
  const table = typeof v?.kind === "string" ? v.kind : undefined
  return { ok: false, id, table, reason: decoded.left.message.replace(/\s+/g, " ").slice(0, 500) }
}

// ---------------------------------------------------------------------------------------------------------------
// Row comparison: every column but created_at (which an import never overwrites), timestamps by instant.

/** The columns an import would write, equal on both sides (created_at excluded). */
export const sameRow = {
  users: sameRowOf(TABLES.users),
  skills: sameRowOf(TABLES.skills),
  contexts: sameRowOf(TABLES.contexts)
} as const

/** A digest of the compared columns, equal exactly when `sameRow` holds (the diff's merge join compares these). */
export const rowDigest = <T extends SyncTable>(table: T, row: RowOf[T]): string => {
  const { created_at: _created, ...rest } = row as AnyRow
  const fields: Record<string, unknown> = { ...rest, updated_at: canonicalTimestamp(row.updated_at) }
  return sha256(`${table}\n${canonicalJson(fields)}`)
}

// ---------------------------------------------------------------------------------------------------------------
// The import planner.

export type RowAction = "insert" | "update" | "unchanged" | "skip"

export interface Skip {
  readonly id: string
  readonly reason: string
}

export interface TablePlan {
  readonly inserted: ReadonlyArray<string>
  readonly updated: ReadonlyArray<string>
  readonly unchanged: ReadonlyArray<string>
  readonly skipped: ReadonlyArray<Skip>
  /** Contexts kept with their session cleared because the session does not exist on the target. */
  readonly sessionCleared: ReadonlyArray<string>
}

export interface ImportPlan {
  readonly users: TablePlan
  readonly skills: TablePlan
  readonly contexts: TablePlan
}

/** What the target database holds before an import. */
export interface TargetState {
  readonly users: ReadonlyArray<UserExport>
  readonly skills: ReadonlyArray<SkillExport>
  readonly contexts: ReadonlyArray<ContextExport>
  readonly sessionIds: ReadonlyArray<string>
}

export const emptyTarget: TargetState = { users: [], skills: [], contexts: [], sessionIds: [] }

export const skipReason = {
  nameTaken: (owner: string) => `name belongs to user ${owner}`,
  emailTaken: (owner: string) => `email belongs to user ${owner}`,
  userMissing: (user: string) => `user ${user} does not exist`
} as const

interface MutablePlan {
  inserted: Array<string>
  updated: Array<string>
  unchanged: Array<string>
  skipped: Array<Skip>
  sessionCleared: Array<string>
}
const emptyPlan = (): MutablePlan => ({ inserted: [], updated: [], unchanged: [], skipped: [], sessionCleared: [] })

const byId = <A extends { readonly id: string }>(rows: ReadonlyArray<A>) => new Map(rows.map((r) => [r.id, r]))

const upsertAction = <A extends { readonly id: string }>(
  existing: A | undefined,
  row: A,
  same: (a: A, b: A) => boolean
): RowAction => (existing === undefined ? "insert" : same(existing, row) ? "unchanged" : "update")

const record = (plan: MutablePlan, action: RowAction, id: string) => {
  if (action === "insert") plan.inserted.push(id)
  else if (action === "update") plan.updated.push(id)
  else if (action === "unchanged") plan.unchanged.push(id)
}

/** The session a context keeps on the target: its own when the target has it, else none. */
export const effectiveSession = (row: ContextExport, sessions: ReadonlySet<string>): ContextExport =>
  row.session_id === null || sessions.has(row.session_id) ? row : { ...row, session_id: null }

/**
 * Which rows of `source` an import into `target` inserts, updates, leaves unchanged or skips, and why. The
 * rules are decided against the target as it stands before the import (the import stage runs the same rules
 * in SQL): upsert on the primary key; a user whose name or email belongs to another id on the target is
 * skipped, never merged; a context whose user neither exists nor is being imported is skipped; a context whose
 * session does not exist on the target keeps its row with the session cleared. A name or email the import
 * itself frees (a rename) is taken only by a later run, so the outcome never depends on row order or on how
 * the rows are chunked, and reruns converge. Rows are expected to have unique ids, names and emails per table
 * (`exportProblems` reports where they do not).
 */
export const planImport = (
  target: TargetState,
  source: Pick<DatabaseExport, "users" | "skills" | "contexts">
): ImportPlan => {
  const users = emptyPlan()
  const targetUsers = byId(target.users)
  const nameOwner = new Map(target.users.map((u) => [u.name, u.id]))
  const emailOwner = new Map(target.users.map((u) => [u.email, u.id]))
  const userIds = new Set(targetUsers.keys())
  for (const row of source.users) {
    const byName = nameOwner.get(row.name)
    const byEmail = emailOwner.get(row.email)
    if (byName !== undefined && byName !== row.id)
      users.skipped.push({ id: row.id, reason: skipReason.nameTaken(byName) })
    else if (byEmail !== undefined && byEmail !== row.id)
      users.skipped.push({ id: row.id, reason: skipReason.emailTaken(byEmail) })
    else {
      record(users, upsertAction(targetUsers.get(row.id), row, sameRow.users), row.id)
      userIds.add(row.id)
    }
  }
  const skills = emptyPlan()
  const targetSkills = byId(target.skills)
  for (const row of source.skills) record(skills, upsertAction(targetSkills.get(row.id), row, sameRow.skills), row.id)
  const contexts = emptyPlan()
  const targetContexts = byId(target.contexts)
  const sessions = new Set(target.sessionIds)
  for (const incoming of source.contexts) {
    if (!userIds.has(incoming.user_id)) {
      contexts.skipped.push({ id: incoming.id, reason: skipReason.userMissing(incoming.user_id) })
      continue
    }
    const row = effectiveSession(incoming, sessions)
    if (row !== incoming) contexts.sessionCleared.push(row.id)
    record(contexts, upsertAction(targetContexts.get(row.id), row, sameRow.contexts), row.id)
  }
  return { users, skills, contexts }
}

/** The target after an import of `source` that follows `plan`: what a real run must leave behind. */
export const applyImport = (
  target: TargetState,
  source: Pick<DatabaseExport, "users" | "skills" | "contexts">,
  plan: ImportPlan
): TargetState => {
  const merge = <A extends { readonly id: string; readonly created_at: string }>(
    existing: ReadonlyArray<A>,
    rows: ReadonlyArray<A>,
    write: TablePlan,
    adjust: (a: A) => A = (a) => a
  ): Array<A> => {
    const out = byId(existing)
    const writes = new Set([...write.inserted, ...write.updated])
    for (const row of rows) {
      if (!writes.has(row.id)) continue
      const before = out.get(row.id)
      const next = adjust(row)
      out.set(row.id, before === undefined ? next : { ...next, created_at: before.created_at })
    }
    return [...out.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }
  const sessions = new Set(target.sessionIds)
  return {
    users: merge(target.users, source.users, plan.users),
    skills: merge(target.skills, source.skills, plan.skills),
    contexts: merge(target.contexts, source.contexts, plan.contexts, (c) => effectiveSession(c, sessions)),
    sessionIds: target.sessionIds
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Validation of an export received from elsewhere (the API import body).

export interface ExportProblem {
  readonly table: SyncTable | "header"
  readonly id: string | undefined
  readonly line: number | undefined
  readonly reason: string
}

/** Duplicate ids per table and duplicate user names or emails: an export from a database never has them. */
export class ExportChecker {
  private readonly ids: Record<SyncTable, Set<string>> = { users: new Set(), skills: new Set(), contexts: new Set() }
  private readonly names = new Map<string, string>()
  private readonly emails = new Map<string, string>()
  readonly problems: Array<ExportProblem> = []

  add<T extends SyncTable>(table: T, row: RowOf[T], line?: number): void {
    const at = line === undefined ? {} : { line }
    const seen = this.ids[table]
    if (seen.has(row.id)) this.problems.push({ table, id: row.id, line: at.line, reason: `duplicate ${table} id` })
    seen.add(row.id)
    if (table === "users") {
      const u = row as UserExport
      const n = this.names.get(u.name)
      if (n !== undefined && n !== u.id)
        this.problems.push({ table, id: u.id, line: at.line, reason: `name also used by user ${n}` })
      else this.names.set(u.name, u.id)
      const e = this.emails.get(u.email)
      if (e !== undefined && e !== u.id)
        this.problems.push({ table, id: u.id, line: at.line, reason: `email also used by user ${e}` })
      else this.emails.set(u.email, u.id)
    }
  }
}

/** Every problem of an in-memory export. */
export const exportProblems = (
  source: Pick<DatabaseExport, "users" | "skills" | "contexts">
): ReadonlyArray<ExportProblem> => {
  const checker = new ExportChecker()
  for (const table of SYNC_TABLES) for (const row of source[table]) checker.add(table, row)
  return checker.problems
}

// ---------------------------------------------------------------------------------------------------------------
// Counts reported by import, diff and dry run.

export interface TableImportReport {
  readonly table: SyncTable
  readonly total: number
  readonly inserted: number
  readonly updated: number
  readonly unchanged: number
  readonly skipped: number
  /** The first skipped rows with their reasons (capped; `skipped` is the full count). */
  readonly skips: ReadonlyArray<Skip>
  readonly session_cleared: number
  readonly committed: boolean
}

export interface TableDiffCounts {
  readonly table: SyncTable
  readonly only_local: number
  readonly only_remote: number
  readonly different: number
  readonly equal: number
}

/** Counts of a plan, as the import stage reports them. */
export const planCounts = (plan: TablePlan) => ({
  inserted: plan.inserted.length,
  updated: plan.updated.length,
  unchanged: plan.unchanged.length,
  skipped: plan.skipped.length,
  session_cleared: plan.sessionCleared.length
})

/** Code-point order of ids, the order both sides stream rows in (`ORDER BY id COLLATE "C"`). */
export const compareIds = (a: string, b: string): number => {
  if (a === b) return 0
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; ) {
    const x = a.codePointAt(i)!
    const y = b.codePointAt(i)!
    if (x !== y) return x < y ? -1 : 1
    i += x > 0xffff ? 2 : 1
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0
}
