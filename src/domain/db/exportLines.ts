/** An export as it travels: its NDJSON lines (header, rows, end), one line decoded, and the checks a received export passes. */
import { Predicate, Schema } from "effect"
import {
  ContextExport,
  type DatabaseExport,
  EXPORT_VERSION,
  type RowOf,
  SkillExport,
  SYNC_TABLES,
  type SyncTable,
  Timestamp,
  UserExport
} from "./tables.js"

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

/**
 * Why a header of another export format cannot be read, naming both versions; undefined for this one. `writer`
 * names who wrote it when that is not this side (`the server sends`).
 */
export const unreadableVersion = (version: unknown, writer?: string): string | undefined =>
  version === EXPORT_VERSION
    ? undefined
    : `${writer === undefined ? "" : `${writer} `}export format version ${JSON.stringify(version)}, this agentsync reads version ${EXPORT_VERSION}: run the same agentsync version on both sides`

/** One NDJSON line decoded, or why not (with the row's id when one can be read); `writer` as for `unreadableVersion`. */
export const decodeExportLine = (
  text: string,
  writer?: string
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
    return {
      ok: false,
      id: undefined,
      table: undefined,
      reason: `not JSON: ${e instanceof Error ? e.message : String(e)}`
    }
  }
  const kind = Predicate.hasProperty(value, "kind") ? value.kind : undefined
  const version = Predicate.hasProperty(value, "version") ? value.version : undefined
  const unreadable = kind === "header" ? unreadableVersion(version, writer) : undefined
  if (unreadable !== undefined) return { ok: false, id: undefined, table: "header", reason: unreadable }
  const decoded = Schema.decodeUnknownEither(ExportLine, { errors: "all", onExcessProperty: "error" })(value)
  if (decoded._tag === "Right") return { ok: true, line: decoded.right }
  const row = Predicate.hasProperty(value, "row") ? value.row : undefined
  const id = Predicate.hasProperty(row, "id") && typeof row.id === "string" ? row.id : undefined
  const table = typeof kind === "string" ? kind : undefined
  return { ok: false, id, table, reason: decoded.left.message.replace(/\s+/g, " ").slice(0, 500) }
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
