/** The apply stage: download a pull's files into a private staging folder, verify them against the manifest, then swap them in with a backup. */
import { createHash, type Hash } from "node:crypto"
import * as fsSync from "node:fs"
import * as fs from "node:fs/promises"
import * as nodePath from "node:path"
import { Effect, Exit, type Stream } from "effect"
import { type FileEntry, fileMode } from "../../domain/model.js"
import { errnoCode, type IoError, ioError as io, TarballUnsafe } from "../../errors.js"
import { stateOf } from "../../services/FileState.js"
import { type Progress, silentProgress, withProgress } from "../../services/Progress.js"
import type { SyncApiError, Transient } from "../../services/SyncApi.js"
import { readArchive } from "./archive.js"
import { type BackupPolicy, newRunId, pruneBackups, recordBackup } from "./backups.js"
import { makeDirs, recoverPull, swap } from "./swap.js"

export { recoverPull } from "./swap.js"

/**
 * Fetches the archive of the paths `missing()` names (a retry asks again, for what is still missing) and
 * hands its body to `consume`; a body that breaks off fails with Transient and is fetched again.
 */
export type Download = <A, E>(
  missing: () => ReadonlyArray<string>,
  consume: (body: Stream.Stream<Uint8Array, Transient>) => Effect.Effect<A, E | Transient>
) => Effect.Effect<A, E | SyncApiError>

export interface ApplyInput {
  readonly projectRoot: string
  readonly servicesPath: string
  /** Where the files of `write` come from: only they may be in the archive, each matching its entry. */
  readonly download: Download
  readonly write: ReadonlyArray<FileEntry>
  readonly delete: ReadonlyArray<string>
  /** What the backup of this pull records as its cause (the revision pulled). */
  readonly cause?: string
  readonly backups?: BackupPolicy
  readonly progress?: Progress
}

export interface ApplyResult {
  readonly written: number
  readonly deleted: number
  /** Where the replaced and deleted files were moved, when there were any. */
  readonly backup: string | undefined
  /** Backups removed by the policy. */
  readonly pruned: ReadonlyArray<string>
}

// Files up to this size are held until complete, then written by the thread pool, several at a time;
// larger ones are written as they arrive.
const SMALL = 1024 * 1024
const MAX_PENDING = 32

/**
 * One staged file: written to a private folder with its entry's mode (0755 or 0644, under the umask, as git
 * writes them), hashed on the way, checked against its manifest entry. The swap renames it in, mode and all.
 */
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
    if (entry.size > SMALL && entry.link !== true) this.fd = fsSync.openSync(full, "wx", fileMode(entry.executable))
  }
  write(chunk: Uint8Array) {
    this.size += chunk.length
    if (this.size > this.entry.size)
      throw new TarballUnsafe({ reason: "file larger than its manifest entry", entry: this.entry.path })
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
  /** A file cut off by a failure: closed and removed, so that another attempt can write it afresh. */
  discard() {
    const large = this.fd !== undefined
    try {
      this.close()
    } catch {
      // the descriptor is gone either way
    }
    if (large) fsSync.rmSync(this.full, { force: true })
  }
  end() {
    this.close()
    const digest = this.hash.digest("hex")
    if (this.size !== this.entry.size || digest !== this.entry.sha256) {
      throw new TarballUnsafe({ reason: "content does not match the manifest hash", entry: this.entry.path })
    }
    if (this.entry.link === true) {
      // Made, not written: symlink never follows or replaces anything already there.
      fsSync.symlinkSync(Buffer.concat(this.chunks).toString(), this.full)
      this.chunks.length = 0
    } else if (this.entry.size <= SMALL) {
      this.queue(
        fs.writeFile(this.full, Buffer.concat(this.chunks), { flag: "wx", mode: fileMode(this.entry.executable) })
      )
      this.chunks.length = 0
    }
  }
}

/**
 * Receives the files of `write` into `staging`, each verified against its manifest hash. Verified files stay
 * across attempts: a download that breaks off is resumed with the files still missing.
 */
