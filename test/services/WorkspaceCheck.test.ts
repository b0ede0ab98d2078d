// Whether a services path is one: a typo or a stray folder is refused with what to do; a pull may start in an
// empty folder (or one holding only litter), since it deletes nothing where nothing is.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { afterAll } from "vitest"
import { checkServicesPath } from "../../src/services/WorkspaceCheck.js"

const root = mkdtempSync(join(tmpdir(), "agentsync-check-"))
afterAll(() => rmSync(root, { recursive: true, force: true }))

/** The reason the check gives for a services path under a project without agentsync.yaml, or "ok". */
const reason = (name: string, pull: boolean, files = !pull) =>
  Effect.match(checkServicesPath({ servicesPath: join(root, name), projectRoot: root, project: {} }, { pull, files }), {
    onFailure: (e) => e.reason,
    onSuccess: () => "ok"
  })

describe("checkServicesPath", () => {
  it.effect("names what to do for a path that is not there: for a file sync run, how a first pull starts it", () =>
    Effect.gen(function* () {
      for (const pull of [true, false]) {
        expect(yield* reason("missing", pull)).toMatch(
          /missing does not exist; for a first pull, create it \(mkdir \S*missing\) and pull again; otherwise pass --services DIR/
        )
      }
      // validate, local sync: no pull to speak of.
      expect(yield* reason("missing", false, false)).toMatch(
        /missing does not exist; pass --services DIR naming the tree \(agentsync init starts a new project\)$/
      )
      writeFileSync(join(root, "a-file"), "x")
      expect(yield* reason("a-file", true)).toMatch(/a-file is not a folder; pass --services DIR naming the tree/)
    })
  )

  it.effect("lets a pull start in an empty folder, or one holding only litter; nothing else starts there", () =>
    Effect.gen(function* () {
      mkdirSync(join(root, "empty"))
      mkdirSync(join(root, "litter"))
      writeFileSync(join(root, "litter/.DS_Store"), "x")
      mkdirSync(join(root, "litter/.git"))
      for (const name of ["empty", "litter"]) {
        expect(yield* reason(name, true)).toBe("ok")
        expect(yield* reason(name, false)).toMatch(
          /does not look like a project: .*; a pull may start in it as it is \(files pull, sync --pull\); otherwise pass --services DIR/
        )
      }
      // A folder holding something file sync would not carry is not one a pull starts in either.
      mkdirSync(join(root, "stray"))
      writeFileSync(join(root, "stray/notes.md"), "mine")
      for (const pull of [true, false]) {
        const said = yield* reason("stray", pull)
        expect(said).toMatch(/stray does not look like a project: .* no agentsync.yaml names it; pass --services DIR/)
        expect(said).not.toMatch(/a pull may start/)
      }
      // One of file sync's folders makes it a project for every command.
      mkdirSync(join(root, "stray/agents"))
      expect(yield* reason("stray", false)).toBe("ok")
    })
  )
})
