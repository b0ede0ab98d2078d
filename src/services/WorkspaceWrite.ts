/** The Workspace's atomic writes (one file through a temp file and a rename; many in slices, new folders staged whole) and the sweep of the temp names killed writes left. */

import { randomBytes } from "node:crypto"
import * as fsSync from "node:fs"
import * as fs from "node:fs/promises"
import * as nodePath from "node:path"
import { Effect } from "effect"
import { eachUtf8Chunk, type Text } from "../domain/hash.js"
import { IoError, ioError as io, isMissing } from "../errors.js"
import { isAlive } from "./ProcessLock.js"

// Temp names: one prefix per process (its id and a random part) and a counter (a random draw per file was a
// tenth of writing 10,000 files); they are opened exclusively, so a name that somehow exists is never followed
// or reused. The process id tells a later run whether the writer is gone (see sweepLitter).
const tempPrefix = `.agentsync-tmp-${process.pid}-${randomBytes(4).toString("hex")}-`
const TEMP = /^\.agentsync-tmp-(?:(\d+)-[0-9a-f]{8}-|[0-9a-f]{12}-)/
// A temp file of the older naming, without a process id, is litter once this old.
const OLD_TEMP_MS = 60 * 60_000

/**
 * Removes the temp files and staged folders (`.agentsync-tmp-…`) that a killed run left in `dir` (and its
 * subfolders, when `deep`): those whose process is gone. Returns how many it removed.
 */
export const sweepLitter = (dir: string, deep: boolean): Effect.Effect<number, IoError> =>
  Effect.try({
    try: () => {
      let removed = 0
      const walk = (d: string) => {
        let entries: Array<import("node:fs").Dirent>
        try {
          entries = fsSync.readdirSync(d, { withFileTypes: true })
        } catch (e) {
          if (isMissing(e)) return
          throw e
        }
        for (const e of entries) {
          const full = nodePath.join(d, e.name)
          const m = TEMP.exec(e.name)
          if (m !== null) {
            const pid = m[1] === undefined ? undefined : Number(m[1])
            const gone =
              pid === undefined
                ? Date.now() - fsSync.lstatSync(full).mtimeMs > OLD_TEMP_MS
                : pid !== process.pid && !isAlive(pid)
            if (gone) {
              fsSync.rmSync(full, { recursive: true, force: true })
              removed++
            }
          } else if (deep && e.isDirectory()) walk(full)
        }
      }
      walk(dir)
      return removed
    },
    catch: io(dir, "cannot remove what an interrupted run left")
  })
/** Writes all of `bytes` at the descriptor's position (a write may take fewer bytes than it was given). */
const writeAllSync = (fd: number, bytes: Uint8Array) => {
  for (let at = 0; at < bytes.length; ) at += fsSync.writeSync(fd, bytes, at)
}

let tempCounter = 0
const tempName = (full: string) => nodePath.join(nodePath.dirname(full), `${tempPrefix}${(tempCounter++).toString(36)}`)

/**
 * What an atomic write takes: bytes, a text (a string, or string pieces), or pieces of text and bytes in order (a
 * state file spliced from the bytes of the one it replaces, see `splicedHead` in stages/files/keptLines.ts); written as their
 * concatenation, the text as UTF-8.
 */
export type Contents = Uint8Array | Text | ReadonlyArray<string | Uint8Array>

/**
 * Hands `sink` the bytes of pieces in order: each run of string pieces as one text (a surrogate pair split between
 * two pieces is encoded whole, see `eachUtf8Chunk`), each byte piece as it is.
 */
const eachPieceChunk = (pieces: ReadonlyArray<string | Uint8Array>, sink: (bytes: Uint8Array) => void) => {
  let text: Array<string> = []
  for (const piece of pieces) {
    if (typeof piece === "string") {
      text.push(piece)
      continue
    }
    if (text.length > 0) eachUtf8Chunk(text, sink)
    text = []
    sink(piece)
  }
  if (text.length > 0) eachUtf8Chunk(text, sink)
}

/**
 * Atomic write of any absolute path: temp file beside it, fsync, rename. A text (a string, or pieces) goes to the
 * file as UTF-8 a chunk at a time (`eachUtf8Chunk`), never turned into bytes whole: the state files of a push are a
 * MB or so each.
 */
