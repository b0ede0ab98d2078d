// A first push streams in the trailer form (no hashing before, each file hashed as it is sent, the manifest last)
// where the server announces it, on the real server over a real database: the tree round-trips, the next run hashes
// nothing, a server that does not announce it gets the header form, and an interrupted stream leaves nothing.
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Either, Fiber } from "effect"
import pg from "pg"
import { CAPS, FORMATS } from "../../src/domain/caps.js"
import type { Progress } from "../../src/services/Progress.js"
import { fastRetry, run, serverForFile, startServer } from "../server/support.js"
import { fileSync } from "../support/fileSync.js"
import { query } from "../support/pg.js"
import { tempDirs, treeFiles } from "../support/tree.js"

const server = serverForFile("firstpush")

const tempDir = tempDirs("firstpush")
const services = (root: string) => nodePath.join(root, "services")
const full = (root: string, p: string) => nodePath.join(services(root), p)
const SCRIPT = "skills/s/scripts/run.sh"
const LINK = "config/current.yaml"

/** A project of `files`, `SCRIPT` executable, `LINK` a link to `app.yaml`; every file older than any listing. */
const project = (files: Record<string, string | Buffer>) => {
  const root = tempDir("project")
  for (const [p, text] of Object.entries(files)) {
    fs.mkdirSync(nodePath.dirname(full(root, p)), { recursive: true })
    fs.writeFileSync(full(root, p), text)
    fs.chmodSync(full(root, p), p === SCRIPT ? 0o755 : 0o644)
  }
  if (files["config/app.yaml"] !== undefined) fs.symlinkSync("app.yaml", full(root, LINK))
  const past = new Date(Date.now() - 60_000)
  for (const p of Object.keys(files)) fs.utimesSync(full(root, p), past, past)
  return root
}
const sample = (n: number) => {
  const files: Record<string, string> = {
    "skills/s/SKILL.md": "# S\n",
    [SCRIPT]: "#!/bin/sh\necho ran\n",
    "config/app.yaml": "x: 1\n",
    "content/same-a.md": "same\n",
    "content/same-b.md": "same\n"
  }
  for (let i = 0; i < n; i++) files[`content/d${i % 7}/f${i}.md`] = `file ${i}\n`.repeat(1 + (i % 50))
  return files
}

/** Every file of the tree: its bytes, its mode, and a link's target. */
const described = (root: string) => {
  const out: Record<string, string> = {}
  for (const p of Object.keys(treeFiles(services(root)))) {
    const at = full(root, p)
    const st = fs.lstatSync(at)
    out[p] = st.isSymbolicLink()
      ? `link -> ${fs.readlinkSync(at)}`
      : `${(st.mode & 0o100) !== 0 ? "x" : "-"} ${fs.readFileSync(at).toString("base64")}`
  }
  return out
}

/** A progress that records the phases started, and completes `past` once an upload has gone beyond `bytes`. */
const recording = (past?: { readonly bytes: number; readonly reached: Deferred.Deferred<void> }) => {
  const phases: Array<string> = []
  let label = ""
  let done = 0
  const progress: Progress = {
    start: (l) => {
      phases.push(l)
      label = l
      done = 0
    },
    advance: (n) => {
      done += n
      if (past !== undefined && label === "upload" && done > past.bytes) Deferred.unsafeDone(past.reached, Effect.void)
    },
    done: () => {}
  }
  return { progress, phases }
}

const revisions = (url: string, token: Parameters<typeof fileSync>[2]) =>
  Effect.promise(() =>
    run({ endpoint: { mode: "direct", origin: url }, token, retry: fastRetry }, (c) => c.revisions())
  )

