import { appendFileSync, existsSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit } from "effect"
import pg from "pg"
import { Shell } from "../src/services/Shell.js"
import { makeStubs } from "./support/deploy.js"
import { scopedDatabase } from "./support/pg.js"
import { DURATIONS, slowFirst } from "./support/slowFirst.js"
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

  it("starts the longest files first, a short file with one long test included, then the others by size", () => {
    const sizes: Record<string, number> = {
      "test/e2e/demo.test.ts": 2_000,
      "test/e2e/skill.test.ts": 13_000,
      "test/domain/big.test.ts": 40_000,
      "test/domain/small.test.ts": 1_000,
      "test/domain/mid.test.ts": 9_000
    }
    expect(slowFirst(Object.keys(sizes), (f) => sizes[f]!)).toEqual([
      "test/e2e/demo.test.ts",
      "test/e2e/skill.test.ts",
      "test/domain/big.test.ts",
      "test/domain/mid.test.ts",
      "test/domain/small.test.ts"
    ])
  })

  it("reads a stub's calls while one is still being written: the records before it, not a parse error", () => {
    const stubs = makeStubs(["hook"])
    try {
      expect(stubs.calls()).toEqual([])
      const call = { name: "hook", args: ["a b"], stdin: "", env: { X: "1\n2" }, cwd: "/" }
      appendFileSync(join(stubs.dir, "calls.jsonl"), `${JSON.stringify(call)}\n`)
      // A reader that polls as the next stub appends its line can see the line cut short.
      appendFileSync(join(stubs.dir, "calls.jsonl"), JSON.stringify(call).slice(0, 20))
      expect(stubs.calls()).toEqual([call])
      appendFileSync(join(stubs.dir, "calls.jsonl"), `${JSON.stringify(call).slice(20)}\n`)
      expect(stubs.calls()).toEqual([call, call])
    } finally {
      stubs.remove()
    }
  })

  it("lists only files that exist", () => {
    expect(Object.keys(DURATIONS).filter((f) => !existsSync(f))).toEqual([])
  })
})
