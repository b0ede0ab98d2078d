import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { terminalProgress } from "../../src/cli/progress.js"
import { advance, ProgressReporter, phase } from "../../src/services/Progress.js"

const ERASE = "\x1b[K"

/** A terminal that keeps what was written, and a clock the test moves. */
const terminal = () => {
  let text = ""
  let now = 0
  const progress = terminalProgress({ write: (s) => (text += s), columns: 80 }, () => now)
  return {
    progress,
    tick: (ms: number) => Effect.sync(() => (now += ms)),
    /** The screen: each line as a terminal leaves it after carriage returns and erase-line. */
    lines: () =>
      text
        .split("\n")
        .map((line) =>
          line
            .split("\r")
            .reduce((shown, part) => (part.startsWith(ERASE) ? part.slice(ERASE.length) : part) || shown, "")
        ),
    raw: () => text
  }
}

describe("progress drawn on a terminal", () => {
  it("a counted phase ends in its summary with elapsed time and rate; the run ends with its own", () => {
    const t = terminal()
    const run = Effect.gen(function* () {
      yield* phase("users", Effect.zipRight(t.tick(2000), Effect.succeed({ total: 3000 })), {
        total: 3000,
        unit: "rows",
        count: (r) => r.total
      })
      yield* phase("skills", Effect.zipRight(advance(1), t.tick(10)), { unit: "items" })
    })
    Effect.runSync(Effect.provideService(run, ProgressReporter, t.progress))
    t.progress.finish(true)
    expect(t.lines()).toStrictEqual([
      "users: 3,000 rows in 2.0 s (1,500 rows/s)",
      "skills: 1 item in 0.0 s",
      "done in 2.0 s",
      ""
    ])
  })

  it("a quick phase that counted nothing leaves no line, a slow one its time", () => {
    const t = terminal()
    Effect.runSync(
      Effect.provideService(
        Effect.zipRight(phase("migrations", t.tick(50)), phase("starting the database", t.tick(15_000))),
        ProgressReporter,
        t.progress
      )
    )
    expect(t.lines()).toStrictEqual(["starting the database: done in 15 s", ""])
  })

  it.effect("an interrupted phase is ended, not left half-drawn", () =>
    Effect.gen(function* () {
      const t = terminal()
      const fiber = yield* Effect.fork(
        Effect.provideService(phase("starting the database", Effect.never), ProgressReporter, t.progress)
      )
      yield* Effect.yieldNow() // the phase starts
      yield* Effect.zipRight(t.tick(3000), Effect.yieldNow())
      yield* Fiber.interrupt(fiber)
      expect(t.raw().endsWith("\n")).toBe(true)
      expect(t.lines()).toStrictEqual(["starting the database: interrupted after 3.0 s", ""])
    })
  )

  it("a line never wraps: it is cut to the terminal's width", () => {
    let text = ""
    const p = terminalProgress({ write: (s) => (text += s), columns: 30 }, () => 0)
    p.start(`fetching ${"x".repeat(60)}`)
    p.done("failed")
    for (const line of text.split(/[\r\n]/)) expect(line.replace("\x1b[K", "").length).toBeLessThan(30)
  })

  it("without a reporter the programs' phases run silently", () => {
    expect(Effect.runSync(phase("anything", Effect.succeed(1), { count: () => 1 }))).toBe(1)
  })
})