describe("a first push", () => {
  it.live(
    "streams in the trailer form: no hashing phase, the tree pulled back is the same bytes, modes and links, and the next run hashes nothing",
    () =>
      Effect.gen(function* () {
        const t = yield* Effect.promise(() => server.createTenant("first-stream"))
        const files = sample(300)
        const one = project(files)
        const seen = recording()
        const pushed = yield* fileSync(server.url, one, t.token).push({ progress: seen.progress })
        // Listed, then sent as read: the header form hashes every file first.
        expect(seen.phases).toEqual(["upload"])
        const regular = Object.keys(files).length
        expect(pushed).toMatchObject({
          files_hashed: regular,
          // Every file and the link, but for content/same-b.md: its bytes went as content/same-a.md's.
          files_sent: regular,
          local_files: regular + 1,
          actions: { upload: regular + 1 }
        })
        const two = tempDir("pulled")
        fs.mkdirSync(services(two))
        const pulled = yield* fileSync(server.url, two, t.token).pull()
        expect(pulled.revision).toBe(pushed.revision)
        expect(described(two)).toEqual(described(one))
        expect(described(two)[LINK]).toBe("link -> app.yaml")
        expect(described(two)[SCRIPT]?.startsWith("x ")).toBe(true)

        // With the settled mark gone, a run reads the tree whole: the hash cache the stream kept vouches for all.
        fs.rmSync(nodePath.join(one, ".agentsync", "files-settled.json"))
        const again = yield* fileSync(server.url, one, t.token).push()
        expect([again.files_hashed, again.files_sent, again.revision]).toEqual([0, 0, pushed.revision])
        // A push over a tree that is not empty plans as ever, hashing only what changed.
        fs.writeFileSync(full(one, "content/d1/f1.md"), "changed\n")
        const next = yield* fileSync(server.url, one, t.token).push()
        expect([next.files_sent, next.files_hashed]).toEqual([1, 1])
      }),
    60_000
  )

  it.live("to a server that does not announce the trailer form goes in the header form, which it takes", () =>
    Effect.acquireUseRelease(
      // A real server answering as one built before the trailer form: it neither announces nor reads it.
      Effect.promise(() =>
        startServer(server.databaseUrl, { archives: { formats: FORMATS, compress: "auto", uploads: [] } })
      ),
      (old) =>
        Effect.gen(function* () {
          const t = yield* Effect.promise(() => old.createTenant("first-old-server"))
          const one = project(sample(20))
          const seen = recording()
          const pushed = yield* fileSync(old.url, one, t.token).push({ progress: seen.progress })
          expect(seen.phases).toEqual(["hashing", "upload"])
          expect(pushed.revision).not.toBeNull()
          const two = tempDir("pulled-old")
          fs.mkdirSync(services(two))
          yield* fileSync(old.url, two, t.token).pull()
          expect(described(two)).toEqual(described(one))
        }),
      (old) => Effect.promise(() => old.stop())
    )
  )

  it.live(
    "interrupted mid-stream leaves no revision, no upload pending on the server and no base; run again, it pushes",
    () =>
      Effect.gen(function* () {
        const t = yield* Effect.promise(() => server.createTenant("first-interrupted"))
        const files: Record<string, Buffer> = {}
        for (let i = 0; i < 400; i++) files[`content/big/f${i}.bin`] = Buffer.alloc(64 * 1024, i)
        const one = project(files)
        const reached = yield* Deferred.make<void>()
        const seen = recording({ bytes: 4 * 1024 * 1024, reached })
        const push = yield* Effect.fork(fileSync(server.url, one, t.token).push({ progress: seen.progress }))
        yield* Deferred.await(reached)
        yield* Fiber.interrupt(push)
        expect(yield* revisions(server.url, t.token)).toEqual([])
        expect(fs.existsSync(nodePath.join(one, ".agentsync", "files-base.json"))).toBe(false)
        // The server sees the connection end and removes what the upload stored.
        const pending = () =>
          Effect.promise(() =>
            query<{ uploads: number; blobs: number }>(
              server.databaseUrl,
              "SELECT (SELECT count(*)::int FROM uploads WHERE tenant_id = $1) AS uploads, (SELECT count(*)::int FROM blobs WHERE tenant_id = $1) AS blobs",
              [t.tenantId]
            )
          )
        let left = yield* pending()
        for (let i = 0; i < 100 && (left[0]?.uploads !== 0 || left[0]?.blobs !== 0); i++) {
          yield* Effect.sleep("100 millis")
          left = yield* pending()
        }
        expect(left).toEqual([{ uploads: 0, blobs: 0 }])
        const pushed = yield* fileSync(server.url, one, t.token).push()
        // 256 contents (the fill byte i % 256), each sent once.
        expect(pushed.files_sent).toBe(256)
        expect((yield* revisions(server.url, t.token)).length).toBe(1)
      }),
    60_000
  )

  it.live(
    "a retry after a retry cut short still reads what the first attempt read: a file rewritten since fails it, and the next run keeps the edit",
    () =>
      Effect.gen(function* () {
        const t = yield* Effect.promise(() => server.createTenant("first-retry-pins"))
        const files: Record<string, Buffer> = {}
        for (let i = 0; i < 40; i++) files[`content/f${String(i).padStart(2, "0")}.bin`] = randomBytes(64 * 1024)
        const one = project(files)
        const edited = "content/f39.bin"
        const EDIT = randomBytes(64 * 1024)
        let revision: string | undefined
        // Attempt 1 commits and its answer is lost; attempt 2 is cut short before it reads anything; the file is
        // rewritten (same size); attempt 3 goes with the same key, which the server answers with attempt 1's revision.
        const lossy = fileSync(
          server.url,
          one,
          t.token,
          (real) => (body, key, format, written) =>
            Effect.gen(function* () {
              revision = (yield* real.upload(body, key, format, written)).revision
              // Attempt 2: its body made, none of it read (the connection refused), as a transport retry does.
              body()
              fs.writeFileSync(full(one, edited), EDIT)
              return yield* real.upload(body, key, format, written)
            })
        )
        const pushed = yield* lossy.pushEither()
        expect(Either.isLeft(pushed) && pushed.left).toMatchObject({
          _tag: "IoError",
          path: full(one, edited),
          reason: "changed while bundling; run again"
        })
        expect(revision).toBeDefined()
        // Nothing recorded of the attempt that read the edit.
        expect(fs.existsSync(nodePath.join(one, ".agentsync", "files-base.json"))).toBe(false)
        expect(fs.existsSync(nodePath.join(one, ".agentsync", "files-settled.json"))).toBe(false)
        // The revision holds what attempt 1 read; the next run does not take it for what is here.
        const again = yield* fileSync(server.url, one, t.token).pushEither()
        expect(fs.readFileSync(full(one, edited)).equals(EDIT)).toBe(true)
        if (Either.isRight(again)) expect(again.right.files_sent).toBeGreaterThan(0)
        const two = tempDir("pulled-pins")
        fs.mkdirSync(services(two))
        yield* fileSync(server.url, two, t.token).pull()
        if (Either.isRight(again)) expect(described(two)).toEqual(described(one))
        else expect(fs.readFileSync(full(two, edited)).equals(files[edited] ?? Buffer.alloc(0))).toBe(true)
      }),
    60_000
  )

  it.live(
    "keeps the hash cache while the server stores the last files and commits, before its answer",
    () =>
      Effect.gen(function* () {
        const t = yield* Effect.promise(() => server.createTenant("first-cache-early"))
        const one = project(sample(30))
        const cache = nodePath.join(one, ".agentsync", "hash-cache.json")
        // The commit locks the tenant's row first: held here, the answer waits until it is let go.
        const holder = new pg.Client({ connectionString: server.databaseUrl })
        yield* Effect.promise(() => holder.connect())
        yield* Effect.promise(() => holder.query("BEGIN"))
        yield* Effect.promise(() => holder.query("SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE", [t.tenantId]))
        const push = yield* Effect.fork(fileSync(server.url, one, t.token).push())
        let seen = false
        for (let i = 0; i < 200 && !seen; i++) {
          yield* Effect.sleep("50 millis")
          seen = fs.existsSync(cache)
        }
        const revisionsWhileHeld = (yield* revisions(server.url, t.token)).length
        yield* Effect.promise(() => holder.query("ROLLBACK").then(() => holder.end()))
        const pushed = yield* Fiber.join(push)
        expect([seen, revisionsWhileHeld]).toEqual([true, 0])
        expect(pushed.revision).not.toBeNull()
        // The cache vouches for every file: with the mark gone, the next run hashes nothing.
        fs.rmSync(nodePath.join(one, ".agentsync", "files-settled.json"))
        const again = yield* fileSync(server.url, one, t.token).push()
        expect([again.files_hashed, again.files_sent]).toEqual([0, 0])
      }),
    60_000
  )

  it.live(
    "a hash cache that cannot be written does not fail the push: its base, head and mark are kept, the next run sends nothing",
    () =>
      Effect.gen(function* () {
        const t = yield* Effect.promise(() => server.createTenant("first-cache-unwritable"))
        const one = project(sample(30))
        // Where the cache goes, a folder: writing it fails (EISDIR).
        const cache = nodePath.join(one, ".agentsync", "hash-cache.json")
        fs.mkdirSync(cache, { recursive: true })
        fs.writeFileSync(nodePath.join(cache, "x"), "")
        const pushed = yield* fileSync(server.url, one, t.token).push()
        expect(pushed.revision).not.toBeNull()
        expect((yield* revisions(server.url, t.token)).length).toBe(1)
        expect(fs.existsSync(nodePath.join(one, ".agentsync", "files-base.json"))).toBe(true)
        expect(fs.statSync(cache).isDirectory()).toBe(true)
        const again = yield* fileSync(server.url, one, t.token).push()
        expect([again.files_sent, again.revision]).toEqual([0, pushed.revision])
      }),
    60_000
  )

  it.live(
    "a tree over a cap the manifest shows (a file over the per-file cap) goes in the header form, refused before any file is sent",
    () =>
      Effect.gen(function* () {
        const t = yield* Effect.promise(() => server.createTenant("first-over-caps"))
        const one = project(sample(5))
        // Sparse: the listing sees its size, the disk holds nothing.
        const huge = full(one, "content/huge.bin")
        fs.closeSync(fs.openSync(huge, "w"))
        fs.truncateSync(huge, CAPS.maxFileBytes + 1)
        const past = new Date(Date.now() - 60_000)
        fs.utimesSync(huge, past, past)
        const seen = recording()
        const pushed = yield* fileSync(server.url, one, t.token).pushEither({ progress: seen.progress })
        expect(Either.isLeft(pushed)).toBe(true)
        expect(seen.phases[0]).toBe("hashing")
      }),
    60_000
  )

  it.live("never streams over a head another client emptied while a base is here: the deletions are not undone", () =>
    Effect.gen(function* () {
      const t = yield* Effect.promise(() => server.createTenant("first-guard-base"))
      const one = project({ "content/x.md": "x\n", "content/y.md": "y\n" })
      yield* fileSync(server.url, one, t.token).push()
      const two = tempDir("emptied")
      fs.mkdirSync(services(two))
      yield* fileSync(server.url, two, t.token).pull()
      fs.rmSync(services(two), { recursive: true })
      fs.mkdirSync(services(two))
      yield* fileSync(server.url, two, t.token).push({ delete: true, force: true })
      // No settled mark: the run starts from the first push's look.
      fs.rmSync(nodePath.join(one, ".agentsync", "files-settled.json"), { force: true })
      const seen = recording()
      const r = yield* fileSync(server.url, one, t.token).push({ progress: seen.progress })
      expect(r.files_sent).toBe(0)
      const pulled = tempDir("pulled-guard-base")
      fs.mkdirSync(services(pulled))
      yield* fileSync(server.url, pulled, t.token).pull()
      expect(treeFiles(services(pulled))).toEqual({})
    })
  )

  it.live("never streams over a head that is not empty with no base here: a differing file is a conflict", () =>
    Effect.gen(function* () {
      const t = yield* Effect.promise(() => server.createTenant("first-guard-head"))
      const other = project({ "content/x.md": "remote\n" })
      yield* fileSync(server.url, other, t.token).push()
      const one = project({ "content/x.md": "local!\n", "content/y.md": "y\n" })
      const r = yield* fileSync(server.url, one, t.token).pushEither()
      expect(Either.isLeft(r) && r.left._tag).toBe("Conflict")
      const pulled = tempDir("pulled-guard-head")
      fs.mkdirSync(services(pulled))
      yield* fileSync(server.url, pulled, t.token).pull()
      expect(treeFiles(services(pulled))).toEqual({ "content/x.md": "remote\n" })
    })
  )
})
