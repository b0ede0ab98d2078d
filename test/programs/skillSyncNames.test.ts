// Skill sync of a unit holding a name that is not UTF-8 (a Latin-1 name from an old archive) in a tool home:
// refused naming the folder and the name's bytes, with nothing committed upstream or written to another home.
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { defaultGlobals } from "../../src/cli/argv.js"
import { errorLine } from "../../src/cli/color.js"
import { failureDocument } from "../../src/cli/output.js"
import { ExitCode, exitCodeOf, messageLines } from "../../src/errors.js"
import { SkillSync } from "../../src/programs/skillSync.js"
import { git, isolateGit, tempRoot } from "../support/gitFixture.js"
import { bytePath, latin1, rawTree } from "../support/rawNames.js"
import { makeWorld, runIn } from "../support/skillWorld.js"

const top = tempRoot("skillnames")
isolateGit(top)
afterAll(() => fs.rmSync(top, { recursive: true, force: true }))
const GLOBALS = { ...defaultGlobals, color: "never" as const }

describe("skill sync of a name that is not UTF-8", () => {
  it.effect("in a deployed unit: refused naming the folder and the name; no home and no upstream changes", () => {
    const w = makeWorld(top)
    return runIn(
      w,
      Effect.gen(function* () {
        yield* w.install
        // A file a tool wrote with a Latin-1 name into the deployed unit at one home.
        fs.writeFileSync(bytePath(w.claude("skills/pdf"), latin1("résumé.md")), "# cv\n")
        const before = {
          claude: rawTree(w.env.AGENTSYNC_TOOL_HOME_CLAUDE),
          codex: rawTree(w.env.AGENTSYNC_TOOL_HOME_CODEX)
        }
        const remote = w.up.log()
        const runs: ReadonlyArray<
          Effect.Effect<unknown, { readonly _tag: string; readonly message: string }, SkillSync>
        > = [SkillSync.sync(), SkillSync.status()]
        for (const run of runs) {
          const got = yield* Effect.either(run)
          expect(Either.isLeft(got) && got.left._tag).toBe("InvalidInput")
          if (Either.isLeft(got)) {
            expect(exitCodeOf(got.left)).toBe(ExitCode.Failure)
            expect(got.left.message).toBe(
              `${w.claude("skills/pdf")}: the name "r\\xe9sum\\xe9.md" is not UTF-8: no skill path can hold it; rename it, or move it out of the folder`
            )
          }
        }
        expect(rawTree(w.env.AGENTSYNC_TOOL_HOME_CLAUDE)).toEqual(before.claude)
        expect(rawTree(w.env.AGENTSYNC_TOOL_HOME_CODEX)).toEqual(before.codex)
        expect(w.up.log()).toEqual(remote)
        // Renamed in UTF-8, the file goes upstream and to the other home.
        fs.renameSync(bytePath(w.claude("skills/pdf"), latin1("résumé.md")), w.claude("skills/pdf/résumé.md"))
        yield* SkillSync.sync()
        expect(fs.readFileSync(w.codex("skills/pdf/résumé.md"), "utf8")).toBe("# cv\n")
        expect(nodePath.basename(w.codex("skills/pdf/résumé.md"))).toBe("résumé.md")
      })
    )
  })

  it.effect("in a folder whose name holds control characters: the refusal shows that folder escaped too", () => {
    const w = makeWorld(top)
    return runIn(
      w,
      Effect.gen(function* () {
        yield* w.install
        const folder = w.claude("skills/pdf/a\nb\x1b[2J")
        fs.mkdirSync(folder)
        fs.writeFileSync(bytePath(folder, latin1("résumé.md")), "# cv\n")
        const got = yield* Effect.flip(SkillSync.sync())
        expect(got._tag).toBe("InvalidInput")
        // --json carries the folder as it is (JSON escapes its control characters itself) ...
        const reason =
          'the name "r\\xe9sum\\xe9.md" is not UTF-8: no skill path can hold it; rename it, or move it out of the folder'
        expect(JSON.parse(failureDocument(got)).error).toMatchObject({ file: folder, message: `${folder}: ${reason}` })
        // ... and the terminal's error line shows it escaped, on one line.
        expect(errorLine(GLOBALS, got._tag === "InvalidInput" ? messageLines(got) : [])).toBe(
          `error: ${w.claude("skills/pdf")}/a\\x0ab\\x1b[2J: ${reason}`
        )
      })
    )
  })

  it.effect(
    "in a commit of a git source: the source refused naming the path by its bytes, never deployed under another name",
    () => {
      const w = makeWorld(top)
      return runIn(
        w,
        Effect.gen(function* () {
          yield* w.install
          const before = {
            claude: rawTree(w.env.AGENTSYNC_TOOL_HOME_CLAUDE),
            codex: rawTree(w.env.AGENTSYNC_TOOL_HOME_CODEX)
          }
          // An upstream commit adding a file with a Latin-1 name to a deployed unit.
          w.up.commit({ "skills/pdf/notes.md": "# notes\n" })
          fs.writeFileSync(bytePath(nodePath.join(w.up.work, "skills/pdf"), latin1("résumé.md")), "# cv\n")
          git(w.up.work, "add", "-A")
          git(w.up.work, "commit", "-q", "-m", "a Latin-1 name")
          git(w.up.work, "push", "-q", "origin", "main")
          // The source cannot be used: the run says why (exit 1), and writes nothing of it.
          const ran = yield* SkillSync.sync()
          expect(ran.errors).toEqual([
            {
              source: "team",
              reason: expect.stringContaining('the path "skills/pdf/r\\xe9sum\\xe9.md" is not UTF-8')
            }
          ])
          expect(ran.applied).toEqual([])
          expect(rawTree(w.env.AGENTSYNC_TOOL_HOME_CLAUDE)).toEqual(before.claude)
          expect(rawTree(w.env.AGENTSYNC_TOOL_HOME_CODEX)).toEqual(before.codex)
        })
      )
    }
  )

  it.effect(
    "in a local: source or a new folder of a home: refused naming the folder and the name; nothing written",
    () => {
      const w = makeWorld(top)
      const dir = nodePath.join(w.root, "dotfiles")
      fs.mkdirSync(nodePath.join(dir, "skills/tool"), { recursive: true })
      fs.writeFileSync(nodePath.join(dir, "skills/tool/SKILL.md"), "a tool\n")
      fs.writeFileSync(bytePath(nodePath.join(dir, "skills/tool"), latin1("résumé.md")), "# cv\n")
      return runIn(
        w,
        Effect.gen(function* () {
          const local = yield* Effect.either(
            SkillSync.install({ uri: `local:${dir}`, name: "dots", tools: ["claude"] })
          )
          expect(Either.isLeft(local) && local.left.message).toBe(
            `uri: cannot install local:${dir}: ${nodePath.join(dir, "skills/tool")}: the name "r\\xe9sum\\xe9.md" is not UTF-8: no skill path can hold it; rename it, or move it out of the folder`
          )
          expect(fs.existsSync(w.env.AGENTSYNC_TOOL_HOME_CLAUDE)).toBe(false)
          // A skill folder a tool made in a home under a Latin-1 name, where the scan for new units looks.
          yield* w.install
          fs.mkdirSync(bytePath(w.claude("skills"), latin1("mémo")))
          fs.writeFileSync(bytePath(w.claude("skills"), latin1("mémo"), "SKILL.md"), "# memo\n")
          const before = { codex: rawTree(w.env.AGENTSYNC_TOOL_HOME_CODEX), remote: w.up.log() }
          const scanned = yield* Effect.either(SkillSync.sync())
          expect(Either.isLeft(scanned) && scanned.left.message).toBe(
            `${w.claude("skills")}: the name "m\\xe9mo" is not UTF-8: no skill path can hold it; rename it, or move it out of the folder`
          )
          expect({ codex: rawTree(w.env.AGENTSYNC_TOOL_HOME_CODEX), remote: w.up.log() }).toEqual(before)
        })
      )
    }
  )
  it.effect(
    "in the cached clone a layout is shown from: refused naming the path, exit 1, not shown as no layout",
    () => {
      const w = makeWorld(top)
      return runIn(
        w,
        Effect.gen(function* () {
          yield* w.install
          fs.writeFileSync(bytePath(nodePath.join(w.cache, "skills/pdf"), latin1("résumé.md")), "# cv\n")
          git(w.cache, "add", "-A")
          git(w.cache, "commit", "-q", "-m", "a Latin-1 name")
          const shown = yield* Effect.either(SkillSync.showLayout("team"))
          expect(Either.isLeft(shown) && shown.left._tag).toBe("InvalidInput")
          if (Either.isLeft(shown)) {
            expect(exitCodeOf(shown.left)).toBe(ExitCode.Failure)
            expect(shown.left.message).toContain('the path "skills/pdf/r\\xe9sum\\xe9.md" is not UTF-8')
          }
        })
      )
    }
  )
})
