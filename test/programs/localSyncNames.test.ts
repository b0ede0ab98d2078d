// Local sync of a tree holding a name that is not UTF-8 (a Latin-1 name from an old archive) in an item folder:
// refused naming the folder and the name's bytes, in both directions, with nothing committed or written.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { it } from "@effect/vitest"
import { Effect, Either, Redacted } from "effect"
import { afterAll, describe, expect } from "vitest"
import { ExitCode, exitCodeOf } from "../../src/errors.js"
import { LocalSync, type LocalSyncOptions } from "../../src/programs/localSync.js"
import { make as makeWorkspace } from "../../src/services/Workspace.js"
import { query, scopedDatabase } from "../support/pg.js"
import { bytePath, latin1, rawTree } from "../support/rawNames.js"

const root = mkdtempSync(join(tmpdir(), "agentsync-lsnames-"))
afterAll(() => rmSync(root, { recursive: true, force: true }))

const sync = (url: string, services: string, options: LocalSyncOptions) =>
  Effect.either(LocalSync.sync(options)).pipe(
    Effect.provide(
      LocalSync.layer({ servicesPath: services, projectRoot: dirname(services), databaseUrl: Redacted.make(url) })
    )
  )

const put = (services: string, path: string, text: string) => {
  mkdirSync(dirname(join(services, path)), { recursive: true })
  writeFileSync(join(services, path), text)
}

const slugs = (url: string) => Effect.promise(() => query(url, "SELECT slug FROM contents ORDER BY slug"))

describe("local sync of a tree with a name that is not UTF-8", () => {
  it.scoped("refuses both directions naming the folder and the name; nothing is committed or written", () =>
    Effect.gen(function* () {
      const url = yield* scopedDatabase("lsnames")
      const src = join(root, "src", "services")
      put(src, "content/docs/a.md", "---\ntitle: A\nslug: a\n---\n\nA.\n")
      expect(Either.isRight(yield* sync(url, src, { direction: "ToDatabase", kinds: ["content"] }))).toBe(true)
      // A page extracted by a tool that writes Latin-1 names, beside the one synced.
      writeFileSync(bytePath(join(src, "content/docs"), latin1("café.md")), "---\ntitle: Café\nslug: cafe\n---\n")
      const refused = (e: Either.Either<unknown, { readonly _tag: string; readonly message: string }>) => {
        expect(Either.isLeft(e) && e.left._tag).toBe("InvalidInput")
        if (Either.isLeft(e)) {
          expect(exitCodeOf(e.left)).toBe(ExitCode.Failure)
          expect(e.left.message).toContain(join(src, "content/docs"))
          expect(e.left.message).toContain('the name "caf\\xe9.md" is not UTF-8')
        }
      }
      refused(yield* sync(url, src, { direction: "ToDatabase", kinds: ["content"] }))
      expect(yield* slugs(url)).toEqual([{ slug: "a" }])
      const before = rawTree(src)
      refused(yield* sync(url, src, { direction: "ToDisk", kinds: ["content"] }))
      expect(rawTree(src)).toEqual(before)
    })
  )

  it.scoped(
    "judges only what it reads: such a name in a folder it leaves to file sync, or of a kind not chosen, is no obstacle",
    () =>
      Effect.gen(function* () {
        const url = yield* scopedDatabase("lsnamesleft")
        const src = join(root, "left", "services")
        put(src, "content/docs/a.md", "---\ntitle: A\nslug: a\n---\n\nA.\n")
        put(src, "config/app.yaml", "a: 1\n")
        put(src, "agents/helper.md", "---\nname: helper\n---\nHelps.\n")
        // File sync's folders (config/, a folder under hooks/) and an agent's folder, synced here only with agents.
        writeFileSync(bytePath(join(src, "config"), latin1("réglages.yaml")), "b: 2\n")
        mkdirSync(bytePath(join(src, "hooks"), latin1("vieux-été")), { recursive: true })
        writeFileSync(bytePath(join(src, "hooks"), latin1("vieux-été"), "run.sh"), "echo\n")
        writeFileSync(bytePath(join(src, "agents"), latin1("café.md")), "---\nname: cafe\n---\n")
        const done = yield* sync(url, src, { direction: "ToDatabase", kinds: ["content"] })
        expect(Either.isRight(done)).toBe(true)
        expect(yield* slugs(url)).toEqual([{ slug: "a" }])
        const before = rawTree(src)
        expect(Either.isRight(yield* sync(url, src, { direction: "ToDisk", kinds: ["content"] }))).toBe(true)
        expect(rawTree(src)).toEqual(before)
        // The agents are read when chosen: the name there is refused, naming it.
        const agents = yield* sync(url, src, { direction: "ToDatabase", kinds: ["agents"] })
        expect(Either.isLeft(agents) && agents.left.message).toContain('the name "caf\\xe9.md" is not UTF-8')
      })
  )

  it.effect("validate's reading of the tree refuses such a name only among the item files it parses", () =>
    Effect.gen(function* () {
      const src = join(root, "validate", "services")
      put(src, "skills/pdf/SKILL.md", "---\nname: pdf\ndescription: PDFs\n---\nFill.\n")
      mkdirSync(join(src, "config"), { recursive: true })
      writeFileSync(bytePath(join(src, "config"), latin1("réglages.yaml")), "b: 2\n")
      mkdirSync(bytePath(join(src, "plugins"), latin1("données")), { recursive: true })
      writeFileSync(bytePath(join(src, "plugins"), latin1("données"), "x.json"), "{}\n")
      const project = yield* makeWorkspace(src).readProject()
      expect(project.skills.map((x) => x.id)).toEqual(["pdf"])
      // Beside a skill, the file is read as the skill's: refused, naming the folder and the bytes.
      writeFileSync(bytePath(join(src, "skills/pdf"), latin1("notes-é.md")), "n\n")
      const refused = yield* Effect.flip(makeWorkspace(src).readProject())
      expect(refused.message).toContain(join(src, "skills/pdf"))
      expect(refused.message).toContain('the name "notes-\\xe9.md" is not UTF-8')
    })
  )
})
