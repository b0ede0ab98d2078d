/** The plan of a local sync as data: per kind, the database and disk operations that make one side equal the other. Pure. */

import { planAcl } from "./localPlan/acl.js"
import { planContent } from "./localPlan/content.js"
import { planAgents, planSkills } from "./localPlan/items.js"
import { ALL_KINDS, type KindPlan, type PlanOptions } from "./localPlan/ops.js"
import type { DbSide, DiskSide } from "./localSides.js"
import { LocalSyncError, LocalSyncResult, type SyncKind } from "./model.js"

export { diffRules } from "./localPlan/acl.js"
export {
  ALL_KINDS,
  type ContentWrite,
  type DbOp,
  type DiskOp,
  type KindPlan,
  type PlacedRule,
  type PlanOptions,
  type PlanStep
} from "./localPlan/ops.js"

const PLANNERS: Record<SyncKind, (o: PlanOptions, disk: DiskSide, db: DbSide) => KindPlan> = {
  agents: planAgents,
  skills: planSkills,
  content: planContent,
  acl: planAcl
}

/** The keys of a kind the database holds, as a plan keys them (files beside items as `file:<path>`). */
const dbKeys = (db: DbSide, kind: SyncKind): ReadonlySet<string> => {
  const files = db.attachments.filter((r) => r.kind === kind).map((r) => `file:${r.path}`)
  switch (kind) {
    case "agents":
      return new Set([...db.agents.items.map((s) => s.item.id), ...files])
    case "skills":
      return new Set([...db.skills.items.map((s) => s.item.id), ...files])
    case "content":
      return new Set([...db.contents.map((r) => r.key), ...db.storedPages.map((p) => p.key), ...files])
    case "acl":
      return new Set(db.rules.items.length > 0 ? ["*"] : [])
  }
}

/**
 * A sync to disk of an item the database holds where the tree has a special file: refused for that item, named
 * (the item is blocked, so the plan writes nothing there; an atomic write would replace the FIFO with a file).
 */
const refuseSpecial = (o: PlanOptions, disk: DiskSide, db: DbSide, p: KindPlan): KindPlan => {
  if (o.direction !== "ToDisk" || disk.special[p.kind].size === 0) return p
  const held = dbKeys(db, p.kind)
  const errors = [...disk.special[p.kind]]
    .filter(([key]) => held.has(key))
    .map(
      ([key, at]) =>
        new LocalSyncError({
          item: at.file,
          message: `${at.file} is ${at.what}: local sync writes only regular files; ${p.kind} ${key} was not written, and it stays as it is`
        })
    )
  return errors.length === 0
    ? p
    : { ...p, result: new LocalSyncResult({ ...p.result, errors: [...p.result.errors, ...errors] }) }
}

/** The whole plan of a run: per kind, what changes where. */
export const plan = (
  o: PlanOptions,
  disk: DiskSide,
  db: DbSide,
  kinds: ReadonlyArray<SyncKind>
): ReadonlyArray<KindPlan> =>
  ALL_KINDS.filter((k) => kinds.includes(k)).map((kind) => refuseSpecial(o, disk, db, PLANNERS[kind](o, disk, db)))
