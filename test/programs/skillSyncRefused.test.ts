import * as fs from "node:fs"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type { LayoutMapping } from "../../src/domain/skills/model.js"
import { SkillSync, type SyncReport } from "../../src/programs/skillSync.js"
import type { SkillStore } from "../../src/services/SkillStore.js"
import { git, isolateGit, tempRoot } from "../support/gitFixture.js"
import { addSecondSource, makeWorld, runIn, type World, write } from "../support/skillWorld.js"

const top = tempRoot("skillrefused")
isolateGit(top)
afterAll(() => fs.rmSync(top, { recursive: true, force: true }))

/** What a run decides from: each action with the fingerprints of its three sides (commit ids differ between worlds). */
const plan = (r: SyncReport) =>
  r.actions.map((a) => [a.unit, a.tool, a.direction, a.status, a.reason, a.home, a.repo, a.base].join(" "))

/** The lock without commit ids, which differ between two upstreams of the same files. */
const lockFiles = (w: World) =>
  JSON.stringify(JSON.parse((w.lockText() ?? "").replace(/^#.*\n/, "").replace(/"commit": "[0-9a-f]+",?/g, "")))

// Two ways a run refuses a git source after its fetch has moved the cache clone.
const refusals: ReadonlyArray<{
  readonly name: string
  readonly refuse: (w: World) => Effect.Effect<unknown, unknown, SkillSync | SkillStore>
  readonly fix: (w: World) => Effect.Effect<unknown, unknown, SkillSync | SkillStore>
}> = [
  {
    name: "a second source on the same home path (the whole run)",
    refuse: (w) =>
      Effect.gen(function* () {
        yield* addSecondSource(w, { "agents/reviewer.md": "another reviewer\n" })
        const e = yield* Effect.flip(SkillSync.sync())
        expect(e.message).toMatch(/both map to agents\/reviewer\.md/)
      }),
    fix: () => SkillSync.removeSource("second")
  },
  {
    name: "layout rules that map two units to one home path (the source)",
    refuse: () =>
      Effect.gen(function* () {
        const rules: ReadonlyArray<LayoutMapping> = [
          { glob: "skills/{n}/SKILL.md", repo: "skills/{n}", home: "skills/{n}" },
          { glob: "agents/{n}.md", repo: "agents/{n}.md", home: "skills/pdf/{n}.md" }
        ]
        yield* SkillSync.setLayout("team", rules)
        const r = yield* SkillSync.sync()
        expect(r.errors.map((e) => e.reason).join("\n")).toMatch(/agents\/reviewer\.md .*skills\/pdf/)
        expect(r.applied).toEqual([])
      }),
    fix: () => SkillSync.setLayout("team", undefined)
  }
]

describe("skill sync: a refused git source", () => {
  for (const { name, refuse, fix } of refusals) {
    it.effect(
      `refused for ${name}: its moved cache clone does not matter, the next run sees what it would have`,
      () => {
        // Twin machines with the same history; only `refused` has the refused run between the upstream change and the fix.
        const refused = makeWorld(top)
        const plain = makeWorld(top)
        const history = (w: World) =>
          Effect.gen(function* () {
            yield* w.install
            w.up.commit({ "agents/reviewer.md": "You review code, upstream.\n", "skills/new/SKILL.md": "new\n" })
            write(w.claude("skills/pdf/SKILL.md"), "edited at home\n")
          })
        return Effect.gen(function* () {
          yield* runIn(refused, history(refused))
          yield* runIn(plain, history(plain))
          const headBefore = git(refused.cache, "rev-parse", "HEAD")
          yield* runIn(refused, refuse(refused))
          // The refused run did move the clone to the new upstream commit (which is why this can matter at all).
          expect(git(refused.cache, "rev-parse", "HEAD")).not.toBe(headBefore)
          expect(git(refused.cache, "rev-parse", "HEAD")).toBe(git(refused.up.work, "rev-parse", "HEAD"))
          yield* runIn(refused, fix(refused))

          const dry = (w: World) => runIn(w, SkillSync.sync({ dryRun: true }))
          expect(plan(yield* dry(refused))).toEqual(plan(yield* dry(plain)))
          const a = yield* runIn(refused, SkillSync.sync())
          const b = yield* runIn(plain, SkillSync.sync())
          expect(plan(a)).toEqual(plan(b))
          expect(a.errors).toEqual([])
          const sa = refused.snapshot()
          const sb = plain.snapshot()
          expect([sa.claude, sa.codex]).toEqual([sb.claude, sb.codex])
          expect(lockFiles(refused)).toEqual(lockFiles(plain))
          expect(refused.up.read("skills/pdf/SKILL.md")).toBe("edited at home\n")
          expect(plain.up.read("skills/pdf/SKILL.md")).toBe("edited at home\n")
        })
      }
    )
  }
})
