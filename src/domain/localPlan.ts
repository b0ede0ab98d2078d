/** The plan of a local sync as data: per kind, the database and disk operations that make one side equal the other. Pure. */

import { planAcl } from "./localPlan/acl.js"
import { planContent } from "./localPlan/content.js"
import { planAgents, planSkills } from "./localPlan/items.js"
import { ALL_KINDS, type KindPlan, type PlanOptions } from "./localPlan/ops.js"
import type { DbSide, DiskSide } from "./localSides.js"
import type { SyncKind } from "./model.js"

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

/** The whole plan of a run: per kind, what changes where. */
export const plan = (
  o: PlanOptions,
  disk: DiskSide,
  db: DbSide,
  kinds: ReadonlyArray<SyncKind>
): ReadonlyArray<KindPlan> => ALL_KINDS.filter((k) => kinds.includes(k)).map((kind) => PLANNERS[kind](o, disk, db))
