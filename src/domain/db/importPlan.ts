/** The import planner: which rows an import inserts, updates, leaves or skips and why, the target it leaves, and the counts import, diff and dry run report. */
import {
  type ContextExport,
  type DatabaseExport,
  type SkillExport,
  type SyncTable,
  sameRow,
  type UserExport
} from "./tables.js"

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
