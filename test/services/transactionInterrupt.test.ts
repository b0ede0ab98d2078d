// A transaction interrupted (Ctrl-C, a timeout), on PostgreSQL and on the embedded database: its rows rolled back,
// the connection it held back in the pool outside any transaction (the next use of the pool commits what it writes),
// and the interruption not held up longer than the statement it came in.
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { SqlClient } from "@effect/sql"
import * as PgClient from "@effect/sql-pg/PgClient"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, Option, Redacted } from "effect"
import * as Database from "../../src/services/ProjectDatabase.js"
import { query, scopedDatabase } from "../support/pg.js"

const rows = (url: string) => Effect.promise(() => query<{ x: number }>(url, "SELECT x FROM t ORDER BY x"))
/**
 * Client sessions of the database left idle inside a transaction: a connection back in the pool mid-transaction. A
 * session running a statement (the pool's cancel, say) or an autovacuum worker, which also has a transaction start
 * while it works, is not one.
 */
const openTransactions = (url: string) =>
  Effect.promise(() =>
    query<{ n: number }>(
      url,
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND state LIKE 'idle in transaction%'"
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

describe("a transaction interrupted on PostgreSQL (the project's pool)", () => {
  for (const [what, work] of Object.entries(inside))
    for (const [how, end] of Object.entries(interrupt))
      it.scopedLive(
        `${what}, ${how}: rolled back, the connection back clean`,
        () =>
          Effect.gen(function* () {
            const url = yield* scopedDatabase("tx")
            yield* Effect.promise(() => query(url, "CREATE TABLE t (x int)"))
            yield* Effect.promise(() => query(url, "INSERT INTO t VALUES (1)"))
            yield* Effect.gen(function* () {
              const sql = yield* SqlClient.SqlClient
              const started = Date.now()
              const exit = yield* end(sql.withTransaction(Effect.zipRight(sql`INSERT INTO t VALUES (2)`, work(sql))))
              expect(Exit.isFailure(exit)).toBe(true)
              // A statement running is cancelled (from a second connection of the pool), not waited for.
              expect(Date.now() - started).toBeLessThan(2500)
              expect(yield* rows(url)).toEqual([{ x: 1 }])
              expect(yield* openTransactions(url)).toEqual([{ n: 0 }])
              // The next use of the pool: committed, as seen from another connection.
              yield* sql`INSERT INTO t VALUES (3)`
              expect(yield* rows(url)).toEqual([{ x: 1 }, { x: 3 }])
              expect(yield* openTransactions(url)).toEqual([{ n: 0 }])
            }).pipe(Effect.provide(Database.layer({ url: Option.some(Redacted.make(url)), dataDir: "/nonexistent" })))
          }),
        30_000
      )
})

describe("a transaction interrupted on the embedded database", () => {
  it.scopedLive(
    "during a statement: rolled back once the statement ends, not after a wait for a connection to cancel it from; one session still",
    () =>
      Effect.gen(function* () {
        const dir = mkdtempSync(join(tmpdir(), "agentsync-tx-embedded-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
        yield* Effect.gen(function* () {
          const sql = yield* SqlClient.SqlClient
          yield* sql`CREATE TABLE t (x int)`
          yield* sql`INSERT INTO t VALUES (1)`
          const fiber = yield* Effect.fork(
            sql.withTransaction(
              Effect.zipRight(sql`INSERT INTO t VALUES (2)`, sql`SELECT count(*) FROM generate_series(1, 5000000)`)
            )
          )
          yield* Effect.sleep(Duration.millis(300))
          // PGlite runs in this process; an interruption is seen once its statement ends; without a backend id no
          // cancel is queued, so the rollback follows at once (the driver waited 5 s for a second connection to send
          // a cancel from, which a pool of one never has).
          const started = Date.now()
          yield* Fiber.interrupt(fiber)
          expect(Date.now() - started).toBeLessThan(2500)
          const now = sql<{ x: number }>`SELECT x FROM t ORDER BY x`
          expect(yield* now).toEqual([{ x: 1 }])
          yield* sql`INSERT INTO t VALUES (3)`
          expect(yield* now).toEqual([{ x: 1 }, { x: 3 }])
          const open = yield* sql<{ n: number }>`
            SELECT count(*)::int AS n FROM pg_stat_activity WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid()`
          expect(open).toEqual([{ n: 0 }])
          // What the server's side pools read: one session, so none is opened beside it.
          expect((yield* PgClient.PgClient).config.maxConnections).toBe(1)
        }).pipe(Effect.provide(Database.layer({ url: Option.none(), dataDir: join(dir, "pgdata") })))
      }),
    120_000
  )
})
