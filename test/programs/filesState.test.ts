// The state a run keeps in .agentsync/ (base and hash cache), in the form this release writes and in the form
// the release before wrote: a project synced by an older client is read as it is, then rewritten in the new form.
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Console, Effect, type Redacted } from "effect"
import type { FilesOptions } from "../../src/programs/files.js"
import { keptText } from "../../src/stages/files/remote.js"
import { serverForFile } from "../server/support.js"
import { fileSync } from "../support/fileSync.js"
import { readKeptHead } from "../support/keptHead.js"
import { tempDirs } from "../support/tree.js"

const server = serverForFile("filesstate")

const tempDir = tempDirs("files-state")
const sample: Record<string, string> = {
  "agents/a/config.yaml": "id: a\nname: A\n",
  "agents/a/system_prompt.md": "You are A.\n",
  "skills/s/SKILL.md": "# S\n",
  "content/blog/hello.md": "---\ntitle: Hello\n---\nHi\n",
  "config/app.yaml": "x: 1\n"
}
/** A project whose files are older than the racy window (so the hash cache vouches for them). */
const project = () => {
  const root = tempDir("project")
  const past = new Date(Date.now() - 60_000)
  for (const [p, text] of Object.entries(sample)) {
    const full = nodePath.join(root, "services", p)
    fs.mkdirSync(nodePath.dirname(full), { recursive: true })
    fs.writeFileSync(full, text)
    fs.utimesSync(full, past, past)
  }
  return root
}
const statePath = (root: string, name: string) => nodePath.join(root, ".agentsync", name)
const readState = (root: string, name: string) => JSON.parse(fs.readFileSync(statePath(root, name), "utf8"))

const push = (root: string, token: Redacted.Redacted<string>, options: FilesOptions = {}) =>
  fileSync(server.url, root, token).push(options)

/** Rewrites the base and hash cache as the release before wrote them: one JSON object keyed by path each. */
const asOlderRelease = (root: string) => {
  const base = readState(root, "files-base.json")
  const cache = readState(root, "hash-cache.json")
  expect([base.version, cache.version]).toEqual([2, 2])
  const files = Object.fromEntries(base.paths.map((p: string, i: number) => [p, base.versions[i]]))
  const entries = Object.fromEntries(
    cache.paths.map((p: string, i: number) => [p, [cache.sizes[i], cache.mtimes[i], cache.sha256[i]]])
  )
  fs.writeFileSync(
    statePath(root, "files-base.json"),
    JSON.stringify({ version: 1, tenant: base.tenant, revision: base.revision, files })
  )
  fs.writeFileSync(statePath(root, "hash-cache.json"), JSON.stringify({ version: 1, root: cache.root, entries }))
}

