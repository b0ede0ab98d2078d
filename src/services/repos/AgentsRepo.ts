/** The agents table: batched reads, upserts and deletes of Agent rows with their canonical hash. */
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"
import { agentHash } from "../../domain/hash.js"
import { Agent } from "../../domain/model.js"
import { batched, type Column, collect, dbError, decodeRow, deleteStatement, upsertStatement } from "./shared.js"

const columns: ReadonlyArray<Column> = [
  ["id", "text"],
  ["name", "text"],
  ["display_name", "text"],
  ["description", "text"],
  ["enabled", "boolean"],
  ["tags", "text[]"],
  ["settings", "json"],
  ["system_prompt", "text"],
  ["form", "text"],
  ["original", "text"],
  ["extra", "json"],
  ["version_hash", "text"]
]

const UPSERT = upsertStatement("agents", columns, ["id"])
const DELETE = deleteStatement("agents", [["id", "text"]])

export const toRow = (a: Agent) => ({
  id: a.id,
  name: a.name,
  display_name: a.display_name,
  description: a.description,
  enabled: a.enabled,
  tags: a.tags,
  settings: a.settings,
  system_prompt: a.system_prompt,
  form: a.form,
  original: a.original,
  extra: a.extra,
  version_hash: agentHash(a)
})

export class AgentsRepo extends Effect.Service<AgentsRepo>()("agentsync/AgentsRepo", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const list = Effect.fn("AgentsRepo.list")(function* () {
      const rows = yield* sql
        .unsafe<Record<string, unknown>>(
          `SELECT id, name, display_name, description, enabled, tags, settings, system_prompt, form, original, extra, version_hash FROM agents ORDER BY id`
        )
        .pipe(Effect.mapError(dbError("cannot read agents")))
      return collect(
        rows,
        (r) => String(r["id"]),
        ({ version_hash: _, ...fields }, key) => decodeRow(Agent, key, fields),
        agentHash
      )
    })
    const upsert = Effect.fn("AgentsRepo.upsert")((items: ReadonlyArray<Agent>) =>
      batched(sql, UPSERT, items.map(toRow), "cannot write agents")
    )
    const remove = Effect.fn("AgentsRepo.remove")((ids: ReadonlyArray<string>) =>
      batched(
        sql,
        DELETE,
        ids.map((id) => ({ id })),
        "cannot delete agents"
      )
    )
    return { list, upsert, remove } as const
  })
}) {}
