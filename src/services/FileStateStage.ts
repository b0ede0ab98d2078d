/** A pull's staged writer on the local disk: files written into a private staging folder as their bytes arrive (a large pull's small files by a writer thread), nothing left open or half written when an attempt ends. */

import * as fs from "node:fs"
import * as nodePath from "node:path"
import { Effect } from "effect"
import { type FileEntry, fileMode } from "../domain/model.js"
import { type StagedWriteFailed, writerThread } from "./FileStateStageThread.js"
import { makeDirs } from "./FileStateSwap.js"
import { hold, release } from "./heldViews.js"

export { StagedWriteFailed, warmWriterThread } from "./FileStateStageThread.js"

/** One file being staged. Its bytes are checked by the caller; `commit` only once they are. */
export interface StagedSink {
  /** Appends bytes (synchronous, called per chunk; throws what the disk throws). */
  readonly write: (chunk: Uint8Array) => void
  /**
   * The file's bytes are verified: a link is made, a small file written whole, a large one closed. Throws what the
   * disk throws, and then leaves nothing of the file behind.
   */
  readonly commit: () => void
}

export interface StageWriter {
  /** Starts the file of `entry` at its path in the staging folder; nothing already there is followed or reused. */
  readonly open: (entry: FileEntry) => StagedSink
  /**
   * Waits while the writer thread has too much in hand (run between input chunks: the reading keeps pace with the
   * disk). Never fails.
   */
  readonly room: Effect.Effect<void>
  /** Waits until the writer thread, once started, is online or known not to start (only tests wait on it). */
  readonly threadReady: Effect.Effect<void>
  /** How many batch buffers the writer thread's side has made: more than 0 once files went to the thread (tests). */
  readonly batchBuffersMade: () => number
  /**
   * Every committed file on disk; fails with the writer thread's first failure (a commit throws it too, once known).
   * The thread, its work done, is let go then and ends beside what follows (the swap); `abandon` awaits its end.
   */
  readonly drain: Effect.Effect<void, StagedWriteFailed>
  /**
   * After a failed or interrupted attempt, and when the writer goes: every file still open closed and removed, the
   * committed files the thread has in hand written, and the thread ended. Safe to run again.
   */
  readonly abandon: Effect.Effect<void>
}

// Files up to this size are held until verified, then written whole with one open, write and close; larger ones
// are written as they arrive.
const SMALL = 1024 * 1024
// The small files committed on this thread before a writer thread is started (a pull of a few hundred files starts
// none: a thread's start costs about 0.2 s of CPU, more than creating that many files here); the files that come
// while it starts are written here too. With a thread started ahead (`warmWriterThread`), files go to it from the
// first once it is online.
export const ON_THIS_THREAD = 1000

/** Writes every byte of `chunks` at the file's current offset (a short write is carried on). */
const writeAll = (fd: number, chunks: ReadonlyArray<Uint8Array>) => {
  const [only] = chunks
  if (only === undefined) return
  let total = 0
  for (const c of chunks) total += c.length
  let written = chunks.length === 1 ? fs.writeSync(fd, only) : fs.writevSync(fd, chunks)
  if (written === total) return
  // A short write (rare for a regular file): the rest, chunk by chunk.
  for (const c of chunks) {
    if (written >= c.length) {
      written -= c.length
      continue
    }
    for (let at = written; at < c.length; ) at += fs.writeSync(fd, c, at, c.length - at)
    written = 0
  }
}

/** Closes a descriptor whose file is being given up; an error closing it changes nothing (it is closed either way). */
const closeQuietly = (fd: number) => {
  try {
    fs.closeSync(fd)
  } catch {
    // Linux releases the descriptor even when close reports an error.
  }
}

/** Closes a file we created at `full`; when that fails, the file goes too, and the error is thrown. */
const closeOrRemove = (fd: number, full: string) => {
  try {
    fs.closeSync(fd)
  } catch (e) {
    fs.rmSync(full, { force: true })
    throw e
  }
}

