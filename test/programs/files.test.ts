import * as fs from "node:fs/promises"
import * as nodePath from "node:path"
import { Effect, Either, Layer, type Redacted } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { CurrentConfig, SyncConfig } from "../../src/config.js"
import { FileSyncService, type FilesOptions, layer as fileSyncLayer } from "../../src/programs/files.js"
import { layer as clientLayer } from "../../src/services/SyncApi.js"
import { startServer } from "../server/support.js"
import { freshDatabase } from "../support/pg.js"
import { tempDirs } from "../support/tree.js"

let server: Awaited<ReturnType<typeof startServer>>
beforeAll(async () => {
  server = await startServer(await freshDatabase("files"))
})
afterAll(() => server?.stop())

const tempDir = tempDirs("files")

const project = async (files: Record<string, string> = {}) => {
  const root = tempDir("project")
  await write(root, files)
  return root
}
const write = async (root: string, files: Record<string, string>) => {
  for (const [p, text] of Object.entries(files)) {
    const full = nodePath.join(root, "services", p)
    await fs.mkdir(nodePath.dirname(full), { recursive: true })
    await fs.writeFile(full, text)
  }
}
const tree = async (root: string): Promise<Record<string, string>> => {
  const out: Record<string, string> = {}
  const walk = async (d: string, rel: string) => {
    const entries = await fs.readdir(d, { withFileTypes: true }).catch(() => [])
    for (const e of entries) {
      const r = rel === "" ? e.name : `${rel}/${e.name}`
      if (e.isDirectory()) await walk(nodePath.join(d, e.name), r)
      else out[r] = await fs.readFile(nodePath.join(d, e.name), "utf8")
    }
  }
  await walk(nodePath.join(root, "services"), "")
  return out
}

