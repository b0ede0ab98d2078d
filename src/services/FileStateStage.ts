/** A pull's staged writer on the local disk: files written into a private staging folder as their bytes arrive, synchronous per chunk, nothing left open or half written when an attempt ends. */

import * as fs from "node:fs"
import * as nodePath from "node:path"
import { Effect } from "effect"
import { type FileEntry, fileMode } from "../domain/model.js"
import { type IoError, ioError as io } from "../errors.js"
import { makeDirs } from "./FileStateSwap.js"

/** One file being staged. Its bytes are checked by the caller; `commit` only once they are. */
export interface StagedSink {
  /** Appends bytes (synchronous, called per chunk; throws what the disk throws). */
  readonly write: (chunk: Uint8Array) => void
  /** The file's bytes are verified: a link is made, a small file written whole, a large one closed. */
  readonly commit: () => void
}

export interface StageWriter {
  /** Starts the file of `entry` at its path in the staging folder; nothing already there is followed or reused. */
  readonly open: (entry: FileEntry) => StagedSink
  /** Fails when the write of a committed small file failed (run after each input chunk and at the end). */
  readonly settle: Effect.Effect<void, IoError>
  /**
   * After a failed or interrupted attempt: every file still open closed and removed. Returns the paths that were
   * committed but whose writes failed (they are not staged). Safe to run again.
   */
  readonly abandon: Effect.Effect<ReadonlyArray<string>>
}

// Files up to this size are held until complete, then written with one open, write and close on this thread
// (a promise and a thread-pool hop per small file cost more CPU than the write itself); larger ones are written as
// they arrive.
const SMALL = 1024 * 1024

/**
 * The writer of one staging folder: each file with its entry's mode (0755 or 0644, under the umask, as git writes
 * them); a link made with `symlink(2)`, which never follows or replaces anything.
 */
export const makeStageWriter = (staging: string): StageWriter => {
  const mkdirp = makeDirs()
  const open = new Set<{ fd: number | undefined; readonly full: string }>()
  // Committed small files whose write failed (not staged), and the first failure, reported by `settle`.
  let failed: Array<string> = []
  let failure: { readonly cause: unknown } | undefined
  /** A small file's bytes, whole: nothing already at `full` is followed or reused (wx). */
  const writeWhole = (full: string, chunks: ReadonlyArray<Uint8Array>, mode: number) => {
    const fd = fs.openSync(full, "wx", mode)
    try {
      for (const chunk of chunks) fs.writeSync(fd, chunk)
    } finally {
      fs.closeSync(fd)
    }
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
            // A disk failure is the writer's, not the archive's: recorded, the file un-staged, and `settle` fails.
            try {
              writeWhole(full, chunks, fileMode(entry.executable))
            } catch (e) {
              failed.push(entry.path)
              failure ??= { cause: e }
            }
          }
          chunks.length = 0
        }
      }
    },
    settle: Effect.suspend(() =>
      failure === undefined ? Effect.void : Effect.fail(io(staging, "cannot write the staged files")(failure.cause))
    ),
    abandon: Effect.sync(() => {
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
      const out = failed
      failed = []
      failure = undefined
      return out
    })
  }
}
