/** The bundle stage: the local manifest (hashes cached by path, size and mtime) and a reproducible tar.gz of chosen files. */
import { createHash } from "node:crypto"
import * as fs from "node:fs/promises"
import * as nodePath from "node:path"
import { Effect, Schema, Stream } from "effect"
import { manifestChecksum } from "../domain/hash.js"
import { FileEntry } from "../domain/model.js"
import { IoError, type TarballUnsafe } from "../errors.js"
import { make as makeWorkspace, writeFileAtomic } from "../services/Workspace.js"
import { fileRecord, gzip, tarOf } from "./archive.js"
import { type Progress, silentProgress } from "./progress.js"

/** agentsync's own state folder in a project: hash cache, sync base, staging and backups. */
export const stateDir = (projectRoot: string) => nodePath.join(projectRoot, ".agentsync")

const CACHE_FILE = "hash-cache.json"
const CacheFile = Schema.Struct({
  version: Schema.Literal(1),
  root: Schema.String,
  /** path → [size, mtimeMs, sha256] */
  entries: Schema.Record({ key: Schema.String, value: Schema.Tuple(Schema.Number, Schema.Number, Schema.String) })
})
type CacheFile = typeof CacheFile.Type

// A file modified within this window of the scan may change again in the same mtime tick: never cache it.
const RACY_MS = 2000

export interface LocalManifest {
  readonly entries: ReadonlyArray<FileEntry>
  readonly checksum: string
  /** Files whose bytes were read this time (0 on a no-change run with a warm cache). */
  readonly hashed: number
}

export interface ManifestOptions {
  readonly servicesPath: string
  readonly projectRoot: string
  /** Write the refreshed cache back (false for a dry run, which changes nothing). */
  readonly writeCache: boolean
  readonly progress?: Progress
}

const io = (path: string, what: string) => (cause: unknown) =>
  new IoError({ path, reason: `${what}: ${cause instanceof Error ? cause.message : String(cause)}`, cause })

const hashFile = (full: string) =>
  Effect.tryPromise({
    try: async () => {
      const hash = createHash("sha256")
      let size = 0
      const handle = await fs.open(full, "r")
      try {
        for await (const chunk of handle.createReadStream({ highWaterMark: 1 << 20 })) {
          hash.update(chunk as Buffer)
          size += (chunk as Buffer).length
        }
      } finally {
        await handle.close().catch(() => undefined)
      }
      return { size, sha256: hash.digest("hex") }
    },
    catch: io(full, "cannot read")
  })

const readCache = (file: string, root: string) =>
  Effect.promise(() => fs.readFile(file, "utf8").catch(() => undefined)).pipe(
    Effect.map((text): CacheFile["entries"] => {
      if (text === undefined) return {}
      // A damaged or foreign cache is only a slower run: start afresh.
      const decoded = Schema.decodeUnknownOption(Schema.parseJson(CacheFile))(text)
      return decoded._tag === "Some" && decoded.value.root === root ? decoded.value.entries : {}
    })
  )

/** Lists the tree with the membership list and `.agentsyncignore`, hashing only files the cache cannot vouch for. */
export const localManifest = Effect.fn("bundle.localManifest")(function* (options: ManifestOptions) {
  const progress = options.progress ?? silentProgress
  const workspace = makeWorkspace(options.servicesPath)
  const files = yield* workspace.listFiles()
  const cacheFile = nodePath.join(stateDir(options.projectRoot), CACHE_FILE)
  const cache = yield* readCache(cacheFile, workspace.root)
  const now = Date.now()
  const next: Record<string, readonly [number, number, string]> = {}
  let hashed = 0
  progress.start("hashing", files.length, "files")
  const entries = yield* Effect.forEach(
    files,
    (f) =>
      Effect.gen(function* () {
        const hit = cache[f.path]
        let sha: string
        let size = f.size
        if (hit !== undefined && hit[0] === f.size && hit[1] === f.mtimeMs) sha = hit[2]
        else {
          const h = yield* hashFile(nodePath.join(workspace.root, f.path))
          hashed++
          sha = h.sha256
          size = h.size
        }
        if (now - f.mtimeMs > RACY_MS && size === f.size) next[f.path] = [size, f.mtimeMs, sha]
        progress.advance(1)
        return new FileEntry({ path: f.path, size, sha256: sha }, { disableValidation: true })
      }),
    { concurrency: 16 }
  )
  progress.done()
  const changed = hashed > 0 || Object.keys(cache).length !== Object.keys(next).length
  if (options.writeCache && changed) {
    const body: CacheFile = { version: 1, root: workspace.root, entries: next }
    yield* writeFileAtomic(cacheFile, JSON.stringify(body))
  }
  return { entries, checksum: manifestChecksum(entries), hashed } satisfies LocalManifest
})

export interface BundleOptions {
  readonly servicesPath: string
  /** The files to carry, each with the hash the manifest promised; a file that changed since fails the bundle. */
  readonly files: ReadonlyArray<FileEntry>
  /** Records placed before the files (an upload's header entry). */
  readonly prelude?: ReadonlyArray<Uint8Array>
  readonly progress?: Progress
}

/**
 * A reproducible tar.gz of the given files, streamed: entries in the given order, fixed mode, owner and
 * mtime, so the same files give the same bytes. Each file is read once and checked against its hash.
 */
export const bundle = (options: BundleOptions): Stream.Stream<Uint8Array, IoError | TarballUnsafe> => {
  const root = nodePath.resolve(options.servicesPath)
  const progress = options.progress ?? silentProgress
  const records = Stream.fromIterable(options.files).pipe(
    Stream.mapEffect(
      (entry) =>
        Effect.gen(function* () {
          const full = nodePath.join(root, entry.path)
          const bytes = yield* Effect.tryPromise({ try: () => fs.readFile(full), catch: io(full, "cannot read") })
          const sha = createHash("sha256").update(bytes).digest("hex")
          if (sha !== entry.sha256 || bytes.length !== entry.size) {
            return yield* new IoError({ path: full, reason: "changed while bundling; run again" })
          }
          progress.advance(bytes.length)
          return fileRecord(entry.path, bytes) as Uint8Array
        }),
      { concurrency: 8 }
    )
  )
  const all = Stream.concat(Stream.fromIterable(options.prelude ?? []), records)
  return gzip(tarOf(all))
}
