/** A pull's staged writer on the local disk: files written into a private staging folder as their bytes arrive, synchronous per chunk, nothing left open or half written when an attempt ends. */

import * as fs from "node:fs"
import * as nodePath from "node:path"
import { Array as Arr, Effect } from "effect"
import { type FileEntry, fileMode } from "../domain/model.js"
import { type IoError, ioError as io } from "../errors.js"
import { makeDirs } from "./FileStateSwap.js"

/** One file being staged. Its bytes are checked by the caller; `commit` only once they are. */
export interface StagedSink {
  /** Appends bytes (synchronous, called per chunk; throws what the disk throws). */
  readonly write: (chunk: Uint8Array) => void
  /** The file's bytes are verified: a link is made, a small file queued for writing, a large one closed. */
  readonly commit: () => void
}

export interface StageWriter {
  /** Starts the file of `entry` at its path in the staging folder; nothing already there is followed or reused. */
  readonly open: (entry: FileEntry) => StagedSink
  /** Waits for the small files' writes in flight once there are many of them (`all`: whatever is in flight). */
  readonly settle: (all: boolean) => Effect.Effect<void, IoError>
  /**
   * After a failed or interrupted attempt: every file still open closed and removed, every write in flight waited
   * for. Returns the paths that were committed but whose writes failed (they are not staged). Safe to run again.
   */
  readonly abandon: Effect.Effect<ReadonlyArray<string>>
}

// Files up to this size are held until complete, then written by the thread pool, several at a time;
// larger ones are written as they arrive.
const SMALL = 1024 * 1024
const MAX_PENDING = 32

/**
 * The writer of one staging folder: each file with its entry's mode (0755 or 0644, under the umask, as git writes
 * them); a link made with `symlink(2)`, which never follows or replaces anything.
 */
export const makeStageWriter = (staging: string): StageWriter => {
  const mkdirp = makeDirs()
  const open = new Set<{ fd: number | undefined; readonly full: string }>()
  // Small files' writes in flight, by path: a write that fails un-stages its file.
  let pending: Array<{ readonly path: string; readonly done: Promise<void> }> = []
  let failed: Array<string> = []
  const waitFor = async (batch: ReadonlyArray<{ readonly path: string; readonly done: Promise<void> }>) => {
    // allSettled: every write has finished before a failure is reported and the folder removed.
    const results = await Promise.allSettled(batch.map((p) => p.done))
    let first: unknown
    for (const [{ path }, r] of Arr.zip(batch, results)) {
      if (r.status === "fulfilled") continue
      failed.push(path)
      first ??= r.reason
    }
    if (first !== undefined) throw first
  }
  return {
    open: (entry) => {
      const full = nodePath.join(staging, entry.path)
      mkdirp(nodePath.dirname(full))
      const chunks: Array<Uint8Array> = []
      // wx: never follow or reuse anything already there.
      const file = {
        fd: entry.size > SMALL && entry.link !== true ? fs.openSync(full, "wx", fileMode(entry.executable)) : undefined,
        full
      }
      if (file.fd !== undefined) open.add(file)
      return {
        write: (chunk) => {
          if (file.fd === undefined) chunks.push(chunk)
          else fs.writeSync(file.fd, chunk)
        },
        commit: () => {
          if (file.fd !== undefined) {
            const fd = file.fd
            file.fd = undefined
            open.delete(file)
            fs.closeSync(fd)
          } else if (entry.link === true) {
            fs.symlinkSync(Buffer.concat(chunks).toString(), full)
          } else {
            // The callback form: the promise API's file handle and its promise per call cost more CPU than the write.
            const bytes = chunks.length === 1 && chunks[0] !== undefined ? chunks[0] : Buffer.concat(chunks)
            const done = new Promise<void>((resolve, reject) =>
              fs.writeFile(full, bytes, { flag: "wx", mode: fileMode(entry.executable) }, (e) =>
                e === null ? resolve() : reject(e)
              )
            )
            // Handled at once (and awaited later), so a failure is never an unhandled rejection.
            done.catch(() => undefined)
            pending.push({ path: entry.path, done })
          }
          chunks.length = 0
        }
      }
    },
    settle: (all) =>
      Effect.suspend(() => {
        if (pending.length < (all ? 1 : MAX_PENDING)) return Effect.void
        const batch = pending
        pending = []
        return Effect.tryPromise({ try: () => waitFor(batch), catch: io(staging, "cannot write the staged files") })
      }),
    abandon: Effect.promise(async () => {
      for (const file of open) {
        if (file.fd !== undefined) {
          try {
            fs.closeSync(file.fd)
          } catch {
            // the descriptor is gone either way
          }
          file.fd = undefined
        }
        fs.rmSync(file.full, { force: true })
      }
      open.clear()
      const batch = pending
      pending = []
      await waitFor(batch).catch(() => undefined)
      const out = failed
      failed = []
      return out
    })
  }
}
