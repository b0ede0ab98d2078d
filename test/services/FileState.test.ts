// The `.agentsync/` state port: a staging folder lives as long as its scope, however the scope ends (an
// interrupted pull leaves none), unless the pull journal names it; the sweep removes what no journal names.
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, FastCheck as fc } from "effect"
import { FileState, make, stateOf } from "../../src/services/FileState.js"
import { readStateText } from "../../src/services/state.js"
import { tempDirs } from "../support/tree.js"

const tempDir = tempDirs("file-state")

describe("FileState", () => {
  it.effect.prop(
    "reads back what it wrote, ASCII (decoded as latin1) or not (UTF-8), and nothing for a missing file",
    [fc.oneof(fc.string(), fc.fullUnicodeString(), fc.json())],
    ([text]) =>
      Effect.gen(function* () {
        const state = make(tempDir("text"))
        expect(yield* state.read("hash-cache.json")).toBeUndefined()
        yield* state.write("hash-cache.json", text)
        expect(yield* state.read("hash-cache.json")).toBe(text)
        // A byte that is not UTF-8 reads as UTF-8 reads it (a replacement character), never as latin1.
        fs.writeFileSync(state.path("hash-cache.json"), Buffer.concat([Buffer.from(text), Buffer.from([0xe9])]))
        expect(readStateText(state.path("hash-cache.json"))).toBe(`${text}\ufffd`)
      }),
    { fastCheck: { numRuns: 50 } }
  )

  it.effect("removes a staging folder when its scope is interrupted, and keeps one the journal names", () =>
    Effect.gen(function* () {
      const state = make(tempDir("project"))
      const made = yield* Deferred.make<string>()
      const fiber = yield* Effect.fork(
        Effect.scoped(
          Effect.flatMap(state.staging("run-1"), (dir) =>
            Effect.zipRight(
              Effect.sync(() => fs.writeFileSync(nodePath.join(dir, "f"), "x")),
              Effect.zipRight(Deferred.succeed(made, dir), Effect.never)
            )
          )
        )
      )
      const dir = yield* Deferred.await(made)
      expect(fs.statSync(dir).mode & 0o777).toBe(0o700)
      yield* Fiber.interrupt(fiber)
      expect(fs.existsSync(dir)).toBe(false)
      // Named by the journal: a later run finishes the swap from it.
      const kept = yield* Effect.scoped(
        Effect.tap(state.staging("run-2"), (d) => state.write("pull-journal.json", JSON.stringify({ staging: d })))
      )
      expect(fs.existsSync(kept)).toBe(true)
      yield* state.sweep()
      expect(fs.existsSync(kept)).toBe(true)
      yield* state.remove("pull-journal.json")
      yield* state.sweep()
      expect(fs.existsSync(kept)).toBe(false)
    })
  )

  it.effect("reads what it wrote, and a missing file as undefined; a test may put another state in its place", () =>
    Effect.gen(function* () {
      const root = tempDir("project")
      const state = yield* stateOf(root)
      expect(yield* state.read("files-base.json")).toBeUndefined()
      yield* state.write("files-base.json", "{}")
      expect([yield* state.read("files-base.json"), (yield* state.stat("files-base.json"))?.[0]]).toEqual(["{}", 2])
      const other = yield* Effect.provideService(stateOf(root), FileState, { at: (p) => make(nodePath.join(p, "x")) })
      expect(other.dir).toBe(nodePath.join(root, "x", ".agentsync"))
    })
  )
})
