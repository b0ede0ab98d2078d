// The one retry wrapper of the clients: what it retries, what it ends in, and how it counts.
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import { ApiError } from "../../src/errors.js"
import { retrying, transient } from "../../src/services/Transport.js"

const URL = "http://127.0.0.1:1/x"
const fast = { maxRetries: 2, base: "1 millis", factor: 1, cap: "5 millis" } as const

/** An attempt that fails transiently `failures` times, then succeeds; `runs` counts every attempt made. */
const flaky = (failures: number) => {
  const runs = { count: 0 }
  const attempt = Effect.suspend(() =>
    ++runs.count > failures ? Effect.succeed("ok") : Effect.fail(transient(0, "refused", true))
  )
  return { runs, attempt }
}

describe("retrying", () => {
  it.live("retries transient failures, then answers", () =>
    Effect.gen(function* () {
      const f = flaky(2)
      expect(yield* retrying(URL, f.attempt, fast)).toBe("ok")
      expect(f.runs.count).toBe(3)
    })
  )

  it.live("a call kept as a value and run twice names its own attempts each time", () =>
    Effect.gen(function* () {
      const f = flaky(Number.POSITIVE_INFINITY)
      const call = retrying(URL, f.attempt, fast)
      for (const _ of [1, 2]) {
        const e = yield* Effect.flip(call)
        expect([e.kind, e.status]).toEqual(["Transport", 0])
        expect(e.message).toMatch(/server unreachable \(gave up after 3 attempts: refused\)/)
      }
      expect(f.runs.count).toBe(6)
    })
  )

  it.live("not retried: one attempt, and the error says so; other failures pass through untouched", () =>
    Effect.gen(function* () {
      const f = flaky(1)
      const e = yield* Effect.flip(retrying(URL, f.attempt, fast, { retried: false }))
      expect(e.message).toMatch(/\(not retried: refused\)/)
      expect(f.runs.count).toBe(1)
      const own = new ApiError({ kind: "Status", status: 500, reason: "boom", url: URL })
      expect(yield* Effect.flip(retrying(URL, Effect.fail(own), fast))).toBe(own)
    })
  )

  it.live("an Effect Schedule decides how many; the count is of the attempts made", () =>
    Effect.gen(function* () {
      const f = flaky(Number.POSITIVE_INFINITY)
      const e = yield* Effect.flip(retrying(URL, f.attempt, Schedule.recurs(1)))
      expect(e.message).toMatch(/gave up after 2 attempts/)
      expect(f.runs.count).toBe(2)
    })
  )

  it.live("the deadline ends the whole call as a Timeout naming the attempts made", () =>
    Effect.gen(function* () {
      const slow = Effect.zipRight(Effect.sleep("5 seconds"), Effect.succeed("late"))
      const e = yield* Effect.flip(retrying(URL, slow, fast, { deadlineMs: 50 }))
      expect([e._tag, e.kind, e.status]).toEqual(["ApiError", "Timeout", 408])
      expect(e.message).toMatch(/no result within the transfer deadline of 0.05 s .*\(gave up after 1 attempt\)/)
    })
  )
})
