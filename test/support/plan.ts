// A statement's plan as PostgreSQL ran it, and how many rows of a table its nodes read: for tests that a statement
// finds its rows by key whatever the table's statistics say.
import * as SqlClient from "@effect/sql/SqlClient"
import type { Statement } from "@effect/sql/Statement"
import { Effect } from "effect"

type Plan = { readonly [key: string]: unknown; readonly Plans?: ReadonlyArray<Plan> }
export type PlanRows = ReadonlyArray<{ "QUERY PLAN": ReadonlyArray<{ Plan: Plan }> }>

/** Every node of `statement`'s plan as run (in a transaction rolled back: it changes nothing). */
export const planOf = (statement: Statement<unknown>) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const [text, params] = statement.compile()
    let rows: PlanRows = []
    yield* sql.unsafe<PlanRows[number]>(`EXPLAIN (ANALYZE, FORMAT JSON) ${text}`, params).pipe(
      Effect.flatMap((plan) => {
        rows = plan
        return Effect.fail("undo" as const)
      }),
      sql.withTransaction,
      Effect.catchIf(
        (e) => e === "undo",
        () => Effect.void
      )
    )
    return rows
  })

/** The rows a plan's nodes over `table` read in all: those they returned and those their filters dropped. */
export const rowsRead = (rows: PlanRows, table: string) => {
  const nodes: Array<Plan> = []
  const walk = (plan: Plan) => {
    nodes.push(plan)
    for (const p of plan.Plans ?? []) walk(p)
  }
  const plan = rows[0]?.["QUERY PLAN"][0]?.Plan
  if (plan !== undefined) walk(plan)
  const over = nodes.filter((n) => n["Relation Name"] === table && n["Node Type"] !== "ModifyTable")
  return {
    nodes: over.length,
    read: over.reduce(
      (n, x) =>
        n +
        (Number(x["Actual Rows"]) +
          Number(x["Rows Removed by Filter"] ?? 0) +
          Number(x["Rows Removed by Index Recheck"] ?? 0)) *
          Number(x["Actual Loops"]),
      0
    )
  }
}
