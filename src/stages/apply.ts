/** The apply stage: stage a downloaded bundle privately, verify it against the manifest, then swap it in with a backup. */
import { createHash, type Hash, randomBytes } from "node:crypto"
import * as fsSync from "node:fs"
import * as fs from "node:fs/promises"
import * as nodePath from "node:path"
import { Effect, Schema, type Stream } from "effect"
import type { FileEntry } from "../domain/model.js"
import { IoError, TarballUnsafe } from "../errors.js"
import type { SyncApiError } from "../services/SyncApi.js"
import { writeFileAtomic } from "../services/Workspace.js"
import { type ArchiveCaps, defaultCaps, readArchive } from "./archive.js"
import { stateDir } from "./bundle.js"
import { type Progress, silentProgress } from "./progress.js"

export interface ApplyInput {
  readonly projectRoot: string
  readonly servicesPath: string
  /** The archive; only the files in `write` may be in it, each matching its entry. None when nothing is written. */
  readonly archive: Stream.Stream<Uint8Array, SyncApiError> | undefined
  readonly write: ReadonlyArray<FileEntry>
  readonly delete: ReadonlyArray<string>
  readonly caps?: ArchiveCaps
  readonly progress?: Progress
}

export interface ApplyResult {
  readonly written: number
  readonly deleted: number
  /** Where the replaced and deleted files were moved, when there were any. */
  readonly backup: string | undefined
}

const JOURNAL = "pull-journal.json"
const Journal = Schema.Struct({
  staging: Schema.String,
  backup: Schema.String,
  servicesPath: Schema.String,
  write: Schema.Array(Schema.String),
  delete: Schema.Array(Schema.String)
})
type Journal = typeof Journal.Type

const io = (path: string, what: string) => (cause: unknown) =>
  new IoError({ path, reason: `${what}: ${cause instanceof Error ? cause.message : String(cause)}`, cause })

const exists = (p: string) =>
  fs.lstat(p).then(
    () => true,
    () => false
  )

const code = (e: unknown) => (e as NodeJS.ErrnoException).code

/** mkdir -p, remembering what exists: a pull creates thousands of files in few folders. */
const makeDirs = () => {
  const made = new Set<string>()
  return (dir: string) => {
    if (made.has(dir)) return
    fsSync.mkdirSync(dir, { recursive: true })
    made.add(dir)
  }
}

/**
 * Moves the current file aside (once) and the staged one in; safe to run again after a crash. Synchronous
 * calls: thousands of renames go several times faster without a thread-pool hop each.
 */
const swapIn = (j: Journal) => {
  const mkdirp = makeDirs()
  const moveAside = (rel: string) => {
    const target = nodePath.join(j.servicesPath, rel)
    const saved = nodePath.join(j.backup, rel)
    if (fsSync.existsSync(saved)) {
      // Saved by an earlier, interrupted run: what is at the target now is ours.
      fsSync.rmSync(target, { force: true })
      return
    }
    try {
      mkdirp(nodePath.dirname(saved))
      fsSync.renameSync(target, saved)
    } catch (e) {
      if (code(e) !== "ENOENT") throw e
    }
  }
  for (const rel of j.write) {
    const staged = nodePath.join(j.staging, rel)
    if (!fsSync.existsSync(staged)) continue // already moved in by an earlier, interrupted run
    const target = nodePath.join(j.servicesPath, rel)
    if (fsSync.existsSync(target)) moveAside(rel)
    mkdirp(nodePath.dirname(target))
    fsSync.renameSync(staged, target)
  }
  for (const rel of j.delete) {
    moveAside(rel)
    // Remove folders the deletion left empty, up to the tree's root.
    let dir = nodePath.dirname(nodePath.join(j.servicesPath, rel))
    while (dir.startsWith(j.servicesPath + nodePath.sep)) {
      try {
        fsSync.rmdirSync(dir)
      } catch {
        break
      }
      dir = nodePath.dirname(dir)
    }
  }
}

const journalPath = (projectRoot: string) => nodePath.join(stateDir(projectRoot), JOURNAL)

/**
 * Finishes a swap a killed pull left half done (the journal is written before the first rename), so the
 * tree converges to the pulled state. Returns whether there was anything to finish.
 */
export const recoverPull = Effect.fn("apply.recover")(function* (projectRoot: string) {
  const file = journalPath(projectRoot)
  const text = yield* Effect.promise(() => fs.readFile(file, "utf8").catch(() => undefined))
  if (text === undefined) return false
  const journal = yield* Schema.decodeUnknown(Schema.parseJson(Journal))(text).pipe(
    Effect.mapError((e) => new IoError({ path: file, reason: `damaged pull journal: ${e.message}` }))
  )
  yield* Effect.try({ try: () => swapIn(journal), catch: io(journal.servicesPath, "cannot finish the interrupted pull") })
  yield* Effect.tryPromise({
    try: async () => {
      await fs.rm(journal.staging, { recursive: true, force: true })
      await fs.rm(file, { force: true })
    },
    catch: io(file, "cannot remove")
  })
  return true
})

// Files up to this size are held until complete, then written by the thread pool, several at a time;
// larger ones are written as they arrive.
const SMALL = 1024 * 1024
const MAX_PENDING = 32

