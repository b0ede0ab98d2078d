// A command's report in human mode: the outcome runs even when the report cannot be written, and its failure wins.
import { describe, expect, it, vi } from "@effect/vitest"
import { Effect, Either } from "effect"
import { defaultGlobals } from "../../src/cli/argv.js"
import { ExitWith, emit } from "../../src/cli/output.js"
import { CliGlobals } from "../../src/cli/root.js"
import { IoError } from "../../src/errors.js"

/** Runs `effect` with stdout failing every write as a full disk does. */
const onFullDisk = <A, E>(effect: Effect.Effect<A, E, CliGlobals>) =>
  Effect.acquireUseRelease(
    Effect.sync(() =>
      vi.spyOn(process.stdout, "write").mockImplementation((...args: ReadonlyArray<unknown>) => {
        const done = args.find((a) => typeof a === "function") as ((e: Error) => void) | undefined
        process.nextTick(() => done?.(Object.assign(new Error("write ENOSPC"), { code: "ENOSPC" })))
        return false
      })
    ),
    () => Effect.either(Effect.provideService(effect, CliGlobals, defaultGlobals)),
    (spy) => Effect.sync(() => spy.mockRestore())
  )

describe("emit", () => {
  it.effect("a report that cannot be written still runs the outcome, whose failure (a conflict's exit 3) wins", () =>
    Effect.gen(function* () {
      let ran = false
      const outcome = Effect.zipRight(
        Effect.sync(() => {
          ran = true
        }),
        Effect.fail(new ExitWith({ code: 3 }))
      )
      const conflict = yield* onFullDisk(emit({}, () => "report", outcome))
      expect(ran).toBe(true)
      expect(conflict).toEqual(Either.left(new ExitWith({ code: 3 })))
      // An outcome that succeeds: the write's failure is the run's.
      const lost = yield* onFullDisk(emit({}, () => "report"))
      expect(Either.isLeft(lost) && lost.left instanceof IoError).toBe(true)
    })
  )
})
