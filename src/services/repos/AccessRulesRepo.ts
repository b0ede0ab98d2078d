/** The access-rule tables: role rules (synced with access-control/config.yaml) and user rules (database only), deny over allow. */
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect, Schema } from "effect"
import { accessRuleHash, accessRuleKey } from "../../domain/hash.js"
import type { PlacedRule } from "../../domain/localPlan.js"
import { Access, AccessEntityType, AccessRule } from "../../domain/model.js"
import { DatabaseError } from "../../errors.js"
import { batched, type Column, collect, dbError, decodeRow, deleteStatement, upsertStatement } from "./shared.js"

const columns: ReadonlyArray<Column> = [
  ["entity_type", "text"],
  ["entity_id", "text"],
  ["access", "text"],
  ["roles", "text[]"],
  ["justification", "text"],
  ["position", "integer"],
  ["version_hash", "text"]
]
const KEY: ReadonlyArray<Column> = [
  ["entity_type", "text"],
  ["entity_id", "text"],
  ["access", "text"]
]
const UPSERT = upsertStatement("access_rules", columns, ["entity_type", "entity_id", "access"])
const DELETE = deleteStatement("access_rules", KEY)

/** A rule granted to one user; local sync never reads or writes these. */
export class UserAccessRule extends Schema.Class<UserAccessRule>("UserAccessRule")({
  entity_type: AccessEntityType,
  entity_id: Schema.String.pipe(Schema.minLength(1)),
  user_id: Schema.String.pipe(Schema.minLength(1)),
  access: Access,
  justification: Schema.optional(Schema.String)
}) {}

const UPSERT_USER = upsertStatement(
  "user_access_rules",
  [
    ["entity_type", "text"],
    ["entity_id", "text"],
    ["user_id", "text"],
    ["access", "text"],
    ["justification", "text"]
  ],
  ["entity_type", "entity_id", "user_id"]
)

export type Decision = "allow" | "deny" | "none"

/** Deny wins over allow; no matching rule is "none". */
export const decide = (accesses: Iterable<Access>): Decision => {
  let allowed = false
  for (const a of accesses) {
    if (a === "deny") return "deny"
    allowed = true
  }
  return allowed ? "allow" : "none"
}

export type { PlacedRule } from "../../domain/localPlan.js"

const ruleRow = ({ rule, position }: PlacedRule) => ({
  entity_type: rule.entity_type,
  entity_id: rule.entity_id,
  access: rule.access,
  roles: rule.roles,
  justification: rule.justification ?? null,
  position,
  version_hash: accessRuleHash(rule)
})

export class AccessRulesRepo extends Effect.Service<AccessRulesRepo>()("agentsync/AccessRulesRepo", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    /** Role rules in their file order. */
    const list = Effect.fn("AccessRulesRepo.list")(function* () {
      const rows = yield* sql
        .unsafe<Record<string, unknown>>(
          `SELECT entity_type, entity_id, access, roles, justification, version_hash FROM access_rules
           ORDER BY position, entity_type, entity_id, access`
        )
        .pipe(Effect.mapError(dbError("cannot read access rules")))
      return collect(
        rows,
        (r) =>
          accessRuleKey({
            entity_type: String(r["entity_type"]),
            entity_id: String(r["entity_id"]),
            access: String(r["access"])
          }),
        ({ version_hash: _, justification, ...fields }, key) =>
          decodeRow(AccessRule, key, justification === null ? fields : { ...fields, justification }),
        accessRuleHash
      )
    })
    const upsert = Effect.fn("AccessRulesRepo.upsert")((rules: ReadonlyArray<PlacedRule>) =>
      batched(sql, UPSERT, rules.map(ruleRow), "cannot write access rules")
    )
    const remove = Effect.fn("AccessRulesRepo.remove")(
      (keys: ReadonlyArray<Pick<AccessRule, "entity_type" | "entity_id" | "access">>) =>
        batched(
          sql,
          DELETE,
          keys.map((k) => ({ entity_type: k.entity_type, entity_id: k.entity_id, access: k.access })),
          "cannot delete access rules"
        )
    )
    const listUserRules = Effect.fn("AccessRulesRepo.listUserRules")(function* () {
      const rows = yield* sql
        .unsafe<Record<string, unknown>>(
          `SELECT entity_type, entity_id, user_id, access, justification FROM user_access_rules
           ORDER BY entity_type, entity_id, user_id`
        )
        .pipe(Effect.mapError(dbError("cannot read user access rules")))
      return yield* Schema.decodeUnknown(Schema.Array(UserAccessRule))(
        rows.map(({ justification, ...r }) => (justification === null ? r : { ...r, justification }))
      ).pipe(
        Effect.mapError((cause) => new DatabaseError({ reason: `invalid user access rule: ${cause.message}`, cause }))
      )
    })
    const upsertUserRules = Effect.fn("AccessRulesRepo.upsertUserRules")((rules: ReadonlyArray<UserAccessRule>) =>
      batched(
        sql,
        UPSERT_USER,
        rules.map((r) => ({ ...r, justification: r.justification ?? null })),
        "cannot write user access rules"
      )
    )
    /** The decision for a user with `roles` on one entity: role rules and the user's own rules together, deny first. */
    const check = Effect.fn("AccessRulesRepo.check")(function* (
      entityType: AccessEntityType,
      entityId: string,
      who: { readonly roles: ReadonlyArray<string>; readonly userId?: string }
    ) {
      const rows = yield* sql
        .unsafe<{ access: Access }>(
          `SELECT access FROM access_rules WHERE entity_type = $1 AND entity_id = $2 AND roles && $3::text[]
           UNION ALL
           SELECT access FROM user_access_rules WHERE entity_type = $1 AND entity_id = $2 AND user_id = $4`,
          [entityType, entityId, who.roles, who.userId ?? null]
        )
        .pipe(Effect.mapError(dbError("cannot check access")))
      return decide(rows.map((r) => r.access))
    })
    return { list, upsert, remove, listUserRules, upsertUserRules, check } as const
  })
}) {}