// Text is told from bytes by what text is: a Uint8Array made in another realm (a vm context, a test runner's sandbox)
// is not `instanceof` this realm's, and taken for text it would be written as an empty file.
const isPieces = (b: Contents): b is Text | ReadonlyArray<string | Uint8Array> =>
  typeof b === "string" || Array.isArray(b)

export const writeFileAtomic = (full: string, bytes: Contents): Effect.Effect<void, IoError> =>
  Effect.tryPromise({
    try: async () => {
      await fs.mkdir(nodePath.dirname(full), { recursive: true })
      const tmp = tempName(full)
      const handle = await fs.open(tmp, "wx", 0o644)
      try {
        if (typeof bytes === "string") eachUtf8Chunk(bytes, (chunk) => writeAllSync(handle.fd, chunk))
        else if (isPieces(bytes)) eachPieceChunk(bytes, (chunk) => writeAllSync(handle.fd, chunk))
        else await handle.writeFile(bytes)
        await handle.sync()
      } finally {
        await handle.close()
      }
      try {
        await fs.rename(tmp, full)
      } catch (e) {
        await fs.rm(tmp, { force: true })
        throw e
      }
    },
    catch: io(full, "cannot write")
  })

interface TempFile {
  readonly fd: number
  /** Where it is being written: a temp file beside its target, or its place in a staging folder. */
  readonly tmp: string
  readonly full: string
  /** In a staging folder: made visible by the folder's rename, removed with the folder. */
  readonly staged: boolean
  closed: boolean
  renamed: boolean
}

/** Closes what is open and removes what was not renamed: no temp file or descriptor stays behind. */
const discard = (files: ReadonlyArray<TempFile>) => {
  for (const o of files) {
    if (o.renamed) continue
    if (!o.closed) {
      try {
        fsSync.closeSync(o.fd)
      } catch {
        // the descriptor is gone either way; the temp file is removed next
      }
    }
    if (!o.staged) fsSync.rmSync(o.tmp, { force: true })
  }
}

/** Flushes every file to disk; settles all before failing, so no descriptor is closed while its flush runs. */
const flushAll = async (files: ReadonlyArray<TempFile>): Promise<void> => {
  const flushed = await Promise.allSettled(
    files.map(
      (o) =>
        new Promise<void>((resolve, reject) =>
          fsSync.fdatasync(o.fd, (e) => (e === null ? resolve() : reject(io(o.full, "cannot write")(e))))
        )
    )
  )
  const failed = flushed.find((r) => r.status === "rejected")
  if (failed !== undefined) throw failed.reason
}

/** A folder that does not exist yet, built under a temporary name beside it and renamed into place whole. */
interface Staged {
  readonly top: string
  readonly dir: string
}

/**
 * A file to write: its exact permission bits (`mode`, set whatever the umask: a file beside an item keeps what it
 * was stored with), or else created 0755 (`executable`) or 0644 less the umask, as any program creates a file.
 */
export interface WriteTarget {
  readonly full: string
  readonly bytes: Uint8Array | string
  readonly mode?: number
  readonly executable?: boolean
}

/**
 * Atomic writes of many absolute paths, in slices: each slice's files are created and written with
 * synchronous calls (one async call costs several thread-pool round trips), flushed to disk concurrently
 * while the next slice is created (the flushes run on the thread pool), then made visible. A file whose folder
 * exists goes through a temp file renamed over its target; files in folders that do not exist yet are written
 * into a staging copy of the topmost missing folder, renamed into place once every file is flushed (one
 * rename for a whole new subtree: a first sync into an empty folder makes one per source, not one per file).
 * A failure leaves no temp file or staging folder behind; files of earlier slices outside new folders stay.
 */
