import * as fs from "node:fs"
import * as nodePath from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer, type Redacted } from "effect"
import { CurrentConfig, SyncConfig } from "../../src/config.js"
import { FileSyncService, type FilesOptions, layer as fileSyncLayer } from "../../src/programs/files.js"
import { make as makeRunStatus, RunStatus } from "../../src/services/RunStatus.js"
import { layer as clientLayer } from "../../src/services/SyncApi.js"
import { serverForFile } from "../server/support.js"
import { tempDirs, treeFiles } from "../support/tree.js"

const server = serverForFile("files")

const tempDir = tempDirs("files")

const project = (files: Record<string, string> = {}) => {
  const root = tempDir("project")
  write(root, files)
  return root
}
const write = (root: string, files: Record<string, string>) => {
  for (const [p, text] of Object.entries(files)) {
    const full = nodePath.join(root, "services", p)
    fs.mkdirSync(nodePath.dirname(full), { recursive: true })
    fs.writeFileSync(full, text)
  }
}
const tree = (root: string) => treeFiles(nodePath.join(root, "services"))

/** The file sync service of the project at `root`, on the test server as `token`. */
const fileSync = (root: string, token: Redacted.Redacted<string>) =>
  fileSyncLayer.pipe(
    Layer.provide(
      clientLayer({
        endpoint: { mode: "direct", origin: server.url },
        token,
        retry: { maxRetries: 1, base: "10 millis", factor: 2, cap: "20 millis" }
      })
    ),
    Layer.provide(
      Layer.succeed(
        CurrentConfig,
        new SyncConfig({
          projectRoot: root,
          servicesPath: nodePath.join(root, "services"),
          directUrl: server.url,
          token
        })
      )
    )
  )

const sync = (root: string, token: Redacted.Redacted<string>) => {
  const layer = fileSync(root, token)
  const go = <A, E>(f: (s: typeof FileSyncService.Service) => Effect.Effect<A, E>) =>
    Effect.flatMap(FileSyncService, f).pipe(Effect.provide(layer))
  const either = <A, E>(f: (s: typeof FileSyncService.Service) => Effect.Effect<A, E>) => Effect.either(go(f))
  return {
    diff: () => go((s) => s.diff()),
    push: (o: FilesOptions = {}) => go((s) => s.push(o)),
    pull: (o: FilesOptions = {}) => go((s) => s.pull(o)),
    pushEither: (o: FilesOptions = {}) => either((s) => s.push(o)),
    pullEither: (o: FilesOptions = {}) => either((s) => s.pull(o))
  }
}

const sample = {
  "agents/a/config.yaml": "id: a\nname: A\n",
  "agents/a/system_prompt.md": "You are A.\n",
  "skills/s/SKILL.md": "# S\n",
  "content/blog/hello.md": "---\ntitle: Hello\n---\nHi\n",
  "config/app.yaml": "x: 1\n"
}

