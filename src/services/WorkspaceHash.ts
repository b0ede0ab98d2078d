/** The Workspace's hashing of files: SHA-256 of each file's bytes, a batch of tree paths at a time; the one place files are hashed. */
import { createHash } from "node:crypto"
import { closeSync, openSync, readSync, statSync } from "node:fs"
import { open } from "node:fs/promises"
import { Effect } from "effect"
import { FileEntry } from "../domain/model.js"
import { IoError, ioError as io } from "../errors.js"

/** A file to hash: its tree path and, when the caller has just listed it, its size (saves a stat per file). */
export interface HashRequest {
  readonly path: string
  readonly size?: number
}

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

const cannotHash = (full: string) => io(full, "cannot hash")

/** A file too large to hash synchronously: streamed once the batch's small files are done. */
interface Large {
  readonly path: string
  readonly full: string
}

/** How many files are hashed between two yields to the event loop. */
const BATCH = 128

/**
 * Hashes the given files (`full` gives a tree path's absolute path, and throws for one outside the tree), results
 * in the order given. Small files are hashed a batch at a time in one synchronous step (an effect per file costs
 * more than hashing a small file), large ones stream; the process yields between batches. Entries are built
 * without re-validation: the walker produced the paths.
 */
export const hashAll = (
  root: string,
  files: ReadonlyArray<HashRequest>,
  full: (path: string) => string,
  onHashed?: (files: number) => void
): Effect.Effect<ReadonlyArray<FileEntry>, IoError> =>
  Effect.gen(function* () {
    const out: Array<FileEntry> = []
    for (let start = 0; start < files.length; start += BATCH) {
      const batch = files.slice(start, start + BATCH)
      let current = root
      const hashed = yield* Effect.try({
        try: () =>
          batch.map((f): FileEntry | Large => {
            current = full(f.path)
            return (f.size ?? statSync(current).size) <= SYNC_LIMIT
              ? new FileEntry({ path: f.path, ...digestSync(current) }, true)
              : { path: f.path, full: current }
          }),
        catch: (cause) => (cause instanceof IoError ? cause : cannotHash(current)(cause))
      })
      for (const h of hashed)
        out.push(
          h instanceof FileEntry
            ? h
            : new FileEntry(
                {
                  path: h.path,
                  ...(yield* Effect.tryPromise({ try: () => digestAsync(h.full), catch: cannotHash(h.full) }))
                },
                true
              )
        )
      onHashed?.(batch.length)
      yield* Effect.yieldNow()
    }
    return out
  }).pipe(Effect.withSpan("Workspace.hashFiles", { attributes: { files: files.length } }))
