// The migrator runs no id below the highest applied: a migration added below one a database already has would be
// left out of its schema for ever. A run refuses such a gap, naming both, on a real PostgreSQL.

import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Option, Redacted } from "effect"
import { gapOf, runMigrations } from "../../src/services/migrations/run.js"
import * as Database from "../../src/services/ProjectDatabase.js"
import { scopedDatabase, sqlRows } from "../support/pg.js"

const TABLE = "gap_migrations"

/** A migration that makes a table named after it. */
const making = (name: string) => Effect.flatMap(SqlClient.SqlClient, (sql) => sql`CREATE TABLE ${sql(name)} (x int)`)

const migrate = (url: string, record: Record<string, ReturnType<typeof making>>) =>
  runMigrations(TABLE, record).pipe(
    Effect.provide(Database.layer({ url: Option.some(Redacted.make(url)), dataDir: "/nonexistent" }))
  )

const tables = (url: string) =>
  Effect.map(
    sqlRows<{ name: string }>(url, `SELECT tablename AS name FROM pg_tables WHERE tablename LIKE 'm\\_%' ORDER BY 1`),
    (rows) => rows.map((r) => r.name)
  )

describe("runMigrations", () => {
  it.scopedLive(
    "refuses a migration whose id is below the highest applied, naming both, and applies nothing of that run",
    () =>
      Effect.gen(function* () {
        const url = yield* scopedDatabase("gap")
        // Applied: 0001 and 0003 (and, a run later, nothing more to do).
        expect(yield* migrate(url, { "0001_m_one": making("m_one"), "0003_m_three": making("m_three") })).toEqual([
          [1, "m_one"],
          [3, "m_three"]
        ])
        expect(yield* migrate(url, { "0001_m_one": making("m_one"), "0003_m_three": making("m_three") })).toEqual([])
        // A list with an extra id 2 below the highest applied, and a new 0004 that says when it runs (outside the
        // transaction: a run then rolled back would still leave its mark here).
        const started: Array<string> = []
        const failed = yield* Effect.either(
          migrate(url, {
            "0001_m_one": making("m_one"),
            "0002_m_two": making("m_two"),
            "0003_m_three": making("m_three"),
            "0004_m_four": Effect.zipRight(
              Effect.sync(() => started.push("0004_m_four")),
              making("m_four")
            )
          })
        )
        expect(Either.isLeft(failed)).toBe(true)
        if (Either.isLeft(failed)) {
          expect(failed.left._tag).toBe("MigrationGap")
          expect(failed.left.message).toMatch(
            /^migration 0002_m_two was never applied: the database already has the later 0003_m_three \(gap_migrations\).*nothing was migrated\. Run a build that has both .*upgrade to a build that has 0002_m_two too, or restore the database from before 0003_m_three.*gives it the next id above 0003_m_three$/
          )
        }
        // Refused before the migrator: 0004 never ran, is not recorded, its table not made.
        expect(started).toEqual([])
        expect(yield* tables(url)).toEqual(["m_one", "m_three"])
        const recorded = yield* sqlRows<{ id: number }>(url, `SELECT migration_id AS id FROM ${TABLE} ORDER BY 1`)
        expect(recorded.map((r) => r.id)).toEqual([1, 3])
        // Without the new one, the gap alone is refused too.
        const alone = yield* Effect.either(
          migrate(url, {
            "0001_m_one": making("m_one"),
            "0002_m_two": making("m_two"),
            "0003_m_three": making("m_three")
          })
        )
        expect(Either.isLeft(alone) && alone.left.message).toMatch(
          /^migration 0002_m_two was never applied: the database already has the later 0003_m_three/
        )
      }),
    60_000
  )

  it("gapOf: none on a fresh database or with every id applied; the lowest missing id below the highest applied", () => {
    const record = { "0001_a": 1, "0002_b": 2, "0003_c": 3, "0005_e": 5 }
    expect(gapOf(record, [])).toBeUndefined()
    expect(
      gapOf(
        record,
        [1, 2, 3].map((id) => ({ id, name: "x" }))
      )
    ).toBeUndefined()
    expect(
      gapOf(
        record,
        [1, 3].map((id) => ({ id, name: "x" }))
      )
    ).toEqual({ migration: "0002_b", latest: "0003_c" })
    // The highest applied is named from the database's row when the code no longer holds it.
    expect(
      gapOf(record, [
        { id: 1, name: "a" },
        { id: 9, name: "gone" }
      ])
    ).toEqual({
      migration: "0002_b",
      latest: "9_gone"
    })
  })
})