describe("FileSyncService", () => {
  it.live("records where the run stands in its caller's run status, not in the one in place where it was built", () =>
    Effect.gen(function* () {
      const t = yield* Effect.promise(() => server.createTenant("status-owner"))
      const root = project(sample)
      const [builder, caller] = [makeRunStatus(), makeRunStatus()]
      const built = yield* Layer.build(fileSync(root, t.token).pipe(Layer.provide(Layer.succeed(RunStatus, builder))))
      yield* Effect.flatMap(FileSyncService, (s) => s.push()).pipe(
        Effect.provide(built),
        Effect.provideService(RunStatus, caller)
      )
      expect(caller.get()).toMatch(/^push: /)
      expect(builder.get()).toBeUndefined()
    }).pipe(Effect.scoped)
  )

  it.live(
    "push, edit, push, pull into a fresh project gives an identical tree; a no-change push reads and sends nothing",
    () =>
      Effect.gen(function* () {
        const t = yield* Effect.promise(() => server.createTenant("roundtrip"))
        const one = project(sample)
        const first = yield* sync(one, t.token).push()
        expect(first.actions).toEqual({ upload: 5 })
        expect(first.files_sent).toBe(5)
        // Backdate so the hash cache may vouch for the files (it skips files modified within the last seconds).
        const past = new Date(Date.now() - 60_000)
        for (const p of Object.keys(sample)) fs.utimesSync(nodePath.join(one, "services", p), past, past)
        yield* sync(one, t.token).push()
        const idle = yield* sync(one, t.token).push()
        expect(idle.bytes_sent).toBe(0)
        expect(idle.files_hashed).toBe(0)
        expect(idle.revision).toBe(idle.remote_revision)
        write(one, { "agents/a/system_prompt.md": "You are A, edited.\n" })
        const second = yield* sync(one, t.token).push()
        expect(second.files_sent).toBe(1)
        expect(second.files.map((f) => [f.path, f.status, f.action])).toEqual([
          ["agents/a/system_prompt.md", "Modified", "upload"]
        ])
        const two = project()
        const pulled = yield* sync(two, t.token).pull()
        expect(pulled.actions).toEqual({ write: 5 })
        expect(tree(two)).toEqual(tree(one))
        const diff = yield* sync(two, t.token).diff()
        expect(diff.counts).toEqual({ added: 0, modified: 0, removed: 0, unchanged: 5 })
      })
  )

  it.live(
    "asks for the remote head conditionally: the copy kept after a push or pull is used while the head stays, never after it moves",
    () =>
      Effect.gen(function* () {
        const t = yield* Effect.promise(() => server.createTenant("kept-head"))
        const one = project(sample)
        expect((yield* sync(one, t.token).push()).remote_manifest).toBe("downloaded")
        // The push itself recorded the head it created: the next run gets a 304.
        const idle = yield* sync(one, t.token).push()
        expect([idle.remote_manifest, idle.actions]).toEqual(["cached", {}])
        const two = project()
        expect((yield* sync(two, t.token).pull()).remote_manifest).toBe("downloaded")
        expect((yield* sync(two, t.token).diff()).remote_manifest).toBe("cached")
        // Another client moves the head: the kept copy is stale and the whole manifest comes again.
        write(two, { "config/app.yaml": "x: 2\n" })
        yield* sync(two, t.token).push()
        const pulled = yield* sync(one, t.token).pull()
        expect([pulled.remote_manifest, pulled.actions]).toEqual(["downloaded", { write: 1 }])
        expect(tree(one)).toEqual(tree(two))
        // A damaged copy is only a slower run: its lines no longer match its checksum, so it is not used.
        const kept = nodePath.join(one, ".agentsync", "remote-manifest.json")
        fs.writeFileSync(
          kept,
          fs.readFileSync(kept, "utf8").replace(/\0(\d+)\0/, (_, n) => `\0${Number(n) + 1}\0`)
        )
        const after = yield* sync(one, t.token).diff()
        expect([after.remote_manifest, after.counts]).toEqual([
          "downloaded",
          { added: 0, modified: 0, removed: 0, unchanged: 5 }
        ])
      })
  )

  it.live("keeps the recorded base per tenant: a project pushed to one tenant pushes everything to another", () =>
    Effect.gen(function* () {
      const first = yield* Effect.promise(() => server.createTenant("base-one"))
      const second = yield* Effect.promise(() => server.createTenant("base-two"))
      const root = project(sample)
      yield* sync(root, first.token).push()
      const other = yield* sync(root, second.token).push()
      expect(other.actions).toEqual({ upload: 5 })
    })
  )

  it.live("a dry run changes nothing, state files included", () =>
    Effect.gen(function* () {
      const t = yield* Effect.promise(() => server.createTenant("dry"))
      const root = project(sample)
      const plan = yield* sync(root, t.token).push({ dryRun: true })
      expect(plan.actions).toEqual({ upload: 5 })
      expect(fs.readdirSync(nodePath.join(root)).includes(".agentsync")).toBe(false)
      const after = yield* sync(root, t.token).diff()
      expect(after.remote_revision).toBeNull()
    })
  )

  it.live("does not revert a file another client changed: it is skipped, not pushed", () =>
    Effect.gen(function* () {
      const t = yield* Effect.promise(() => server.createTenant("threeway"))
      const a = project(sample)
      yield* sync(a, t.token).push()
      const b = project()
      yield* sync(b, t.token).pull()
      write(a, { "config/app.yaml": "x: 2\n" })
      yield* sync(a, t.token).push()
      write(b, { "skills/s/SKILL.md": "# S from b\n" })
      const fromB = yield* sync(b, t.token).push()
      expect(Object.fromEntries(fromB.files.map((f) => [f.path, f.action]))).toEqual({
        "config/app.yaml": "skip",
        "skills/s/SKILL.md": "upload"
      })
      const fresh = project()
      yield* sync(fresh, t.token).pull()
      expect(tree(fresh)).toMatchObject({ "config/app.yaml": "x: 2\n", "skills/s/SKILL.md": "# S from b\n" })
    })
  )

  it.live("a pull over a local edit of the same file is a Conflict; --force takes the remote and keeps a backup", () =>
    Effect.gen(function* () {
      const t = yield* Effect.promise(() => server.createTenant("pullconflict"))
      const a = project(sample)
      yield* sync(a, t.token).push()
      const b = project()
      yield* sync(b, t.token).pull()
      write(a, { "config/app.yaml": "x: remote\n" })
      yield* sync(a, t.token).push()
      write(b, { "config/app.yaml": "x: local\n" })
      const refused = yield* sync(b, t.token).pullEither()
      expect(Either.isLeft(refused) && refused.left._tag).toBe("Conflict")
      expect(tree(b)).toMatchObject({ "config/app.yaml": "x: local\n" })
      const forced = yield* sync(b, t.token).pull({ force: true })
      expect(tree(b)).toMatchObject({ "config/app.yaml": "x: remote\n" })
      expect(fs.readFileSync(nodePath.join(forced.backup!, "config/app.yaml"), "utf8")).toBe("x: local\n")
    })
  )

  it.live(
    "carries deletions only with --delete, and refuses to delete more than half of the tree without --force",
    () =>
      Effect.gen(function* () {
        const t = yield* Effect.promise(() => server.createTenant("deletes"))
        const a = project(sample)
        yield* sync(a, t.token).push()
        fs.rmSync(nodePath.join(a, "services", "config"), { recursive: true })
        const kept = yield* sync(a, t.token).push()
        expect(kept.actions).toEqual({ skip: 1 })
        const one = yield* sync(a, t.token).push({ delete: true })
        expect(one.actions).toEqual({ "delete-remote": 1 })
        fs.rmSync(nodePath.join(a, "services", "agents"), { recursive: true })
        fs.rmSync(nodePath.join(a, "services", "skills"), { recursive: true })
        const refused = yield* sync(a, t.token).pushEither({ delete: true })
        expect(Either.isLeft(refused) && refused.left.message).toMatch(/refusing to delete 3 of 4 files/)
        yield* sync(a, t.token).push({ delete: true, force: true })
        const b = project()
        yield* sync(b, t.token).pull()
        expect(Object.keys(tree(b))).toEqual(["content/blog/hello.md"])
      })
  )
})

