// An upload's statements over blobs named by hash, against a real PostgreSQL whose statistics do not know the tenant's
// blobs (a first upload's state): each reads one row per hash asked, never the tenant's other blobs, and touches only
// the tenant's own rows where another tenant holds the same hashes in the same state.
import { createHash } from "node:crypto"
import * as SqlClient from "@effect/sql/SqlClient"
import type { Statement } from "@effect/sql/Statement"
import { PgClient } from "@effect/sql-pg"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import { blobProbes } from "../../src/server/files/blobProbe.js"
import * as Migrations from "../../src/server/migrations.js"
import { scopedDatabase } from "../support/pg.js"

const sha = (s: string) => createHash("sha256").update(s).digest("hex")

const Db = Layer.unwrapScoped(
  Effect.map(scopedDatabase("blobprobe"), (url) =>
    Migrations.layer.pipe(Layer.provideMerge(PgClient.layer({ url: Redacted.make(url), maxConnections: 2 })))
  )
)

type Plan = { readonly [key: string]: unknown; readonly Plans?: ReadonlyArray<Plan> }

/** Every node of `statement`'s plan as run (in a transaction rolled back: it changes nothing). */
const planOf = (statement: Statement<unknown>) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const [text, params] = statement.compile()
    let rows: ReadonlyArray<{ "QUERY PLAN": ReadonlyArray<{ Plan: Plan }> }> = []
    yield* sql
      .unsafe<{ "QUERY PLAN": ReadonlyArray<{ Plan: Plan }> }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${text}`, params)
      .pipe(
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

/** The rows a plan's nodes over `blobs` read in all: those they returned and those their filters dropped. */
const blobRowsRead = (rows: ReadonlyArray<{ "QUERY PLAN": ReadonlyArray<{ Plan: Plan }> }>) => {
  const nodes: Array<Plan> = []
  const walk = (plan: Plan) => {
    nodes.push(plan)
    for (const p of plan.Plans ?? []) walk(p)
  }
  const plan = rows[0]?.["QUERY PLAN"][0]?.Plan
  if (plan !== undefined) walk(plan)
  const overBlobs = nodes.filter((n) => n["Relation Name"] === "blobs" && n["Node Type"] !== "ModifyTable")
  return {
    nodes: overBlobs.length,
    read: overBlobs.reduce(
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

layer(Db, { timeout: 120_000 })((it) => {
  describe("an upload's statements over blobs named by hash", () => {
    it.effect("read one row per hash with stale statistics, and touch only the tenant's own rows", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const probes = blobProbes(sql)
        yield* sql`INSERT INTO tenants (id, name) VALUES ('t1', 'one'), ('t2', 'two')`
        yield* sql`INSERT INTO uploads (id, tenant_id) VALUES ('u', 't1'), ('u', 't2') ON CONFLICT DO NOTHING`
        // Five thousand blobs of t1, none analyzed: permanent ones, and every third written by the running upload `u`.
        yield* sql`INSERT INTO blobs (tenant_id, sha256, size, data, written_by)
          SELECT 't1', encode(sha256(i::text::bytea), 'hex'), 1, 'x'::bytea, CASE WHEN i % 3 = 0 THEN 'u' END
          FROM generate_series(1, 5000) i`
        // t2 holds some of the same hashes, each written by an upload of the same id.
        const asked = Array.from({ length: 60 }, (_, i) => sha(String(1 + i * 7)))
        const missing = Array.from({ length: 20 }, (_, i) => sha(`not stored ${i}`))
        const hashes = [...asked, ...missing]
        yield* sql`INSERT INTO blobs (tenant_id, sha256, size, data, written_by)
          SELECT 't2', h, 1, 'y'::bytea, 'u' FROM unnest(${asked}::text[]) AS h`
        const mine = (tenant: string) =>
          sql<{ sha256: string; written_by: string | null }>`
            SELECT sha256, written_by FROM blobs WHERE tenant_id = ${tenant} AND sha256 = ANY(${hashes}::text[])`
        const t1 = yield* mine("t1")
        const t2 = yield* mine("t2")
        const pending = t1.filter((r) => r.written_by === "u").map((r) => r.sha256)
        const permanent = t1.filter((r) => r.written_by === null).map((r) => r.sha256)
        expect(pending.length).toBeGreaterThan(10)
        expect(permanent.length).toBeGreaterThan(10)

        for (const statement of [
          probes.present("t1", hashes),
          probes.makePermanent("t1", hashes),
          probes.discard("t1", "u", hashes)
        ]) {
          const plan = blobRowsRead(yield* planOf(statement))
          expect(plan.nodes).toBeGreaterThan(0)
          // One lookup per hash asked (and the update's or delete's own row), never the tenant's 5,000.
          expect(plan.read).toBeLessThanOrEqual(2 * hashes.length)
        }

        // Present: t1's permanent blobs (those `u` wrote are pending while it runs), not t2's.
        expect((yield* probes.present("t1", hashes)).map((r) => r.sha256).sort()).toEqual([...permanent].sort())
        // Made permanent: t1's rows; t2's stay as written.
        yield* probes.makePermanent("t1", hashes)
        expect((yield* mine("t1")).filter((r) => r.written_by !== null)).toEqual([])
        expect(yield* mine("t2")).toEqual(t2)
        // Discarded: what `u` wrote of t1 goes, t2's rows written by an upload of the same id stay.
        yield* sql`UPDATE blobs SET written_by = 'u' WHERE tenant_id = 't1' AND sha256 = ANY(${pending}::text[])`
        yield* probes.discard("t1", "u", hashes)
        expect((yield* mine("t1")).map((r) => r.sha256).sort()).toEqual([...permanent].sort())
        expect(yield* mine("t2")).toEqual(t2)
        expect(yield* sql`SELECT id FROM uploads WHERE id = 'u'`).toEqual([])
      })
    )
  })
})
