/** Hashing of files in a tree: SHA-256 of each file's bytes, read concurrently, as manifest entries. */
import { createHash } from "node:crypto"
import { readFileSync, statSync } from "node:fs"
import { open } from "node:fs/promises"
import * as nodePath from "node:path"
import { Effect } from "effect"
import { IoError } from "../errors.js"
import { FileEntry } from "../domain/model.js"

const CHUNK = 1 << 20
/** Files up to this size are read whole; larger ones stream through one reused buffer. */
const WHOLE = 8 << 20

const digest = async (full: string): Promise<{ size: number; sha256: string }> => {
  const handle = await open(full, "r")
  try {
    const { size } = await handle.stat()
    const hash = createHash("sha256")
    if (size <= WHOLE) {
      const bytes = await handle.readFile()
      return { size: bytes.length, sha256: hash.update(bytes).digest("hex") }
    }
    const buf = Buffer.allocUnsafe(CHUNK)
    let read = 0
    for (;;) {
      const { bytesRead } = await handle.read(buf, 0, CHUNK, null)
      if (bytesRead === 0) break
      hash.update(bytesRead === CHUNK ? buf : buf.subarray(0, bytesRead))
      read += bytesRead
    }
    return { size: read, sha256: hash.digest("hex") }
  } finally {
    await handle.close()
  }
}

const ioError = (full: string) => (cause: unknown) =>
  new IoError({ path: full, reason: `cannot hash: ${cause instanceof Error ? cause.message : String(cause)}`, cause })

/** Hashes one file; memory stays flat whatever its size. */
export const hashFile = (full: string): Effect.Effect<{ size: number; sha256: string }, IoError> =>
  Effect.tryPromise({ try: () => digest(full), catch: ioError(full) })

/** How many small files are hashed between two yields to the event loop. */
const BATCH = 128

/**
 * Hashes the given tree paths (POSIX, relative to root), results in the order given. Small files are read
 * with readFileSync in batches: for thousands of small files the per-call cost of the promise API (several
 * times a synchronous read) is what dominates, and yielding between batches keeps the process responsive.
 * Large files stream. Entries are built without re-validation: the walker produced the paths.
 */
export const hashTree = (root: string, paths: ReadonlyArray<string>) =>
  Effect.tryPromise({
    try: async () => {
      const out: Array<FileEntry> = new Array(paths.length)
      for (let start = 0; start < paths.length; start += BATCH) {
        for (let i = start; i < Math.min(start + BATCH, paths.length); i++) {
          const path = paths[i]!
          const full = nodePath.join(root, path)
          let h: { size: number; sha256: string }
          try {
            const size = statSync(full).size
            h =
              size <= WHOLE
                ? (() => {
                    const bytes = readFileSync(full)
                    return { size: bytes.length, sha256: createHash("sha256").update(bytes).digest("hex") }
                  })()
                : await digest(full)
          } catch (cause) {
            throw ioError(full)(cause)
          }
          out[i] = new FileEntry({ path, ...h }, true)
        }
        await new Promise((resolve) => setImmediate(resolve))
      }
      return out
    },
    catch: (cause) => (cause instanceof IoError ? cause : ioError(root)(cause))
  }).pipe(Effect.withSpan("TreeHash.hashTree", { attributes: { files: paths.length } }))