describe("the settled mark", () => {
  const state = (root: string, name: string) => nodePath.join(root, ".agentsync", name)
  const exists = (p: string) => fs.existsSync(p)
  /** Makes every file of the tree older than the racy window, as a real tree is. */
  const age = (root: string, paths: ReadonlyArray<string>) => {
    const past = new Date(Date.now() - 60_000)
    for (const p of paths) fs.utimesSync(nodePath.join(root, "services", p), past, past)
  }

  it.live(
    "answers a no-change run without the hash cache, the base or the kept manifest, with the full run's report",
    () =>
      Effect.gen(function* () {
        const t = yield* Effect.promise(() => server.createTenant("settled"))
        const root = project(sample)
        age(root, Object.keys(sample))
        yield* sync(root, t.token).push()
        expect(exists(state(root, "files-settled.json"))).toBe(true)
        // Without the mark, the same run reads the cache and the kept manifest: their absence would show.
        fs.rmSync(state(root, "hash-cache.json"))
        fs.rmSync(state(root, "remote-manifest.json"))
        const settled = yield* sync(root, t.token).push()
        expect([settled.files_hashed, settled.remote_manifest, settled.counts.unchanged]).toEqual([0, "cached", 5])
        expect(exists(state(root, "hash-cache.json"))).toBe(false)
        fs.rmSync(state(root, "files-settled.json"))
        const full = yield* sync(root, t.token).push()
        expect(full.files_hashed).toBe(5)
        expect(exists(state(root, "files-settled.json"))).toBe(true)
        // Both runs say the same (the full one re-read the files the cache no longer vouched for).
        expect({ ...settled, files_hashed: 5, remote_manifest: "downloaded" }).toEqual(full)
        expect(yield* sync(root, t.token).pull()).toEqual({
          ...settled,
          command: "pull",
          bytes_sent: undefined,
          files_sent: undefined
        })
      })
  )

  it.live("answers a no-change diff too, and a diff after an edit names the edit", () =>
    Effect.gen(function* () {
      const t = yield* Effect.promise(() => server.createTenant("settled-diff"))
      const root = project(sample)
      age(root, Object.keys(sample))
      yield* sync(root, t.token).push()
      fs.rmSync(state(root, "hash-cache.json"))
      const settled = yield* sync(root, t.token).diff()
      expect([settled.command, settled.files_hashed, settled.counts.unchanged, settled.files]).toEqual([
        "diff",
        0,
        5,
        []
      ])
      expect(exists(state(root, "hash-cache.json"))).toBe(false)
      fs.writeFileSync(nodePath.join(root, "services", "skills/s/SKILL.md"), "# T\n")
      const edited = yield* sync(root, t.token).diff()
      expect(edited.counts).toEqual({ added: 0, modified: 1, removed: 0, unchanged: 4 })
      expect(edited.files.map((f) => f.path)).toEqual(["skills/s/SKILL.md"])
    })
  )

  it.live("is void after any change: a local edit of the same size, a remote push, a rewritten base, a racy tree", () =>
    Effect.gen(function* () {
      const t = yield* Effect.promise(() => server.createTenant("settled-void"))
      const a = project(sample)
      age(a, Object.keys(sample))
      yield* sync(a, t.token).push()
      // Same size, new mtime: the listing differs, the file is hashed and sent.
      write(a, { "config/app.yaml": "x: 9\n" })
      const edited = yield* sync(a, t.token).push()
      expect([edited.actions, edited.files_sent]).toEqual([{ upload: 1 }, 1])
      // Edited in an earlier tick than the listing's stamp: the mark holds for the tree as pushed.
      expect(exists(state(a, "files-settled.json"))).toBe(true)
      // Stamped at or after the listing's stamp (here: ahead of it), the file could change again unseen: no mark.
      write(a, { "config/app.yaml": "x: 8\n" })
      const ahead = new Date(Date.now() + 60_000)
      fs.utimesSync(nodePath.join(a, "services", "config/app.yaml"), ahead, ahead)
      const racy = yield* sync(a, t.token).push()
      expect([racy.actions, racy.files_sent]).toEqual([{ upload: 1 }, 1])
      expect(exists(state(a, "files-settled.json"))).toBe(false)
      age(a, Object.keys(sample))
      yield* sync(a, t.token).push()
      expect(exists(state(a, "files-settled.json"))).toBe(true)
      // Another client moves the head: no 304, the change is pulled.
      const b = project()
      yield* sync(b, t.token).pull()
      write(b, { "skills/s/SKILL.md": "# S, edited\n" })
      yield* sync(b, t.token).push()
      const pulled = yield* sync(a, t.token).pull()
      expect(pulled.actions).toEqual({ write: 1 })
      expect(tree(a)).toEqual(tree(b))
      // A base removed after the mark was kept: the full plan runs and records it again.
      age(a, Object.keys(sample))
      yield* sync(a, t.token).push()
      expect(exists(state(a, "files-settled.json"))).toBe(true)
      fs.rmSync(state(a, "files-base.json"))
      yield* sync(a, t.token).push()
      expect(exists(state(a, "files-base.json"))).toBe(true)
    })
  )
})
