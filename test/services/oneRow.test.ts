import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit } from "effect"
import { oneRow } from "../../src/services/oneRow.js"

describe("oneRow", () => {
  it.effect("answers a statement's first row", () =>
    Effect.gen(function* () {
      expect(yield* oneRow([{ n: 1 }, { n: 2 }], "a count")).toEqual({ n: 1 })
    })
  )

  it.effect("makes no row a defect naming the statement, not a failure a caller could mistake for data", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(oneRow([], "counting rows"))
      expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
      expect(Exit.isFailure(exit) ? Cause.pretty(exit.cause) : "").toContain("counting rows returned no row")
    })
  )
})
