// A change of the executable bit alone travels without the file's bytes, on the real server over a real database:
// the push sends no content, the pull asks the server for nothing and changes the mode in place, keeping the old
// file (and its mode) in the backup; a killed pull's journal finishes the chmod on the next run.
import * as fs from "node:fs"
import * as nodePath from "node:path"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { describe, expect, it } from "@effect/vitest"
import { Effect, type Redacted } from "effect"
import { recoverPull } from "../../src/stages/files/apply.js"
import { serverForFile } from "../server/support.js"
import { fileSync } from "../support/fileSync.js"
import { tempDirs, treeFiles } from "../support/tree.js"

/** Every request the server received, as `METHOD path`, recorded as it arrives (before it is answered). */
const requests: Array<string> = []
const recording = HttpMiddleware.make((app) =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
    requests.push(`${request.method} ${request.url}`)
    return app
  })
)
const server = serverForFile("filemodeonly", { middleware: recording })

const tempDir = tempDirs("filemodeonly")
const SCRIPT = "skills/s/scripts/run.sh"
// Large enough that downloading it again would show.
const script = `#!/bin/sh\n${"echo ran\n".repeat(20_000)}`

const services = (root: string) => nodePath.join(root, "services")
const full = (root: string, p: string) => nodePath.join(services(root), p)
const mode = (path: string) => fs.statSync(path).mode & 0o7777
/** What the umask leaves of a mode: a pulled file gets the mode git's checkout would give it. */
const under = (m: number) => {
  const probe = nodePath.join(tempDir("umask"), "probe")
  fs.writeFileSync(probe, "", { mode: m })
  return mode(probe)
}
const sync = (root: string, token: Redacted.Redacted<string>) => fileSync(server.url, root, token)
/** The downloads (of the whole tree or of selected paths) asked of the server since `from`. */
const downloads = (from: number) => requests.slice(from).filter((r) => /\/files(\/select)?(\?|$)/.test(r))

describe("a mode-only change", () => {
  it.live("is pushed without its bytes and pulled without a download: a chmod in place, the old mode backed up", () =>
    Effect.gen(function* () {
      const t = yield* Effect.promise(() => server.createTenant("mode-only"))
      const one = tempDir("one")
      fs.mkdirSync(nodePath.dirname(full(one, SCRIPT)), { recursive: true })
      fs.writeFileSync(full(one, SCRIPT), script, { mode: 0o644 })
      fs.writeFileSync(full(one, "skills/s/SKILL.md"), "# S\n")
      yield* sync(one, t.token).push()
      const two = tempDir("two")
      fs.mkdirSync(services(two))
      let from = requests.length
      yield* sync(two, t.token).pull()
      // The first pull downloads: the count sees a download when there is one.
      expect(downloads(from)).toHaveLength(1)
      expect(mode(full(two, SCRIPT))).toBe(under(0o644))
      const inode = fs.statSync(full(two, SCRIPT)).ino

      fs.chmodSync(full(one, SCRIPT), 0o755)
      const pushed = yield* sync(one, t.token).push()
      expect([pushed.files_sent, pushed.actions]).toEqual([0, { upload: 1 }])

      from = requests.length
      const pulled = yield* sync(two, t.token).pull()
      expect(pulled.actions).toEqual({ write: 1 })
      // Nothing asked of the server but the manifest: no download, so no byte of the file.
      expect(downloads(from)).toEqual([])
      expect(requests.slice(from).every((r) => r.includes("/files/manifest"))).toBe(true)
      expect(mode(full(two, SCRIPT))).toBe(under(0o755))
      // Changed in place: the same file, its bytes untouched.
      expect(fs.statSync(full(two, SCRIPT)).ino).toBe(inode)
      expect(treeFiles(services(two))).toEqual(treeFiles(services(one)))
      // The backup holds the file as it was, its mode with it; no staging folder or journal is left.
      expect(pulled.backup).toBeDefined()
      expect(mode(nodePath.join(pulled.backup!, SCRIPT))).toBe(under(0o644))
      expect(fs.readFileSync(nodePath.join(pulled.backup!, SCRIPT), "utf8")).toBe(script)
      const state = fs.readdirSync(nodePath.join(two, ".agentsync"))
      expect(state.filter((n) => n.startsWith("staging-") || n === "pull-journal.json")).toEqual([])
      // Both sides agree now.
      expect((yield* sync(two, t.token).diff()).counts.modified).toBe(0)
      expect((yield* sync(two, t.token).pull()).actions).toEqual({})
    })
  )

  it.effect("left in a killed pull's journal, is finished by the next run, its old mode kept once", () =>
    Effect.gen(function* () {
      const root = tempDir("killed")
      fs.mkdirSync(nodePath.dirname(full(root, SCRIPT)), { recursive: true })
      fs.writeFileSync(full(root, SCRIPT), script, { mode: 0o644 })
      const state = nodePath.join(root, ".agentsync")
      const staging = nodePath.join(state, "staging-x")
      const backup = nodePath.join(state, "backups", "x")
      fs.mkdirSync(staging, { recursive: true })
      // Killed after the journal was written and the copy kept, before the chmod.
      fs.mkdirSync(nodePath.dirname(nodePath.join(backup, SCRIPT)), { recursive: true })
      fs.copyFileSync(full(root, SCRIPT), nodePath.join(backup, SCRIPT))
      const journal = {
        staging,
        backup,
        servicesPath: services(root),
        write: [],
        delete: [],
        chmod: [{ path: SCRIPT, executable: true }]
      }
      fs.writeFileSync(nodePath.join(state, "pull-journal.json"), JSON.stringify(journal))
      expect(yield* recoverPull(root)).toBe(true)
      expect(mode(full(root, SCRIPT))).toBe(under(0o755))
      expect(fs.readdirSync(nodePath.join(backup, "skills/s/scripts"))).toEqual(["run.sh"])
      expect(mode(nodePath.join(backup, SCRIPT))).toBe(under(0o644))
      expect(fs.existsSync(staging)).toBe(false)
      expect(yield* recoverPull(root)).toBe(false)
    })
  )
})
