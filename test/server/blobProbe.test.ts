// An upload's statements over blobs named by hash, against a real PostgreSQL whose statistics do not know the tenant's
// blobs (a first upload's state): each reads one row per hash asked, never the tenant's other blobs, and touches only
// the tenant's own rows where another tenant holds the same hashes in the same state. Over a row another connection
// updates meanwhile, the update still makes it permanent and the delete (by `ctid`) skips it.
import { createHash } from "node:crypto"
import * as SqlClient from "@effect/sql/SqlClient"
import { PgClient } from "@effect/sql-pg"
import { describe, expect, layer } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Redacted, Schedule } from "effect"
import { blobProbes } from "../../src/server/files/blobProbe.js"
import * as Migrations from "../../src/server/migrations.js"
import { scopedDatabase } from "../support/pg.js"
import { planOf, rowsRead } from "../support/plan.js"

const sha = (s: string) => createHash("sha256").update(s).digest("hex")

const Db = Layer.unwrapScoped(
  Effect.map(scopedDatabase("blobprobe"), (url) =>
    Migrations.layer.pipe(Layer.provideMerge(PgClient.layer({ url: Redacted.make(url), maxConnections: 6 })))
  )
)

// The live clock: the wait below polls on a schedule, which the test clock would never advance.
layer(Db, { timeout: 120_000, excludeTestServices: true })((it) => {
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
          const plan = rowsRead(yield* planOf(statement), "blobs")
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

    it.effect("over a row another connection updates meanwhile: made permanent, and left by the clean-up", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const probes = blobProbes(sql)
        yield* sql`INSERT INTO tenants (id, name) VALUES ('t3', 'three')`
        yield* sql`INSERT INTO uploads (id, tenant_id) VALUES ('w', 't3')`
        const held = sha("held by w")
        const written = sha("written by w")
        yield* sql`INSERT INTO blobs (tenant_id, sha256, size, data, written_by)
          VALUES ('t3', ${held}, 1, 'x'::bytea, 'w'), ('t3', ${written}, 1, 'x'::bytea, 'w')`
        const writer = (hash: string) =>
          Effect.map(
            sql<{
              written_by: string | null
            }>`SELECT written_by FROM blobs WHERE tenant_id = 't3' AND sha256 = ${hash}`,
            (rows) => rows.map((r) => r.written_by)
          )
        /**
         * `statement`, run while another connection holds an update of `hash`'s row that leaves it marked as it was:
         * that one commits once `statement` waits on the row, which it then takes at its newest version.
         */
        const whileUpdated = <A, E>(hash: string, statement: Effect.Effect<A, E>) =>
          Effect.gen(function* () {
            const locked = yield* Deferred.make<void>()
            const release = yield* Deferred.make<void>()
            const holder = yield* Effect.fork(
              sql`UPDATE blobs SET size = size WHERE tenant_id = 't3' AND sha256 = ${hash}`.pipe(
                Effect.zipRight(Deferred.succeed(locked, undefined)),
                Effect.zipRight(Deferred.await(release)),
                sql.withTransaction
              )
            )
            yield* Deferred.await(locked)
            const running = yield* Effect.fork(statement)
            // The holder commits however this ends (a wait not seen in time included), so the statement behind its
            // lock always finishes and a failure is reported instead of both waiting on each other.
            yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity
              WHERE datname = current_database() AND wait_event_type = 'Lock'`.pipe(
              Effect.repeat({ until: (r) => (r[0]?.n ?? 0) > 0, schedule: Schedule.spaced("20 millis") }),
              Effect.timeout("30 seconds"),
              Effect.ensuring(Deferred.succeed(release, undefined))
            )
            yield* Fiber.join(holder)
            return yield* Fiber.join(running)
          })

        // Taken by its key, the row is found again at its newest version: permanent, as `sha256 = ANY` made it (by
        // `ctid` it was skipped and stayed marked).
        yield* whileUpdated(held, probes.makePermanent("t3", [held]))
        expect(yield* writer(held)).toEqual([null])
        // The clean-up takes its rows by `ctid`: the row changed meanwhile is skipped, as its comment says.
        yield* whileUpdated(written, probes.discard("t3", "w", [written]))
        expect(yield* writer(written)).toEqual(["w"])
        expect(yield* sql`SELECT id FROM uploads WHERE id = 'w'`).toEqual([])
      })
    )
  })
})