const sync = (root: string, token: Redacted.Redacted<string>) => {
  const config = new SyncConfig({
    projectRoot: root,
    servicesPath: nodePath.join(root, "services"),
    directUrl: server.url,
    token
  })
  const layer = fileSyncLayer.pipe(
    Layer.provide(
      clientLayer({
        endpoint: { mode: "direct", origin: server.url },
        token,
        retry: { maxRetries: 1, base: "10 millis", factor: 2, cap: "20 millis" }
      })
    ),
    Layer.provide(Layer.succeed(CurrentConfig, config))
  )
  const go = <A, E>(f: (s: typeof FileSyncService.Service) => Effect.Effect<A, E>) =>
    Effect.runPromise(Effect.flatMap(FileSyncService, f).pipe(Effect.provide(layer)))
  const either = <A, E>(f: (s: typeof FileSyncService.Service) => Effect.Effect<A, E>) =>
    Effect.runPromise(Effect.either(Effect.flatMap(FileSyncService, f).pipe(Effect.provide(layer))))
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
  it("push, edit, push, pull into a fresh project gives an identical tree; a no-change push reads and sends nothing", async () => {
    const t = await server.createTenant("roundtrip")
    const one = await project(sample)
    const first = await sync(one, t.token).push()
    expect(first.actions).toEqual({ upload: 5 })
    expect(first.files_sent).toBe(5)
    // Backdate so the hash cache may vouch for the files (it skips files modified within the last seconds).
    const past = new Date(Date.now() - 60_000)
    for (const p of Object.keys(sample)) await fs.utimes(nodePath.join(one, "services", p), past, past)
    await sync(one, t.token).push()
    const idle = await sync(one, t.token).push()
    expect(idle.bytes_sent).toBe(0)
    expect(idle.files_hashed).toBe(0)
    expect(idle.revision).toBe(idle.remote_revision)
    await write(one, { "agents/a/system_prompt.md": "You are A, edited.\n" })
    const second = await sync(one, t.token).push()
    expect(second.files_sent).toBe(1)
    expect(second.files.map((f) => [f.path, f.status, f.action])).toEqual([
      ["agents/a/system_prompt.md", "Modified", "upload"]
    ])
    const two = await project()
    const pulled = await sync(two, t.token).pull()
    expect(pulled.actions).toEqual({ write: 5 })
    expect(await tree(two)).toEqual(await tree(one))
    const diff = await sync(two, t.token).diff()
    expect(diff.counts).toEqual({ added: 0, modified: 0, removed: 0, unchanged: 5 })
  })

  it("asks for the remote head conditionally: the copy kept after a push or pull is used while the head stays, never after it moves", async () => {
    const t = await server.createTenant("kept-head")
    const one = await project(sample)
    expect((await sync(one, t.token).push()).remote_manifest).toBe("downloaded")
    // The push itself recorded the head it created: the next run gets a 304.
    const idle = await sync(one, t.token).push()
    expect([idle.remote_manifest, idle.actions]).toEqual(["cached", {}])
    const two = await project()
    expect((await sync(two, t.token).pull()).remote_manifest).toBe("downloaded")
    expect((await sync(two, t.token).diff()).remote_manifest).toBe("cached")
    // Another client moves the head: the kept copy is stale and the whole manifest comes again.
    await write(two, { "config/app.yaml": "x: 2\n" })
    await sync(two, t.token).push()
    const pulled = await sync(one, t.token).pull()
    expect([pulled.remote_manifest, pulled.actions]).toEqual(["downloaded", { write: 1 }])
    expect(await tree(one)).toEqual(await tree(two))
    // A damaged copy is only a slower run: its entries no longer match its checksum, so it is not used.
    const kept = nodePath.join(one, ".agentsync", "remote-manifest.json")
    await fs.writeFile(kept, (await fs.readFile(kept, "utf8")).replace('"size":4', '"size":5'))
    const after = await sync(one, t.token).diff()
    expect([after.remote_manifest, after.counts]).toEqual([
      "downloaded",
      { added: 0, modified: 0, removed: 0, unchanged: 5 }
    ])
  })

  it("keeps the recorded base per tenant: a project pushed to one tenant pushes everything to another", async () => {
    const first = await server.createTenant("base-one")
    const second = await server.createTenant("base-two")
    const root = await project(sample)
    await sync(root, first.token).push()
    const other = await sync(root, second.token).push()
    expect(other.actions).toEqual({ upload: 5 })
  })

  it("a dry run changes nothing, state files included", async () => {
    const t = await server.createTenant("dry")
    const root = await project(sample)
    const plan = await sync(root, t.token).push({ dryRun: true })
    expect(plan.actions).toEqual({ upload: 5 })
    expect(await fs.readdir(nodePath.join(root)).then((n) => n.includes(".agentsync"))).toBe(false)
    const after = await sync(root, t.token).diff()
    expect(after.remote_revision).toBeNull()
  })

  it("does not revert a file another client changed: it is skipped, not pushed", async () => {
    const t = await server.createTenant("threeway")
    const a = await project(sample)
    await sync(a, t.token).push()
    const b = await project()
    await sync(b, t.token).pull()
    await write(a, { "config/app.yaml": "x: 2\n" })
    await sync(a, t.token).push()
    await write(b, { "skills/s/SKILL.md": "# S from b\n" })
    const fromB = await sync(b, t.token).push()
    expect(Object.fromEntries(fromB.files.map((f) => [f.path, f.action]))).toEqual({
      "config/app.yaml": "skip",
      "skills/s/SKILL.md": "upload"
    })
    const fresh = await project()
    await sync(fresh, t.token).pull()
    expect(await tree(fresh)).toMatchObject({ "config/app.yaml": "x: 2\n", "skills/s/SKILL.md": "# S from b\n" })
  })

  it("a pull over a local edit of the same file is a Conflict; --force takes the remote and keeps a backup", async () => {
    const t = await server.createTenant("pullconflict")
    const a = await project(sample)
    await sync(a, t.token).push()
    const b = await project()
    await sync(b, t.token).pull()
    await write(a, { "config/app.yaml": "x: remote\n" })
    await sync(a, t.token).push()
    await write(b, { "config/app.yaml": "x: local\n" })
    const refused = await sync(b, t.token).pullEither()
    expect(Either.isLeft(refused) && refused.left._tag).toBe("Conflict")
    expect(await tree(b)).toMatchObject({ "config/app.yaml": "x: local\n" })
    const forced = await sync(b, t.token).pull({ force: true })
    expect(await tree(b)).toMatchObject({ "config/app.yaml": "x: remote\n" })
    expect(await fs.readFile(nodePath.join(forced.backup!, "config/app.yaml"), "utf8")).toBe("x: local\n")
  })

  it("carries deletions only with --delete, and refuses to delete more than half of the tree without --force", async () => {
    const t = await server.createTenant("deletes")
    const a = await project(sample)
    await sync(a, t.token).push()
    await fs.rm(nodePath.join(a, "services", "config"), { recursive: true })
    const kept = await sync(a, t.token).push()
    expect(kept.actions).toEqual({ skip: 1 })
    const one = await sync(a, t.token).push({ delete: true })
    expect(one.actions).toEqual({ "delete-remote": 1 })
    await fs.rm(nodePath.join(a, "services", "agents"), { recursive: true })
    await fs.rm(nodePath.join(a, "services", "skills"), { recursive: true })
    const refused = await sync(a, t.token).pushEither({ delete: true })
    expect(Either.isLeft(refused) && refused.left.message).toMatch(/refusing to delete 3 of 4 files/)
    await sync(a, t.token).push({ delete: true, force: true })
    const b = await project()
    await sync(b, t.token).pull()
    expect(Object.keys(await tree(b))).toEqual(["content/blog/hello.md"])
  })
})

