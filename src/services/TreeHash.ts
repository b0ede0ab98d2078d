/** Hashing of files: SHA-256 of each file's bytes, one file or a tree's worth as manifest entries; the one place files are hashed. */
import { createHash } from "node:crypto"
import { closeSync, openSync, readSync, statSync } from "node:fs"
import { open } from "node:fs/promises"
import * as nodePath from "node:path"
import { Effect } from "effect"
import { FileEntry } from "../domain/model.js"
import { IoError } from "../errors.js"

const CHUNK = 1 << 20
/** Files up to this size are hashed with synchronous reads; larger ones stream without blocking. */
const SYNC_LIMIT = 8 << 20

// One buffer for every synchronous hash: reading each file into a fresh one left the size of the tree in
// garbage. Read and hash happen in one synchronous step, so no two hashes ever share it.
const BUFFER = Buffer.allocUnsafe(CHUNK)

const digestSync = (full: string): { size: number; sha256: string } => {
  const fd = openSync(full, "r")
  try {
    const hash = createHash("sha256")
    let size = 0
    // A short read of a regular file is its end: no extra read to see zero bytes.
    for (let n = BUFFER.length; n === BUFFER.length; ) {
      n = readSync(fd, BUFFER)
      hash.update(BUFFER.subarray(0, n))
      size += n
    }
    return { size, sha256: hash.digest("hex") }
  } finally {
    closeSync(fd)
  }
}

const digestAsync = async (full: string): Promise<{ size: number; sha256: string }> => {
  const handle = await open(full, "r")
  try {
    const hash = createHash("sha256")
    const buf = Buffer.allocUnsafe(CHUNK)
    let size = 0
    for (;;) {
      const { bytesRead } = await handle.read(buf, 0, CHUNK, null)
      if (bytesRead === 0) break
      hash.update(buf.subarray(0, bytesRead))
      size += bytesRead
    }
    return { size, sha256: hash.digest("hex") }
  } finally {
    await handle.close()
  }
}

const ioError = (full: string) => (cause: unknown) =>
  new IoError({ path: full, reason: `cannot hash: ${cause instanceof Error ? cause.message : String(cause)}`, cause })

/**
 * Hashes one file; memory stays flat whatever its size. `size`, when the caller has just listed the file,
 * picks the way: synchronous reads for small files (for thousands of them the promise API's per-call cost is
 * what dominates), streaming otherwise.
 */
export const hashFile = (full: string, size?: number): Effect.Effect<{ size: number; sha256: string }, IoError> =>
  size !== undefined && size <= SYNC_LIMIT
    ? Effect.try({ try: () => digestSync(full), catch: ioError(full) })
    : Effect.tryPromise({ try: () => digestAsync(full), catch: ioError(full) })

/** How many files are hashed between two yields to the event loop. */
const BATCH = 128

export interface HashTreeOptions {
  /** Each path's size, when the caller has just listed the tree: saves a stat per file. */
  readonly sizes?: ReadonlyArray<number>
  /** Called after each batch with the number of files it hashed (progress). */
  readonly onHashed?: (files: number) => void
}

/**
 * Hashes the given tree paths (POSIX, relative to root), results in the order given. Small files are hashed
 * a batch at a time in one synchronous step (an effect per file costs more than hashing a small file), large
 * ones stream; the process yields between batches. Entries are built without re-validation: the walker
 * produced the paths.
 */
export const hashTree = (root: string, paths: ReadonlyArray<string>, options: HashTreeOptions = {}) =>
  Effect.gen(function* () {
    const out: Array<FileEntry> = new Array(paths.length)
    for (let start = 0; start < paths.length; start += BATCH) {
      const end = Math.min(start + BATCH, paths.length)
      const large: Array<number> = []
      let current = root
      yield* Effect.try({
        try: () => {
          for (let i = start; i < end; i++) {
            current = nodePath.join(root, paths[i]!)
            if ((options.sizes?.[i] ?? statSync(current).size) <= SYNC_LIMIT)
              out[i] = new FileEntry({ path: paths[i]!, ...digestSync(current) }, true)
            else large.push(i)
          }
        },
        catch: (cause) => ioError(current)(cause)
      })
      for (const i of large)
        out[i] = new FileEntry({ path: paths[i]!, ...(yield* hashFile(nodePath.join(root, paths[i]!))) }, true)
      options.onHashed?.(end - start)
      yield* Effect.yieldNow()
    }
    return out
  }).pipe(Effect.withSpan("TreeHash.hashTree", { attributes: { files: paths.length } }))