describe("the kept base and hash cache", () => {
  it.effect("are written as lists in path order, and state kept by the release before is read, then rewritten", () =>
    Effect.gen(function* () {
      const t = yield* Effect.promise(() => server.createTenant("state"))
      const root = project()
      expect((yield* push(root, t.token)).actions).toEqual({ upload: 5 })
      const cache = readState(root, "hash-cache.json")
      expect(cache.paths).toEqual(Object.keys(sample).sort())
      expect(readState(root, "files-base.json").paths.length).toBe(5)

      asOlderRelease(root)
      // One file edited, one deleted: the older cache vouches for the other three, the older base carries the deletion.
      fs.writeFileSync(nodePath.join(root, "services", "config/app.yaml"), "x: 2\n")
      fs.rmSync(nodePath.join(root, "services", "skills/s/SKILL.md"))
      const r = yield* push(root, t.token, { delete: true })
      expect([r.actions, r.files_hashed]).toEqual([{ upload: 1, "delete-remote": 1 }, 1])
      expect([readState(root, "files-base.json").version, readState(root, "hash-cache.json").version]).toEqual([2, 2])
      expect(readState(root, "files-base.json").paths).toEqual(
        Object.keys(sample)
          .filter((p) => p !== "skills/s/SKILL.md")
          .sort()
      )
    })
  )

  it.effect("a cache whose lists do not line up is only a slower run: every file hashed again, nothing lost", () =>
    Effect.gen(function* () {
      const t = yield* Effect.promise(() => server.createTenant("state-damaged"))
      const root = project()
      yield* push(root, t.token)
      for (const damage of [
        (c: { paths: Array<string> }) => ({ ...c, paths: c.paths.slice(1) }),
        (c: { paths: Array<string> }) => ({ ...c, paths: [...c.paths].reverse() })
      ]) {
        fs.writeFileSync(statePath(root, "hash-cache.json"), JSON.stringify(damage(readState(root, "hash-cache.json"))))
        // Without the settled mark the run plans in full and asks the cache (from the mark it would hash only the
        // edited file and never read the cache).
        fs.rmSync(statePath(root, "files-settled.json"), { force: true })
        fs.appendFileSync(nodePath.join(root, "services", "config/app.yaml"), "# more\n")
        const r = yield* push(root, t.token)
        expect([r.actions, r.files_hashed]).toEqual([{ upload: 1 }, 5])
      }
    })
  )

  it.effect(
    "a push keeps the base and the new head at the revision the server answered, read back by the next run",
    () =>
      Effect.gen(function* () {
        const t = yield* Effect.promise(() => server.createTenant("state-pushed"))
        const root = project()
        yield* push(root, t.token)
        for (const text of ["x: 2\n", "x: 3\n"]) {
          fs.writeFileSync(nodePath.join(root, "services", "config/app.yaml"), text)
          const r = yield* push(root, t.token)
          const base = readState(root, "files-base.json")
          const head = readKeptHead(statePath(root, "remote-manifest.json"))
          expect([base.revision, head.version, head.revision]).toEqual([r.revision, 4, r.revision])
          expect(head.lines.map(([path]) => path)).toEqual(Object.keys(sample).sort())
          expect(base.paths).toEqual(Object.keys(sample).sort())
          // Spliced from the kept copy before the answer and finished with it: the same text as the head written whole.
          const again = keptText(head.url, {
            tenant: head.tenant,
            revision: r.revision!,
            checksum: head.checksum,
            entries: head.lines.map(([path, size, sha256]) => ({ path, size, sha256 }))
          })
          expect(fs.readFileSync(statePath(root, "remote-manifest.json"), "utf8")).toBe(again)
          // The next run takes the kept head (the server answers 304 to it) and finds nothing to do.
          const next = yield* push(root, t.token)
          expect([next.actions, next.remote_revision]).toEqual([{}, r.revision])
        }
      })
  )

  it.effect(
    "a hash cache that cannot be written does not fail a push or a pull of the header form: a line on stderr naming the file, the base and head kept",
    () =>
      Effect.gen(function* () {
        const t = yield* Effect.promise(() => server.createTenant("state-cache-unwritable"))
        const root = project()
        yield* push(root, t.token)
        // Where the cache goes, a folder: writing it fails (EISDIR). Without the settled mark the run plans in full,
        // reads the cache (none) and writes it.
        const cache = statePath(root, "hash-cache.json")
        fs.rmSync(cache)
        fs.mkdirSync(cache)
        fs.writeFileSync(nodePath.join(cache, "x"), "")
        fs.rmSync(statePath(root, "files-settled.json"), { force: true })
        fs.writeFileSync(nodePath.join(root, "services", "config/app.yaml"), "x: 2\n")
        const warnings: Array<string> = []
        // What the run says on stderr, as lines.
        const logger = <A, E, R>(run: Effect.Effect<A, E, R>) =>
          Console.consoleWith((console) =>
            Effect.withConsole(run, {
              ...console,
              error: (...args: ReadonlyArray<unknown>) => Effect.sync(() => void warnings.push(args.join(" ")))
            })
          )
        const r = yield* push(root, t.token).pipe(logger)
        expect([r.actions, r.files_hashed]).toEqual([{ upload: 1 }, 5])
        expect(readState(root, "files-base.json").revision).toBe(r.revision)
        expect(readKeptHead(statePath(root, "remote-manifest.json")).revision).toBe(r.revision)
        expect(warnings.some((w) => w.includes(cache))).toBe(true)
        expect(fs.statSync(cache).isDirectory()).toBe(true)
        // A pull of the header form (another machine's edit comes down) writes the cache too: the same warning.
        const other = tempDir("other")
        fs.mkdirSync(nodePath.join(other, "services"))
        yield* fileSync(server.url, other, t.token).pull()
        fs.writeFileSync(nodePath.join(other, "services", "config/app.yaml"), "x: 3\n")
        const pushed = yield* fileSync(server.url, other, t.token).push()
        fs.rmSync(statePath(root, "files-settled.json"), { force: true })
        warnings.length = 0
        const pulled = yield* fileSync(server.url, root, t.token).pull().pipe(logger)
        expect(pulled.remote_revision).toBe(pushed.revision)
        expect(fs.readFileSync(nodePath.join(root, "services", "config/app.yaml"), "utf8")).toBe("x: 3\n")
        expect(readState(root, "files-base.json").revision).toBe(pushed.revision)
        expect(warnings.some((w) => w.includes(cache))).toBe(true)
      })
  )
})