export const writeFilesAtomic = (files: ReadonlyArray<WriteTarget>, slice = 256): Effect.Effect<void, IoError> =>
  Effect.gen(function* () {
    const dirs = new Set<string>()
    let current = files[0]?.full ?? ""
    const fail = (cause: unknown) => (cause instanceof IoError ? cause : io(current, "cannot write")(cause))
    // The topmost missing ancestor of each folder (undefined when the folder exists), found once per folder.
    const missing = new Map<string, string | undefined>()
    const missingTop = (dir: string): string | undefined => {
      if (missing.has(dir)) return missing.get(dir)
      const parent = nodePath.dirname(dir)
      const top = fsSync.existsSync(dir) || parent === dir ? undefined : (missingTop(parent) ?? dir)
      missing.set(dir, top)
      return top
    }
    const staged = new Map<string, Staged>()
    /** Where a file is created: in its staging folder, or as a temp file beside its target. */
    const placeOf = (full: string): { readonly path: string; readonly staged: boolean } => {
      const top = missingTop(nodePath.dirname(full))
      if (top === undefined) return { path: tempName(full), staged: false }
      let stage = staged.get(top)
      if (stage === undefined) {
        stage = { top, dir: tempName(top) }
        staged.set(top, stage)
      }
      return { path: stage.dir + full.slice(top.length), staged: true }
    }
    const removeStaged = () => {
      for (const stage of staged.values()) fsSync.rmSync(stage.dir, { recursive: true, force: true })
    }
    const create = (batch: ReadonlyArray<WriteTarget>, into: Array<TempFile>) => {
      for (const f of batch) {
        current = f.full
        const place = placeOf(f.full)
        const dir = nodePath.dirname(place.path)
        if (!dirs.has(dir)) {
          fsSync.mkdirSync(dir, { recursive: true })
          dirs.add(dir)
        }
        const o: TempFile = {
          fd: fsSync.openSync(place.path, "wx", f.mode ?? (f.executable === true ? 0o755 : 0o644)),
          tmp: place.path,
          full: f.full,
          staged: place.staged,
          closed: false,
          renamed: false
        }
        into.push(o)
        // Exact bits as stored, whatever the umask: a script stays executable, a secret stays private.
        if (f.mode !== undefined) fsSync.fchmodSync(o.fd, f.mode)
        fsSync.writeFileSync(o.fd, f.bytes)
      }
    }
    const commit = (done: ReadonlyArray<TempFile>) => {
      for (const o of done) {
        current = o.full
        fsSync.closeSync(o.fd)
        o.closed = true
      }
      for (const o of done) {
        if (o.staged) continue // visible with its folder
        current = o.full
        fsSync.renameSync(o.tmp, o.full)
        o.renamed = true
      }
    }
    /** The previous slice, written and being flushed. */
    let pending: { readonly files: Array<TempFile>; readonly flushed: Promise<void> } | undefined
    // On any failure: wait for the flush in flight (its descriptors must not close under it), then discard.
    const abandon = (mine: ReadonlyArray<TempFile>) =>
      Effect.promise(async () => {
        if (pending !== undefined) await pending.flushed.catch(() => undefined)
        discard(mine)
        if (pending !== undefined) discard(pending.files)
        removeStaged()
      })
    const finishPending = Effect.suspend(() => {
      const p = pending
      if (p === undefined) return Effect.void
      return Effect.tryPromise({ try: () => p.flushed, catch: fail }).pipe(
        Effect.flatMap(() => Effect.try({ try: () => commit(p.files), catch: fail })),
        Effect.tap(() =>
          Effect.sync(() => {
            pending = undefined
          })
        )
      )
    })
    for (let i = 0; i < files.length; i += slice) {
      const opened: Array<TempFile> = []
      yield* Effect.try({ try: () => create(files.slice(i, i + slice), opened), catch: fail }).pipe(
        Effect.onError(() => abandon(opened))
      )
      const flushed = flushAll(opened)
      // Keep the rejection handled until it is awaited.
      flushed.catch(() => undefined)
      yield* finishPending.pipe(
        Effect.onError(() =>
          Effect.promise(() => flushed.catch(() => undefined)).pipe(Effect.zipRight(abandon(opened)))
        )
      )
      pending = { files: opened, flushed }
    }
    yield* finishPending.pipe(Effect.onError(() => abandon([])))
    yield* Effect.try({
      try: () => {
        for (const stage of staged.values()) {
          current = stage.top
          fsSync.renameSync(stage.dir, stage.top)
          staged.delete(stage.top)
        }
      },
      catch: (cause) => {
        removeStaged()
        return io(current, "cannot create the folder")(cause)
      }
    })
  })