/** One staged file: written to a private folder, hashed on the way, checked against its manifest entry. */
class StagedFile {
  private fd: number | undefined
  private readonly chunks: Array<Uint8Array> = []
  private readonly hash: Hash = createHash("sha256")
  private size = 0
  constructor(
    readonly full: string,
    readonly entry: FileEntry,
    mkdirp: (dir: string) => void,
    private readonly queue: (write: Promise<void>) => void
  ) {
    mkdirp(nodePath.dirname(full))
    // wx: never follow or reuse anything already there.
    if (entry.size > SMALL) this.fd = fsSync.openSync(full, "wx", 0o644)
  }
  write(chunk: Uint8Array) {
    this.size += chunk.length
    if (this.size > this.entry.size) throw new TarballUnsafe({ reason: "file larger than its manifest entry", entry: this.entry.path })
    this.hash.update(chunk)
    if (this.fd === undefined) this.chunks.push(chunk)
    else fsSync.writeSync(this.fd, chunk)
  }
  /** Closes the file once, whatever happened. */
  close() {
    if (this.fd === undefined) return
    const fd = this.fd
    this.fd = undefined
    fsSync.closeSync(fd)
  }
  end() {
    this.close()
    const digest = this.hash.digest("hex")
    if (this.size !== this.entry.size || digest !== this.entry.sha256) {
      throw new TarballUnsafe({ reason: "content does not match the manifest hash", entry: this.entry.path })
    }
    if (this.entry.size <= SMALL) {
      this.queue(fs.writeFile(this.full, Buffer.concat(this.chunks), { flag: "wx", mode: 0o644 }))
      this.chunks.length = 0
    }
  }
}

/**
 * Streams the archive into a private staging folder under `.agentsync/`, accepting only the expected
 * regular files, each verified against its manifest hash; only when all of it checks out are the files
 * swapped into the tree, the replaced and deleted ones moved into a backup folder. A rejected archive
 * leaves the tree untouched.
 */
export const apply = Effect.fn("apply")(function* (input: ApplyInput) {
  const progress = input.progress ?? silentProgress
  const servicesPath = nodePath.resolve(input.servicesPath)
  const state = stateDir(input.projectRoot)
  yield* recoverPull(input.projectRoot)
  const stamp = new Date().toISOString().replace(/[:.]/g, "-")
  const id = `${stamp}-${randomBytes(3).toString("hex")}`
  const staging = nodePath.join(state, `staging-${id}`)
  const backup = nodePath.join(state, "backups", id)
  yield* Effect.tryPromise({ try: () => fs.mkdir(staging, { recursive: true, mode: 0o700 }), catch: io(staging, "cannot create") })
  // Writes still in flight finish (or fail) before the staging folder goes.
  const cleanup = Effect.promise(async () => {
    await Promise.allSettled(pending)
    await fs.rm(staging, { recursive: true, force: true })
  })

  const expected = new Map(input.write.map((e) => [e.path, e]))
  const staged = new Set<string>()
  // Files still open, to be closed if the archive is rejected halfway.
  const open = new Set<StagedFile>()
  const mkdirp = makeDirs()
  let pending: Array<Promise<void>> = []
  const settle = (all: boolean) =>
    Effect.suspend(() => {
      if (pending.length < (all ? 1 : MAX_PENDING)) return Effect.void
      const batch = pending
      pending = []
      return Effect.tryPromise({
        // allSettled: every write has finished before a failure is reported and the folder removed.
        try: () =>
          Promise.allSettled(batch).then((results) => {
            for (const r of results) if (r.status === "rejected") throw r.reason
          }),
        catch: io(staging, "cannot write the staged files")
      })
    })
  const total = input.write.reduce((n, e) => n + e.size, 0)
  progress.start("download", total, "bytes")
  const received: Effect.Effect<unknown, SyncApiError | TarballUnsafe | IoError> = input.archive === undefined ? Effect.void : readArchive(
    input.archive,
    {
      file: (path) => {
        const entry = expected.get(path)
        if (entry === undefined) throw new TarballUnsafe({ reason: "file not in the manifest of this pull", entry: path })
        const file = new StagedFile(nodePath.join(staging, path), entry, mkdirp, (w) => {
          pending.push(w)
        })
        open.add(file)
        return {
          write: (chunk) => {
            file.write(chunk)
            progress.advance(chunk.length)
          },
          end: () => {
            open.delete(file)
            file.end()
            staged.add(path)
          }
        }
      },
      flush: () => settle(false)
    },
    input.caps ?? defaultCaps
  ).pipe(Effect.zipLeft(settle(true)))
  yield* received.pipe(
    Effect.flatMap(() => {
      const missing = input.write.filter((e) => !staged.has(e.path))
      return missing.length === 0
        ? Effect.void
        : Effect.fail(new TarballUnsafe({ reason: `${missing.length} file(s) of the manifest missing from the archive`, entry: missing[0]!.path }))
    }),
    // A StagedFile throws synchronously from inside the parser; filesystem errors arrive the same way.
    Effect.tapError(() =>
      Effect.sync(() => {
        for (const f of open) {
          try {
            f.close()
          } catch {
            // the staging folder is removed next in any case
          }
        }
      }).pipe(Effect.zipRight(cleanup))
    )
  )
  progress.done()

  const journal: Journal = { staging, backup, servicesPath, write: input.write.map((e) => e.path), delete: [...input.delete] }
  const file = journalPath(input.projectRoot)
  yield* writeFileAtomic(file, JSON.stringify(journal))
  yield* Effect.try({ try: () => swapIn(journal), catch: io(servicesPath, "cannot swap the pulled files in") })
  yield* Effect.tryPromise({
    try: async () => {
      await fs.rm(file, { force: true })
      await fs.rm(staging, { recursive: true, force: true })
    },
    catch: io(file, "cannot remove")
  })
  const backedUp = yield* Effect.promise(() => exists(backup))
  return { written: input.write.length, deleted: input.delete.length, backup: backedUp ? backup : undefined } satisfies ApplyResult
})
