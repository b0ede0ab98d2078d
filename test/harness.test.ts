import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit } from "effect"
import pg from "pg"
import { Shell } from "../src/services/Shell.js"
import { scopedDatabase } from "./support/pg.js"
import { testLayer } from "./support/testLayer.js"

describe("test harness", () => {
  it.scoped("gives each test file a real, empty PostgreSQL database", () =>
    Effect.gen(function* () {
      const url = yield* scopedDatabase()
      const client = new pg.Client({ connectionString: url })
      yield* Effect.acquireRelease(
        Effect.promise(() => client.connect()),
        () => Effect.promise(() => client.end())
      )
      const { rows } = yield* Effect.promise(() =>
        client.query("select current_database() as db, count(*)::int as n from pg_tables where schemaname = 'public'")
      )
      expect(rows[0].db).toMatch(/^t_[0-9a-f]{12}$/)
      expect(rows[0].n).toBe(0)
    })
  )

  it.effect("a partial fake of a port answers what it was given and dies naming any other method", () =>
    Effect.gen(function* () {
      const ran = { exitCode: 0, stdout: new Uint8Array(), stderr: "" }
      const shell = yield* Effect.provide(Shell, testLayer(Shell)({ run: () => Effect.succeed(ran) }))
      expect(yield* shell.run("true", [])).toBe(ran)
      const exit = yield* Effect.exit(shell.exec("true", []))
      expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
      expect(Exit.isFailure(exit) && Cause.pretty(exit.cause)).toContain(
        'agentsync/Shell: the test fake does not implement "exec"'
      )
    })
  )
})
