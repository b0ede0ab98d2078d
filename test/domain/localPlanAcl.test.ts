// Access rules in a local-sync plan: rules replaced per entity the source side names, the file keeping its order.
import { describe, expect, it } from "vitest"
import { ACCESS_RULES_PATH, renderAccessRules } from "../../src/domain/formats.js"
import { accessRuleHash } from "../../src/domain/hash.js"
import { plan } from "../../src/domain/localPlan.js"
import { type DbSide, diskSide } from "../../src/domain/localSides.js"
import { AccessRule, type LocalSyncDirection } from "../../src/domain/model.js"

const rule = (entity_id: string, access: "allow" | "deny", ...roles: Array<string>) =>
  new AccessRule({ entity_type: "agent", entity_id, access, roles })

const sides = (onDisk: ReadonlyArray<AccessRule>, inDb: ReadonlyArray<AccessRule>) => {
  const text = renderAccessRules(onDisk)
  const disk = diskSide([{ path: ACCESS_RULES_PATH, bytes: new TextEncoder().encode(text), mode: 0o644 }], "")
  const db: DbSide = {
    agents: { items: [], invalid: [] },
    skills: { items: [], invalid: [] },
    rules: { items: inDb.map((item) => ({ item, hash: accessRuleHash(item) })), invalid: [] },
    contents: [],
    contentInvalid: [],
    sources: [],
    attachments: [],
    storedPages: []
  }
  return { disk, db }
}

const planRules = (
  direction: LocalSyncDirection,
  onDisk: ReadonlyArray<AccessRule>,
  inDb: ReadonlyArray<AccessRule>
) => {
  const { disk, db } = sides(onDisk, inDb)
  const [acl] = plan({ direction, dryRun: false, deleteOrphans: false }, disk, db, ["acl"])
  if (acl === undefined) throw new Error("no acl plan")
  return acl
}

describe("access rules in a local plan", () => {
  it("to disk: a changed rule is rewritten in place, a new one appended, an entity the database never names kept", () => {
    const a = rule("a", "allow", "x")
    const aChanged = rule("a", "allow", "x", "w")
    const b = rule("b", "allow", "y")
    const c = rule("c", "deny", "z")
    const aDeny = rule("a", "deny", "q")
    const p = planRules("ToDisk", [a, b, c], [aChanged, b, aDeny])
    expect(p.disk).toStrictEqual([
      { _tag: "WriteText", path: ACCESS_RULES_PATH, text: renderAccessRules([aChanged, b, c, aDeny]) }
    ])
    expect(p.steps.map((s) => `${s.action} ${s.key} ${s.status}`)).toStrictEqual([
      "write agent:a:allow Modified",
      "write agent:a:deny Added"
    ])
    expect([p.result.synced, p.result.skipped, p.result.deleted]).toStrictEqual([2, 2, 0])
  })

  it("to the database: deletes of rules of an entity the file names, then upserts with the file's positions", () => {
    const a = rule("a", "allow", "x")
    const aChanged = rule("a", "allow", "x", "w")
    const b = rule("b", "allow", "y")
    const bDeny = rule("b", "deny", "y")
    const other = rule("o", "deny", "z")
    const p = planRules("ToDatabase", [aChanged, bDeny], [a, b, other])
    expect(p.db).toStrictEqual([
      { _tag: "DeleteRules", rules: [b] },
      {
        _tag: "UpsertRules",
        rules: [
          { rule: aChanged, position: 0 },
          { rule: bDeny, position: 1 }
        ]
      }
    ])
    expect(p.steps.map((s) => `${s.action} ${s.key} ${s.status}`)).toStrictEqual([
      "delete agent:b:allow Removed",
      "upsert agent:a:allow Modified",
      "upsert agent:b:deny Added"
    ])
    expect([p.result.synced, p.result.skipped, p.result.deleted]).toStrictEqual([2, 1, 1])
  })
})
