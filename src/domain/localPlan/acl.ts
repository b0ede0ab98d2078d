/** The access-rule part of a local-sync plan: role rules, replaced per entity the source side names. */
import { AccessRuleKeyed, diffKeyed, type Keyed } from "../diff.js"
import { ACCESS_RULES_PATH, renderAccessRules } from "../formats.js"
import { accessRuleHash } from "../hash.js"
import type { DbSide, DiskSide } from "../localSides.js"
import type { AccessRule } from "../model.js"
import { Builder, invalidRowErrors, storable } from "./builder.js"
import type { KindPlan, PlacedRule, PlanOptions } from "./ops.js"

const entityOf = (r: Pick<AccessRule, "entity_type" | "entity_id">) => `${r.entity_type}:${r.entity_id}`

/**
 * Role rules. To the database: the file's rules replace the stored ones of every entity the file names
 * (a stored rule of such an entity that the file no longer has is deleted); rules of entities the file does
 * not name go only with --delete-orphans; user rules are never touched. To disk, the same in reverse.
 */
export const diffRules = (o: Pick<PlanOptions, "direction">, disk: DiskSide, db: DbSide) => {
  const hashes = new WeakMap<AccessRule, string>()
  for (const s of db.rules.items) hashes.set(s.item, s.hash)
  const keyed: Keyed<AccessRule> = { key: AccessRuleKeyed.key, hash: (r) => hashes.get(r) ?? accessRuleHash(r) }
  const fromDb = db.rules.items.map((s) => s.item)
  if (disk.blocked.acl.size > 0) return diffKeyed(keyed, [], [])
  return o.direction === "ToDatabase"
    ? diffKeyed(keyed, disk.project.accessRules, fromDb)
    : diffKeyed(keyed, fromDb, disk.project.accessRules)
}

export const planAcl = (o: PlanOptions, disk: DiskSide, db: DbSide): KindPlan => {
  const b = new Builder("acl", o)
  const errors = [
    ...disk.errors.acl,
    ...(o.direction === "ToDisk" ? invalidRowErrors("access_rules", db.rules.invalid) : [])
  ]
  const diff = diffRules(o, disk, db)
  const fromDb = db.rules.items.map((s) => s.item)
  const sourceEntities = new Set((o.direction === "ToDatabase" ? disk.project.accessRules : fromDb).map(entityOf))
  // The changed keys, each with its status and the source side's rule.
  const changed = new Map<string, { readonly status: "Added" | "Modified"; readonly rule: AccessRule }>()
  const dropped = new Set<string>()
  for (const item of diff.items) {
    if (item.status === "Unchanged") b.skipped++
    else if (item.status !== "Removed") changed.set(item.key, { status: item.status, rule: item.source })
    else if (sourceEntities.has(entityOf(item.target)) || o.deleteOrphans) dropped.add(item.key)
    else b.skipped++
  }
  const paths = [ACCESS_RULES_PATH]
  if (o.direction === "ToDatabase") {
    // Deletes run first, then upserts: the steps are listed in that order.
    const deletes = fromDb.filter((r) => dropped.has(AccessRuleKeyed.key(r)))
    for (const r of deletes)
      b.steps.push({ kind: "acl", action: "delete", key: AccessRuleKeyed.key(r), status: "Removed", paths: [] })
    const upserts: Array<PlacedRule> = []
    disk.project.accessRules.forEach((rule, position) => {
      const key = AccessRuleKeyed.key(rule)
      const change = changed.get(key)
      if (change === undefined || !storable(b, key, rule)) return
      upserts.push({ rule, position })
      b.steps.push({ kind: "acl", action: "upsert", key, status: change.status, paths })
    })
    b.db.push({ _tag: "DeleteRules", rules: deletes }, { _tag: "UpsertRules", rules: upserts })
    b.synced = upserts.length
    b.deleted = deletes.length
    return b.done(errors)
  }
  if (changed.size === 0 && dropped.size === 0) return b.done(errors)
  // The file keeps its order: changed rules in place, dropped ones out, new ones appended in database order.
  const next: Array<AccessRule> = []
  for (const rule of disk.project.accessRules) {
    const key = AccessRuleKeyed.key(rule)
    if (dropped.has(key)) {
      b.steps.push({ kind: "acl", action: "remove", key, status: "Removed", paths })
      continue
    }
    const change = changed.get(key)
    if (change !== undefined) b.steps.push({ kind: "acl", action: "write", key, status: "Modified", paths })
    next.push(change === undefined ? rule : change.rule)
  }
  for (const r of fromDb) {
    const key = AccessRuleKeyed.key(r)
    if (changed.get(key)?.status !== "Added") continue
    next.push(r)
    b.steps.push({ kind: "acl", action: "write", key, status: "Added", paths })
  }
  b.disk.push({ _tag: "WriteText", path: ACCESS_RULES_PATH, text: renderAccessRules(next) })
  b.synced = changed.size
  b.deleted = dropped.size
  return b.done(errors)
}