describe("the settled mark", () => {
  const state = (root: string, name: string) => nodePath.join(root, ".agentsync", name)
  const exists = (p: string) =>
    fs.stat(p).then(
      () => true,
      () => false
    )
  /** Makes every file of the tree older than the racy window, as a real tree is. */
  const age = async (root: string, paths: ReadonlyArray<string>) => {
    const past = new Date(Date.now() - 60_000)
    for (const p of paths) await fs.utimes(nodePath.join(root, "services", p), past, past)
  }

  it("answers a no-change run without the hash cache, the base or the kept manifest, with the full run's report", async () => {
    const t = await server.createTenant("settled")
    const root = await project(sample)
    await age(root, Object.keys(sample))
    await sync(root, t.token).push()
    expect(await exists(state(root, "files-settled.json"))).toBe(true)
    // Without the mark, the same run reads the cache and the kept manifest: their absence would show.
    await fs.rm(state(root, "hash-cache.json"))
    await fs.rm(state(root, "remote-manifest.json"))
    const settled = await sync(root, t.token).push()
    expect([settled.files_hashed, settled.remote_manifest, settled.counts.unchanged]).toEqual([0, "cached", 5])
    expect(await exists(state(root, "hash-cache.json"))).toBe(false)
    await fs.rm(state(root, "files-settled.json"))
    const full = await sync(root, t.token).push()
    expect(full.files_hashed).toBe(5)
    expect(await exists(state(root, "files-settled.json"))).toBe(true)
    // Both runs say the same (the full one re-read the files the cache no longer vouched for).
    expect({ ...settled, files_hashed: 5, remote_manifest: "downloaded" }).toEqual(full)
    expect(await sync(root, t.token).pull()).toEqual({
      ...settled,
      command: "pull",
      bytes_sent: undefined,
      files_sent: undefined
    })
  })

  it("answers a no-change diff too, and a diff after an edit names the edit", async () => {
    const t = await server.createTenant("settled-diff")
    const root = await project(sample)
    await age(root, Object.keys(sample))
    await sync(root, t.token).push()
    await fs.rm(state(root, "hash-cache.json"))
    const settled = await sync(root, t.token).diff()
    expect([settled.command, settled.files_hashed, settled.counts.unchanged, settled.files]).toEqual(["diff", 0, 5, []])
    expect(await exists(state(root, "hash-cache.json"))).toBe(false)
    await fs.writeFile(nodePath.join(root, "services", "skills/s/SKILL.md"), "# T\n")
    const edited = await sync(root, t.token).diff()
    expect(edited.counts).toEqual({ added: 0, modified: 1, removed: 0, unchanged: 4 })
    expect(edited.files.map((f) => f.path)).toEqual(["skills/s/SKILL.md"])
  })

  it("is void after any change: a local edit of the same size, a remote push, a rewritten base, a racy tree", async () => {
    const t = await server.createTenant("settled-void")
    const a = await project(sample)
    await age(a, Object.keys(sample))
    await sync(a, t.token).push()
    // Same size, new mtime: the listing differs, the file is hashed and sent.
    await write(a, { "config/app.yaml": "x: 9\n" })
    const edited = await sync(a, t.token).push()
    expect([edited.actions, edited.files_sent]).toEqual([{ upload: 1 }, 1])
    // Sent within the racy window: no mark is kept for a tree whose mtimes could still hide a change.
    expect(await exists(state(a, "files-settled.json"))).toBe(false)
    await age(a, Object.keys(sample))
    await sync(a, t.token).push()
    expect(await exists(state(a, "files-settled.json"))).toBe(true)
    // Another client moves the head: no 304, the change is pulled.
    const b = await project()
    await sync(b, t.token).pull()
    await write(b, { "skills/s/SKILL.md": "# S, edited\n" })
    await sync(b, t.token).push()
    const pulled = await sync(a, t.token).pull()
    expect(pulled.actions).toEqual({ write: 1 })
    expect(await tree(a)).toEqual(await tree(b))
    // A base removed after the mark was kept: the full plan runs and records it again.
    await age(a, Object.keys(sample))
    await sync(a, t.token).push()
    expect(await exists(state(a, "files-settled.json"))).toBe(true)
    await fs.rm(state(a, "files-base.json"))
    await sync(a, t.token).push()
    expect(await exists(state(a, "files-base.json"))).toBe(true)
  })
})
