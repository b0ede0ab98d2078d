/** The skills table: batched reads, upserts and deletes of Skill rows with their canonical hash. */
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"
import { skillHash } from "../../domain/hash.js"
import { Skill } from "../../domain/model.js"
import { batched, type Column, collect, dbError, decodeRow, deleteStatement, upsertStatement } from "./shared.js"

const columns: ReadonlyArray<Column> = [
  ["id", "text"],
  ["name", "text"],
  ["description", "text"],
  ["enabled", "boolean"],
  ["tags", "text[]"],
  ["category", "text"],
  ["assigned_agents", "text[]"],
  ["instructions", "text"],
  ["form", "text"],
  ["original", "text"],
  ["extra", "json"],
  ["version_hash", "text"]
]

const UPSERT = upsertStatement("skills", columns, ["id"])
const DELETE = deleteStatement("skills", [["id", "text"]])

export const toRow = (s: Skill) => ({
  id: s.id,
  name: s.name,
  description: s.description,
  enabled: s.enabled,
  tags: s.tags,
  category: s.category,
  assigned_agents: s.assigned_agents,
  instructions: s.instructions,
  form: s.form,
  original: s.original,
  extra: s.extra,
  version_hash: skillHash(s)
})

export class SkillsRepo extends Effect.Service<SkillsRepo>()("agentsync/SkillsRepo", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const list = Effect.fn("SkillsRepo.list")(function* () {
      const rows = yield* sql
        .unsafe<Record<string, unknown>>(
          `SELECT id, name, description, enabled, tags, category, assigned_agents, instructions, form, original, extra, version_hash FROM skills ORDER BY id`
        )
        .pipe(Effect.mapError(dbError("cannot read skills")))
      return collect(
        rows,
        (r) => String(r["id"]),
        ({ version_hash: _, ...fields }, key) => decodeRow(Skill, key, fields),
        skillHash
      )
    })
    const upsert = Effect.fn("SkillsRepo.upsert")((items: ReadonlyArray<Skill>) =>
      batched(sql, UPSERT, items.map(toRow), "cannot write skills")
    )
    const remove = Effect.fn("SkillsRepo.remove")((ids: ReadonlyArray<string>) =>
      batched(
        sql,
        DELETE,
        ids.map((id) => ({ id })),
        "cannot delete skills"
      )
    )
    return { list, upsert, remove } as const
  })
}) {}