/** A whole small file: created (never over anything), written, closed; nothing of it left when any call fails. */
const writeWhole = (full: string, mode: number, chunks: ReadonlyArray<Uint8Array>) => {
  const fd = fs.openSync(full, "wx", mode)
  try {
    writeAll(fd, chunks)
  } catch (e) {
    closeQuietly(fd)
    fs.rmSync(full, { force: true })
    throw e
  }
  closeOrRemove(fd, full)
}

/**
 * The writer of one staging folder: each file with its entry's mode (0755 or 0644, under the umask, as git writes
 * them); a link made with `symlink(2)`, which never follows or replaces anything. Every call is synchronous: a
 * small file is one `open`, `write` and `close` with no thread-pool hop, promise or stream per file (the thread
 * pool's three hops a file cost more CPU than the calls themselves). Past the first `ON_THIS_THREAD` small files
 * (and links) a writer thread is started (`writerThread`), and once it is online committed files go to it in
 * batches: it makes the same calls beside this thread's reading and hashing (creating a file is most of a large
 * pull's system time, and on a disk that creates files slowly, most of its time).
 */
export const makeStageWriter = (staging: string): StageWriter => {
  const mkdirp = makeDirs()
  const root = nodePath.resolve(staging)
  const open = new Set<{ fd: number | undefined; readonly full: string }>()
  /** A small file or link written on this thread, its folder made first; mode 0 is a link. */
  const writeHere = (path: string, mode: number, chunks: ReadonlyArray<Uint8Array>) => {
    const full = `${root}/${path}`
    mkdirp(full.slice(0, full.lastIndexOf("/")))
    if (mode === 0) fs.symlinkSync(Buffer.concat(chunks).toString(), full)
    else writeWhole(full, mode, chunks)
  }
  const thread = writerThread(root, writeHere)
  let committed = 0
  return {
    open: (entry) => {
      // The entry's path is a checked archive path (relative, normalised, `/`-separated: see `checkEntryPath`), so
      // joined and cut as text: `path.join` and `path.dirname` per file cost a tenth of the writer's CPU.
      // Its folder is made by whoever writes it: here, for a large file now and a small one at its commit; the
      // thread, for one it is sent.
      const full = `${root}/${entry.path}`
      const large = entry.size > SMALL && entry.link !== true
      if (large) mkdirp(full.slice(0, full.lastIndexOf("/")))
      const chunks: Array<Uint8Array> = []
      // wx: never follow or reuse anything already there.
      const file = { fd: large ? fs.openSync(full, "wx", fileMode(entry.executable)) : undefined, full }
      if (file.fd !== undefined) open.add(file)
      /** A large file given up (a failed write): closed, removed, no longer open. */
      const giveUp = () => {
        if (file.fd !== undefined) closeQuietly(file.fd)
        file.fd = undefined
        open.delete(file)
        fs.rmSync(full, { force: true })
      }
      return {
        write: (chunk) => {
          if (file.fd === undefined) {
            // Kept until the commit, past the pull it came in: its buffer is not read into again meanwhile.
            hold(chunk)
            chunks.push(chunk)
          } else {
            try {
              writeAll(file.fd, [chunk])
            } catch (e) {
              giveUp()
              throw e
            }
          }
        },
        commit: () => {
          if (file.fd !== undefined) {
            const fd = file.fd
            file.fd = undefined
            open.delete(file)
            closeOrRemove(fd, full)
          } else {
            const mode = entry.link === true ? 0 : fileMode(entry.executable)
            // Both write or copy the bytes before they return: the views are let go either way.
            try {
              if (committed++ >= ON_THIS_THREAD || thread.warm()) thread.put(entry.path, mode, chunks)
              else writeHere(entry.path, mode, chunks)
            } finally {
              // Cleared here too, so a later call (after a throw) cannot release them twice.
              for (const c of chunks) release(c)
              chunks.length = 0
            }
          }
        }
      }
    },
    room: thread.room,
    threadReady: thread.ready,
    batchBuffersMade: thread.buffersMade,
    drain: thread.drain,
    abandon: Effect.zipRight(
      Effect.sync(() => {
        for (const file of open) {
          if (file.fd !== undefined) closeQuietly(file.fd)
          file.fd = undefined
          fs.rmSync(file.full, { force: true })
        }
        open.clear()
      }),
      thread.close
    )
  }
}
