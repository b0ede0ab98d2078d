/** The Workspace's batch reads for the bundle: files straight into given buffers and links' targets, with synchronous calls for all but large files. */

import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import { Effect } from "effect"
import { errnoCode, IoError, ioError as io } from "../errors.js"

/** A file to read and the buffer it must fill exactly (see `WorkspaceShape.readInto`). */
export interface ReadInto {
  readonly path: string
  readonly into: Uint8Array
  /**
   * `into` and the byte after it, where that byte may be written (a tar record's padding): a file one byte longer
   * than `into` is then told by the same read that fills it, instead of by a read of its own past the end.
   */
  readonly room?: Uint8Array
}

// Small files are read whole and synchronously: for thousands of small files this is several times faster
// than going through the thread pool, and the CLI has nothing else to do meanwhile.
const SMALL = 4 * 1024 * 1024

// One byte past a file's promised size tells whether it grew since it was listed.
const PROBE = Buffer.alloc(1)

/**
 * Fills `slot` from the file at `full`; true when the file held exactly that many bytes. With `room` (the slot and
 * one byte more), each read asks one byte past the slot: a local file system's read returns fewer bytes than asked
 * only at a file's end, so a file read in one read that stops exactly at the slot's end has ended (and one that
 * fills the extra byte is longer), without a read past the end of its own; 10,000 files cost 20-50 ms less CPU.
 */
const fillSync = (full: string, slot: Uint8Array, room?: Uint8Array) => {
  const fd = fs.openSync(full, "r")
  try {
    if (room !== undefined && slot.length > 0 && room.length === slot.length + 1) {
      let at = 0
      let reads = 0
      for (let n = 1; n > 0 && at < slot.length; at += n, reads++) n = fs.readSync(fd, room, at, room.length - at, null)
      // Stopped exactly at the slot's end, the one read one byte short of what it asked: the file ended there. Past
      // it: longer than listed; short of it: shorter. A file that took several reads is on a file system whose reads
      // may come back short before the end (FUSE, network mounts), so a read past the end still says.
      return at === slot.length && (reads === 1 || fs.readSync(fd, PROBE, 0, 1, null) === 0)
    }
    let at = 0
    for (let n = 1; n > 0 && at < slot.length; at += n) n = fs.readSync(fd, slot, at, slot.length - at, null)
    return at === slot.length && fs.readSync(fd, PROBE, 0, 1, null) === 0
  } finally {
    fs.closeSync(fd)
  }
}

/** `fillSync` through the thread pool, for large files. */
const fillAsync = async (full: string, slot: Uint8Array) => {
  const handle = await fsp.open(full, "r")
  try {
    let at = 0
    for (let n = 1; n > 0 && at < slot.length; at += n)
      n = (await handle.read(slot, at, slot.length - at, null)).bytesRead
    return at === slot.length && (await handle.read(Buffer.alloc(1), 0, 1, null)).bytesRead === 0
  } finally {
    await handle.close()
  }
}

/** The error names the file whatever call failed. */
const readSync = (full: string, slot: Uint8Array, room?: Uint8Array) => {
  try {
    return fillSync(full, slot, room)
  } catch (e) {
    throw io(full, "cannot read")(e)
  }
}

/**
 * Fills each buffer from its file, in order (`full` gives a path's absolute path, and throws for one outside the
 * tree): one effect for the batch, the synchronous calls in one pass unless a file is large.
 */
export const readIntoAll = (
  root: string,
  reads: ReadonlyArray<ReadInto>,
  full: (path: string) => string
): Effect.Effect<ReadonlyArray<boolean>, IoError> => {
  const fail = (e: unknown) => (e instanceof IoError ? e : io(root, "cannot read")(e))
  if (reads.every((r) => r.into.length <= SMALL))
    return Effect.try({ try: () => reads.map((r) => readSync(full(r.path), r.into, r.room)), catch: fail })
  return Effect.tryPromise({
    try: async () => {
      const whole: Array<boolean> = []
      for (const r of reads) {
        const f = full(r.path)
        if (r.into.length <= SMALL) whole.push(readSync(f, r.into, r.room))
        else whole.push(await fillAsync(f, r.into).catch((e: unknown) => Promise.reject(io(f, "cannot read")(e))))
      }
      return whole
    },
    catch: fail
  })
}

/** Links' targets in order, never followed; undefined where the path is no longer a link, or is gone. */
export const readLinksAll = (
  root: string,
  paths: ReadonlyArray<string>,
  full: (path: string) => string
): Effect.Effect<ReadonlyArray<string | undefined>, IoError> =>
  Effect.try({
    try: () =>
      paths.map((path) => {
        const f = full(path)
        try {
          return fs.readlinkSync(f)
        } catch (e) {
          if (errnoCode(e) === "EINVAL" || errnoCode(e) === "ENOENT") return undefined
          throw io(f, "cannot read the link")(e)
        }
      }),
    catch: (e) => (e instanceof IoError ? e : io(root, "cannot read the links")(e))
  })