const receive = (input: ApplyInput, staging: string, progress: Progress) =>
  Effect.suspend(() => {
    const expected = new Map(input.write.map((e) => [e.path, e]))
    const staged = new Set<string>()
    const open = new Set<StagedFile>()
    const mkdirp = makeDirs()
    // Small files' writes in flight, by path: a write that fails un-stages its file.
    let pending: Array<{ readonly path: string; readonly done: Promise<void> }> = []
    const settle = (all: boolean) =>
      Effect.suspend(() => {
        if (pending.length < (all ? 1 : MAX_PENDING)) return Effect.void
        const batch = pending
        pending = []
        return Effect.tryPromise({
          // allSettled: every write has finished before a failure is reported and the folder removed.
          try: () =>
            Promise.allSettled(batch.map((p) => p.done)).then((results) => {
              for (const r of results) if (r.status === "rejected") throw r.reason
            }),
          catch: io(staging, "cannot write the staged files")
        })
      })
    /** After a failed or interrupted attempt: no file left open or half written, none counted that was not written. */
    const abandon = Effect.promise(async () => {
      for (const f of open) f.discard()
      open.clear()
      const batch = pending
      pending = []
      const results = await Promise.allSettled(batch.map((p) => p.done))
      results.forEach((r, i) => {
        if (r.status === "rejected") staged.delete(batch[i]!.path)
      })
    })
    const missing = () => input.write.filter((e) => !staged.has(e.path)).map((e) => e.path)
    const consume = (body: Stream.Stream<Uint8Array, Transient>) =>
      readArchive(body, {
        file: (path, _size, executable, link) => {
          const entry = expected.get(path)
          if (entry === undefined || staged.has(path))
            throw new TarballUnsafe({ reason: "file not asked for in this pull", entry: path })
          // The archive carries the mode the manifest promised, as it carries its bytes.
          if (executable !== (entry.executable === true))
            throw new TarballUnsafe({ reason: "mode does not match the manifest entry", entry: path })
          if (link !== (entry.link === true))
            throw new TarballUnsafe({
              reason: link ? "a symbolic link where the manifest has a file" : "a file where the manifest has a link",
              entry: path
            })
          const file = new StagedFile(nodePath.join(staging, path), entry, mkdirp, (done) => {
            // Handled at once (and awaited later), so a failure is never an unhandled rejection.
            done.catch(() => undefined)
            pending.push({ path, done })
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
      }).pipe(
        Effect.zipRight(settle(true)),
        // A StagedFile throws synchronously from inside the parser; filesystem errors arrive the same way.
        Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : abandon))
      )
    return input.download(missing, consume).pipe(
      Effect.zipRight(
        Effect.suspend(() => {
          const left = missing()
          return left.length === 0
            ? Effect.void
            : Effect.fail(
                new TarballUnsafe({
                  reason: `${left.length} file(s) of the manifest missing from the archive`,
                  entry: left[0]!
                })
              )
        })
      )
    )
  })

/**
 * What on disk stands in the way of a pull's writes that the plan does not remove: a file (or a link) where a
 * folder must go, a folder holding files the pull does not delete where a file must go. Checked before any
 * download, so such a pull is refused whole rather than left half done. Returns one line per obstacle.
 */
export const obstacles = (
  servicesPath: string,
  write: ReadonlyArray<string>,
  deleted: ReadonlySet<string>
): Effect.Effect<ReadonlyArray<string>, IoError> =>
  Effect.try({
    try: () => findObstacles(nodePath.resolve(servicesPath), write, deleted),
    catch: io(servicesPath, "cannot look at what the pull would replace")
  })

const findObstacles = (
  root: string,
  write: ReadonlyArray<string>,
  deleted: ReadonlySet<string>
): ReadonlyArray<string> => {
  const out: Array<string> = []
  const kind = new Map<string, "dir" | "file" | "link" | "none">()
  const kindOf = (rel: string) => {
    let k = kind.get(rel)
    if (k === undefined) {
      let st: fsSync.Stats | undefined
      try {
        st = fsSync.lstatSync(nodePath.join(root, rel), { throwIfNoEntry: false })
      } catch (e) {
        // Under a file (which the pull deletes first): nothing there.
        if (errnoCode(e) !== "ENOTDIR") throw e
      }
      k = st === undefined ? "none" : st.isSymbolicLink() ? "link" : st.isDirectory() ? "dir" : "file"
      kind.set(rel, k)
    }
    return k
  }
  /** Every entry under a folder, as paths relative to the tree. */
  const contents = (rel: string): Array<string> => {
    const found: Array<string> = []
    const walk = (dir: string, prefix: string) => {
      for (const d of fsSync.readdirSync(dir, { withFileTypes: true })) {
        const r = `${prefix}/${d.name}`
        if (d.isDirectory()) walk(nodePath.join(dir, d.name), r)
        else found.push(r)
      }
    }
    walk(nodePath.join(root, rel), rel)
    return found
  }
  for (const p of write) {
    const segments = p.split("/")
    for (let i = 1; i < segments.length; i++) {
      const ancestor = segments.slice(0, i).join("/")
      const k = kindOf(ancestor)
      if (k === "dir") continue
      // A link the pull deletes first is moved aside, never written through.
      if (k === "link" && !deleted.has(ancestor))
        out.push(`${ancestor} is a symbolic link here; a pull never writes through one (${p})`)
      else if (k === "file" && !deleted.has(ancestor))
        out.push(`${ancestor} is a file here, but the pull would make it a folder (${p})`)
      break
    }
    if (kindOf(p) === "dir") {
      const kept = contents(p).filter((f) => !deleted.has(f))
      if (kept.length > 0)
        out.push(
          `${p} is a folder here holding ${kept[0]}${kept.length > 1 ? ` and ${kept.length - 1} more` : ""}, but the pull would make it a file`
        )
    }
  }
  return out
}

/**
 * Refuses writes below a symbolic link the same pull makes (a server could send `a` → `b` and then `a/x`): the
 * staging folder and the tree are only ever written through real folders. A tree the server accepts never has
 * them (a link is a file there), so only a hostile or broken server sends one.
 */
const belowALink = (write: ReadonlyArray<FileEntry>) =>
  Effect.suspend(() => {
    const links = new Set(write.filter((e) => e.link === true).map((e) => e.path))
    if (links.size === 0) return Effect.void
    for (const e of write) {
      for (let at = e.path.indexOf("/"); at !== -1; at = e.path.indexOf("/", at + 1)) {
        const ancestor = e.path.slice(0, at)
        if (links.has(ancestor))
          return Effect.fail(
            new TarballUnsafe({
              reason: `${ancestor} is a symbolic link in the pulled tree, and ${e.path} would be written below it`,
              entry: e.path
            })
          )
      }
    }
    return Effect.void
  })

/**
 * Streams the pull's files into a private staging folder under `.agentsync/`, accepting only the expected
 * regular files, each verified against its manifest hash; only when all of it checks out are they swapped into
 * the tree (see `swap`), what they replace or delete kept in a backup, and backups beyond the policy pruned.
 * A rejected or interrupted download leaves the tree untouched and no staging folder behind.
 */
export const apply = Effect.fn("apply")(function* (input: ApplyInput) {
  const progress = input.progress ?? silentProgress
  const servicesPath = nodePath.resolve(input.servicesPath)
  yield* belowALink(input.write)
  yield* recoverPull(input.projectRoot)
  const id = newRunId()
  const state = yield* stateOf(input.projectRoot)
  const backup = nodePath.join(state.backups, id)
  const write = input.write.map((e) => e.path)
  // The staging folder lives as long as this scope, however it ends, unless the journal names it by then.
  yield* Effect.scoped(
    Effect.flatMap(state.staging(id), (staging) =>
      Effect.zipRight(
        write.length === 0
          ? Effect.void
          : withProgress(
              progress,
              "download",
              input.write.reduce((n, e) => n + e.size, 0),
              "bytes",
              receive(input, staging, progress)
            ),
        swap(input.projectRoot, { staging, backup, servicesPath, write, delete: [...input.delete] })
      )
    )
  )
  const backedUp = yield* recordBackup(input.projectRoot, backup, `pull of ${input.cause ?? "a revision"}`)
  const pruned = backedUp && input.backups !== undefined ? yield* pruneBackups(input.projectRoot, input.backups) : []
  return {
    written: write.length,
    deleted: input.delete.length,
    backup: backedUp ? backup : undefined,
    pruned
  } satisfies ApplyResult
})
