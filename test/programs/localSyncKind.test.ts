// A kind's local diff (AgentsLocalSync.diff and its siblings) asks LocalSync for that kind alone; an answer without it
// is a fault of the program, a defect named as the pure `held` names it.
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit } from "effect"
import {
  AgentsLocalSync,
  ContentLocalSync,
  type KindDiff,
  type LocalDiffReport,
  LocalSync
} from "../../src/programs/localSync.js"

/** A LocalSync whose diff answers with the kinds given (the sync is never called). */
const answering = (kinds: ReadonlyArray<KindDiff>) =>
  LocalSync.make({
    diff: () => Effect.succeed({ kinds, unsynced: [] } satisfies LocalDiffReport),
    sync: () => Effect.dieMessage("not called")
  })

describe("a kind's local diff", () => {
  it.effect("is the one kind LocalSync answers with", () =>
    Effect.gen(function* () {
      const agents: KindDiff = {
        kind: "agents",
        counts: { added: 0, modified: 0, removed: 0, unchanged: 2 },
        changes: [],
        errors: []
      }
      const diff = yield* AgentsLocalSync.diff().pipe(Effect.provideService(LocalSync, answering([agents])))
      expect(diff).toBe(agents)
    })
  )

  it.effect("dies naming the kind it lost track of when the answer lacks it", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(ContentLocalSync.diff().pipe(Effect.provideService(LocalSync, answering([]))))
      expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
      expect(Exit.isFailure(exit) ? Cause.pretty(exit.cause) : "").toContain("lost track of the local diff of content")
    })
  )
})
