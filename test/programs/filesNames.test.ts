// Names that are not UTF-8 in the services tree (a Latin-1 name from an old archive), through file sync on the real
// server: push, pull and diff refuse the run naming the folder and the name's bytes, with nothing sent, written or
// deleted on either side; a name the ignore file leaves out is no obstacle.
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { ExitCode, exitCodeOf } from "../../src/errors.js"
import { run, serverForFile } from "../server/support.js"
import { fileSync } from "../support/fileSync.js"
import { place } from "../support/gitFixture.js"
import { bytePath, latin1, rawTree } from "../support/rawNames.js"
import { tempDirs } from "../support/tree.js"

const server = serverForFile("filenames")

const tempDir = tempDirs("filenames")
const services = (root: string) => nodePath.join(root, "services")

const project = (files: Record<string, string> = {}) => {
  const root = tempDir("project")
  fs.writeFileSync(nodePath.join(root, "agentsync.yaml"), "services: services\n")
  fs.mkdirSync(services(root))
  for (const [p, text] of Object.entries(files)) place(nodePath.join(services(root), p), text)
  return root
}

const at = (root: string, folder: string, name: Buffer, ...below: ReadonlyArray<string>) =>
  bytePath(nodePath.join(services(root), folder), name, ...below)
const manifest = (token: Parameters<typeof fileSync>[2]) =>
  Effect.promise(() => run({ endpoint: { mode: "direct", origin: server.url }, token }, (c) => c.manifest()))

const refused = (e: Either.Either<unknown, { readonly _tag: string; readonly message: string }>) => {
  expect(Either.isLeft(e)).toBe(true)
  if (Either.isRight(e)) return ""
  expect(e.left._tag).toBe("InvalidInput")
  expect(exitCodeOf(e.left)).toBe(ExitCode.Failure)
  return e.left.message
}

describe("names that are not UTF-8 in the services tree", () => {
  it.live(
    "push, pull and diff refuse the run naming the folder and the name's bytes; nothing moves on either side",
    () =>
      Effect.gen(function* () {
        const t = yield* Effect.promise(() => server.createTenant("names-not-utf8"))
        const one = project({ "skills/a/café.md": "# café\n", "skills/a/SKILL.md": "# a\n" })
        yield* fileSync(server.url, one, t.token).push()
        const head = yield* manifest(t.token)
        // The same file extracted again by a tool that writes Latin-1 names: a push that left the name out would delete
        // skills/a/café.md on the server.
        fs.renameSync(nodePath.join(services(one), "skills/a/café.md"), at(one, "skills/a", latin1("café.md")))
        for (const go of [
          fileSync(server.url, one, t.token).pushEither(),
          Effect.either(fileSync(server.url, one, t.token).diff())
        ]) {
          const message = refused(yield* go)
          expect(message).toContain(`${nodePath.join(services(one), "skills/a")}`)
          expect(message).toContain('the name "caf\\xe9.md" is not UTF-8')
          expect(message).toMatch(/rename it, or leave it out in \.agentsyncignore/)
        }
        const after = yield* manifest(t.token)
        expect(after.revision).toBe(head.revision)
        expect(after.entries.map((e) => e.path)).toEqual(["skills/a/SKILL.md", "skills/a/café.md"])

        // A pull into a tree holding such a folder (next to what it would write): refused before anything is written.
        const two = project({ "agents/x.md": "# x\n" })
        fs.mkdirSync(at(two, "skills", latin1("vieux-é")), { recursive: true })
        fs.writeFileSync(at(two, "skills", latin1("vieux-é"), "SKILL.md"), "# old\n")
        const before = rawTree(services(two))
        expect(before).toEqual({ "agents/x.md": "# x\n", "skills/vieux-\\xe9/SKILL.md": "# old\n" })
        const message = refused(yield* fileSync(server.url, two, t.token).pullEither({ delete: true }))
        expect(message).toContain('the name "vieux-\\xe9" is not UTF-8')
        expect(rawTree(services(two))).toEqual(before)

        // Left out in the ignore file (`*` matches the byte), both runs go, and the name stays as it is.
        fs.writeFileSync(nodePath.join(services(two), ".agentsyncignore"), "skills/vieux-*/\n")
        yield* fileSync(server.url, two, t.token).pull()
        expect(rawTree(services(two))).toEqual({
          ...before,
          ".agentsyncignore": "skills/vieux-*/\n",
          "skills/a/SKILL.md": "# a\n",
          "skills/a/café.md": "# café\n"
        })
        // On the pushing side the file renamed back: the push goes, with nothing to send.
        fs.renameSync(at(one, "skills/a", latin1("café.md")), nodePath.join(services(one), "skills/a/café.md"))
        const pushed = yield* fileSync(server.url, one, t.token).push()
        expect(pushed.actions).toEqual({})
        expect((yield* manifest(t.token)).revision).toBe(head.revision)
      })
  )
})
