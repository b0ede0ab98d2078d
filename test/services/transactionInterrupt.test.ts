// A transaction interrupted (Ctrl-C, a timeout) on the real PostgreSQL: its rows rolled back, and the connection it
// held back in the pool outside any transaction, so the next use of the pool commits what it writes.
import { SqlClient } from "@effect/sql"
import * as PgClient from "@effect/sql-pg/PgClient"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, type Layer, Option, Redacted } from "effect"
import * as Database from "../../src/services/ProjectDatabase.js"
import { query, scopedDatabase } from "../support/pg.js"

const rows = (url: string) => Effect.promise(() => query<{ x: number }>(url, "SELECT x FROM t ORDER BY x"))
/** Sessions of the database left inside a transaction. */
const openTransactions = (url: string) =>
  Effect.promise(() =>
    query<{ n: number }>(
      url,
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
    )
  )

/** What the transaction is doing when interrupted: waiting on something else, or running a statement. */
const inside = {
  idle: (_: SqlClient.SqlClient) => Effect.never,
  "running a statement": (sql: SqlClient.SqlClient) => sql`SELECT pg_sleep(3)`
} as const

/** How it is interrupted: the fiber (Ctrl-C), or a timeout around it. */
const interrupt = {
  interrupted: (tx: Effect.Effect<unknown, unknown>) =>
    Effect.gen(function* () {
      const fiber = yield* Effect.fork(tx)
      yield* Effect.sleep(Duration.millis(500))
      return yield* Fiber.interrupt(fiber)
    }),
  "timed out": (tx: Effect.Effect<unknown, unknown>) => Effect.exit(Effect.timeout(tx, Duration.millis(500)))
} as const

/** The project's database layer (a pool of 8), and a pool of one connection as the embedded database has. */
const pools = {
  "the project's pool": (url: string) =>
    Database.layer({ url: Option.some(Redacted.make(url)), dataDir: "/nonexistent" }) as Layer.Layer<
      SqlClient.SqlClient,
      unknown
    >,
  "a pool of one": (url: string) => PgClient.layer({ url: Redacted.make(url), maxConnections: 1 })
} as const

describe("a transaction interrupted on PostgreSQL", () => {
  for (const [pool, layerOf] of Object.entries(pools))
    for (const [what, work] of Object.entries(inside))
      for (const [how, end] of Object.entries(interrupt))
        it.scopedLive(
          `${pool}, ${what}, ${how}: rolled back, the connection back clean`,
          () =>
            Effect.gen(function* () {
              const url = yield* scopedDatabase("tx")
              yield* Effect.promise(() => query(url, "CREATE TABLE t (x int)"))
              yield* Effect.promise(() => query(url, "INSERT INTO t VALUES (1)"))
              yield* Effect.gen(function* () {
                const sql = yield* SqlClient.SqlClient
                const started = Date.now()
                const exit = yield* end(sql.withTransaction(Effect.zipRight(sql`INSERT INTO t VALUES (2)`, work(sql))))
                const took = Date.now() - started
                expect(Exit.isFailure(exit)).toBe(true)
                // A statement running is cancelled (on a second connection of the pool), not waited for; a pool of
                // one has none to cancel it from, and the rollback waits for the statement to end.
                if (pool !== "a pool of one") expect(took).toBeLessThan(2500)
                expect(yield* rows(url)).toEqual([{ x: 1 }])
                expect(yield* openTransactions(url)).toEqual([{ n: 0 }])
                // The next use of the pool: committed, as seen from another connection.
                yield* sql`INSERT INTO t VALUES (3)`
                expect(yield* rows(url)).toEqual([{ x: 1 }, { x: 3 }])
                expect(yield* openTransactions(url)).toEqual([{ n: 0 }])
              }).pipe(Effect.provide(layerOf(url)))
            }),
          30_000
        )
})
