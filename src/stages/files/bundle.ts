/** The bundle stage: the local manifest (hashes cached by path, size and mtime) and a reproducible tar.gz of chosen files. */
import { createHash } from "node:crypto"
import * as fsSync from "node:fs"
import * as fs from "node:fs/promises"
import * as nodePath from "node:path"
import { Effect, Schema, Stream } from "effect"
import { byPath, sha256 } from "../../domain/hash.js"
import { type FileEntry, fileEntry, isExecutableMode, linkEntry, linkTargetProblem } from "../../domain/model.js"
import { errnoCode, IoError, ioError as io, type TarballUnsafe } from "../../errors.js"
import { type ProjectFileState, stateOf } from "../../services/FileState.js"
import { type Progress, silentProgress, withProgress } from "../../services/Progress.js"
import { RACY_MS } from "../../services/state.js"
import { hashTree } from "../../services/TreeHash.js"
import { make as makeWorkspace, type WorkspaceFile } from "../../services/Workspace.js"
import { bufferPool, type Compression, compress, LINK_LEVEL, recordBatch, tarOf } from "./archive.js"

export { RACY_MS, stateDir } from "../../services/state.js"

const CACHE_FILE = "hash-cache.json" as const
type CacheEntry = readonly [number, number, string]
const isCacheEntry = (u: unknown): u is CacheEntry =>
  Array.isArray(u) && u.length === 3 && typeof u[0] === "number" && typeof u[1] === "number" && typeof u[2] === "string"
/** Version 1 (releases before version 2): path → [size, mtimeMs, sha256], one JSON object keyed by path. */
const CacheEntries = Schema.declare(
  (u: unknown): u is Readonly<Record<string, CacheEntry>> =>
    typeof u === "object" && u !== null && Object.values(u).every(isCacheEntry),
  { identifier: "HashCacheEntries" }
)
const listOf = <A>(is: (v: unknown) => v is A, identifier: string) =>
  Schema.declare((u: unknown): u is ReadonlyArray<A> => Array.isArray(u) && u.every(is), { identifier })
/**
 * Version 2: four lists, index for index, in the order of the listing (by path). Two arrays of numbers and two of
 * strings parse and print several times faster than an object with a key per file, and a run looks its listing
 * up in the same order, so no map of the paths is built.
 */
const CacheFile = Schema.Union(
  Schema.Struct({
    version: Schema.Literal(2),
    root: Schema.String,
    paths: listOf((v): v is string => typeof v === "string", "Paths"),
    sizes: listOf((v): v is number => typeof v === "number", "Sizes"),
    mtimes: listOf((v): v is number => typeof v === "number", "Mtimes"),
    sha256: listOf((v): v is string => typeof v === "string", "Hashes")
  }),
  Schema.Struct({ version: Schema.Literal(1), root: Schema.String, entries: CacheEntries })
)

/** A kept hash cache: its entry for a path, asked in path order (any order works, in path order it is cheapest). */
interface HashCache {
  readonly size: number
  /** Read from version 1: rewritten once as version 2. */
  readonly older?: true
  readonly get: (path: string) => CacheEntry | undefined
}

/** The version 2 lists as a cache: a cursor that moves forward with the listing, else a binary search. */
const sortedCache = (c: {
  readonly paths: ReadonlyArray<string>
  readonly sizes: ReadonlyArray<number>
  readonly mtimes: ReadonlyArray<number>
  readonly sha256: ReadonlyArray<string>
}): HashCache | undefined => {
  const n = c.paths.length
  if (c.sizes.length !== n || c.mtimes.length !== n || c.sha256.length !== n) return undefined
  for (let i = 1; i < n; i++) if (!(c.paths[i - 1]! < c.paths[i]!)) return undefined
  let at = 0
  const entry = (i: number): CacheEntry => [c.sizes[i]!, c.mtimes[i]!, c.sha256[i]!]
  return {
    size: n,
    get: (path) => {
      if (at < n && c.paths[at] === path) return entry(at++)
      let lo = 0
      let hi = n
      while (lo < hi) {
        const mid = (lo + hi) >>> 1
        if (c.paths[mid]! < path) lo = mid + 1
        else hi = mid
      }
      if (lo < n && c.paths[lo] === path) {
        at = lo + 1
        return entry(lo)
      }
      at = lo
      return undefined
    }
  }
}

/** A symbolic link of the tree that file sync does not carry, and why (see `linkTargetProblem`). */
export interface NotCarried {
  readonly path: string
  readonly target: string
  readonly reason: string
}

export interface LocalManifest {
  readonly entries: ReadonlyArray<FileEntry>
  /** Links whose target is absolute or leaves the tree: not in `entries`, reported by path. */
  readonly notCarried: ReadonlyArray<NotCarried>
  /** Files whose bytes were read this time (0 on a no-change run with a warm cache). */
  readonly hashed: number
  /** The listing the entries were made from, and when it was taken. */
  readonly listed: ReadonlyArray<WorkspaceFile>
  readonly listedAt: number
}

export interface ManifestOptions {
  readonly servicesPath: string
  readonly projectRoot: string
  /** Write the refreshed cache back (false for a dry run, which changes nothing). */
  readonly writeCache: boolean
  readonly progress?: Progress
  /** The tree as just listed (with the time it was listed), when the caller has it. */
  readonly listed?: { readonly files: ReadonlyArray<WorkspaceFile>; readonly at: number }
}

// Small files are read whole and synchronously: for thousands of small files this is several times faster
// than going through the thread pool, and the CLI has nothing else to do meanwhile.
const SMALL = 4 * 1024 * 1024
const BATCH_BYTES = 1024 * 1024
// A batch's buffer: its files' bytes, a header and padding per file (a batch of one larger file is not pooled).
const POOLED_BYTES = BATCH_BYTES + 256 * 1024

// A kept cache is rewritten (its whole JSON, 1.2 MB at 10,000 files) only when what it would save the next run is
// worth more than writing it: a few small files re-read cost less than that, and a settled run reads no cache.
const REWRITE_FILES = 64
const REWRITE_BYTES = 1024 * 1024

const worthWriting = (cache: HashCache, next: number, hashed: ReadonlyArray<FileEntry>) => {
  if (cache.older === true) return true
  let bytes = 0
  for (const h of hashed) bytes += h.size
  if (hashed.length >= REWRITE_FILES || bytes >= REWRITE_BYTES) return true
  // Entries of files gone or no longer trusted: the cache shrinks only when there are many.
  const kept = next - hashed.length
  return cache.size - kept >= REWRITE_FILES
}

// One byte past a file's promised size tells whether it grew since it was hashed.
const PROBE = Buffer.alloc(1)

/** Fills `slot` from a file; true when the file held exactly that many bytes. */
const readInto = (full: string, slot: Buffer) =>
  Effect.try({
    try: () => {
      const fd = fsSync.openSync(full, "r")
      try {
        let at = 0
        for (let n = 1; n > 0 && at < slot.length; at += n) n = fsSync.readSync(fd, slot, at, slot.length - at, null)
        return at === slot.length && fsSync.readSync(fd, PROBE, 0, 1, null) === 0
      } finally {
        fsSync.closeSync(fd)
      }
    },
    catch: io(full, "cannot read")
  })

/** `readInto` through the thread pool, for large files. */
const readIntoAsync = (full: string, slot: Buffer) =>
  Effect.tryPromise({
    try: async () => {
      const handle = await fs.open(full, "r")
      try {
        let at = 0
        for (let n = 1; n > 0 && at < slot.length; at += n)
          n = (await handle.read(slot, at, slot.length - at, null)).bytesRead
        return at === slot.length && (await handle.read(Buffer.alloc(1), 0, 1, null)).bytesRead === 0
      } finally {
        await handle.close()
      }
    },
    catch: io(full, "cannot read")
  })

const readCache = (state: ProjectFileState, root: string) =>
  state.read(CACHE_FILE).pipe(
    Effect.map((text): HashCache | undefined => {
      if (text === undefined) return undefined
      // A damaged or foreign cache is only a slower run: start afresh.
      const decoded = Schema.decodeUnknownOption(Schema.parseJson(CacheFile))(text)
      if (decoded._tag === "None" || decoded.value.root !== root) return undefined
      const kept = decoded.value
      if (kept.version === 2) return sortedCache(kept)
      return { size: Object.keys(kept.entries).length, get: (path) => kept.entries[path], older: true }
    })
  )

/**
 * Lists the tree with the membership list and `.agentsyncignore`, hashing only files the cache cannot vouch for.
 * Whether a file is executable comes from the listing's stat (the cache holds content only): a chmod is seen
 * whatever the cache says.
 */
export const localManifest = Effect.fn("bundle.localManifest")(function* (options: ManifestOptions) {
  const progress = options.progress ?? silentProgress
  const workspace = makeWorkspace(options.servicesPath)
  const listed = options.listed ?? { files: yield* workspace.listFiles(), at: Date.now() }
  const { files, links, notCarried } = splitLinks(listed.files)
  const now = listed.at
  const state = yield* stateOf(options.projectRoot)
  const kept = yield* readCache(state, workspace.root)
  // The entries to keep, by the listing's index (so written in its order).
  const next: Array<CacheEntry | undefined> = new Array(files.length)
  let nextCount = 0
  // Cache hits are settled in one synchronous pass; only the misses are read.
  const entries: Array<FileEntry> = new Array(files.length)
  const misses: Array<number> = []
  const hashed = yield* withProgress(
    progress,
    "hashing",
    files.length,
    "files",
    Effect.suspend(() => {
      files.forEach((f, i) => {
        const hit = kept?.get(f.path)
        if (hit !== undefined && hit[0] === f.size && hit[1] === f.mtimeMs) {
          entries[i] = fileEntry(f.path, f.size, hit[2], isExecutableMode(f.mode))
          if (now - f.mtimeMs > RACY_MS) {
            next[i] = hit
            nextCount++
          }
          progress.advance(1)
        } else misses.push(i)
      })
      return hashTree(
        workspace.root,
        misses.map((i) => files[i]!.path),
        { sizes: misses.map((i) => files[i]!.size), onHashed: progress.advance }
      )
    })
  )
  hashed.forEach((h, k) => {
    const f = files[misses[k]!]!
    entries[misses[k]!] = isExecutableMode(f.mode) ? fileEntry(h.path, h.size, h.sha256, true) : h
    if (now - f.mtimeMs > RACY_MS && h.size === f.size) {
      next[misses[k]!] = [h.size, f.mtimeMs, h.sha256]
      nextCount++
    }
  })
  if (options.writeCache && (kept === undefined || worthWriting(kept, nextCount, hashed))) {
    const paths: Array<string> = []
    const sizes: Array<number> = []
    const mtimes: Array<number> = []
    const sha256: Array<string> = []
    for (let i = 0; i < files.length; i++) {
      const e = next[i]
      if (e === undefined) continue
      paths.push(files[i]!.path)
      sizes.push(e[0])
      mtimes.push(e[1])
      sha256.push(e[2])
    }
    const body: typeof CacheFile.Type = { version: 2, root: workspace.root, paths, sizes, mtimes, sha256 }
    yield* state.write(CACHE_FILE, JSON.stringify(body))
  }
  return {
    entries: links.length === 0 ? entries : [...entries, ...links].sort(byPath),
    notCarried,
    hashed: hashed.length,
    listed: listed.files,
    listedAt: now
  } satisfies LocalManifest
})

/**
 * A listing's regular files apart from its symbolic links, which are not hashed through the cache: a link's
 * entry is its target text's hash, taken from the listing (links are few and their targets short). A link whose
 * target is absolute or leaves the tree is not carried.
 */
const splitLinks = (listed: ReadonlyArray<WorkspaceFile>) => {
  if (!listed.some((f) => f.link !== undefined)) return { files: listed, links: [], notCarried: [] }
  const links: Array<FileEntry> = []
  const notCarried: Array<NotCarried> = []
  for (const f of listed) {
    if (f.link === undefined) continue
    const reason = linkTargetProblem(f.path, f.link)
    if (reason === undefined) links.push(linkEntry(f.path, f.size, sha256(f.link)))
    else notCarried.push({ path: f.path, target: f.link, reason })
  }
  return { files: listed.filter((f) => f.link === undefined), links, notCarried }
}

/**
 * The batch with each symbolic link's target read (never followed) and checked against its entry's hash, as a
 * file's bytes are: a link's record carries its target in its header.
 */
const linkTargets = (root: string, files: ReadonlyArray<FileEntry>) =>
  Effect.try({
    try: () =>
      files.map((entry) => {
        if (entry.link !== true) return entry
        const full = nodePath.join(root, entry.path)
        let target: string | undefined
        try {
          target = fsSync.readlinkSync(full)
        } catch (e) {
          // Not a link any more (or gone): changed since it was listed.
          if (errnoCode(e) !== "EINVAL" && errnoCode(e) !== "ENOENT") throw io(full, "cannot read the link")(e)
        }
        if (target === undefined || Buffer.byteLength(target) !== entry.size || sha256(target) !== entry.sha256)
          throw new IoError({ path: full, reason: "changed while bundling; run again" })
        return { path: entry.path, size: entry.size, target }
      }),
    catch: (e) => (e instanceof IoError ? e : io(root, "cannot read the links")(e))
  })

export interface BundleOptions {
  readonly servicesPath: string
  /** The files to carry, each with the hash the manifest promised; a file that changed since fails the bundle. */
  readonly files: ReadonlyArray<FileEntry>
  /** Records placed before the files (an upload's header entry). */
  readonly prelude?: ReadonlyArray<Uint8Array>
  readonly progress?: Progress
  /** The format and level (see `compressionFor`); default gzip at `LINK_LEVEL`. */
  readonly compression?: Compression
}

/**
 * A reproducible tar.gz of the given files, streamed: entries in the given order, fixed owner and mtime, the
 * mode 0755 or 0644 as the entry is executable or not (a symbolic link as a link record naming its target),
 * so the same files give the same bytes. Each file is read once and checked against its hash.
 */
export const bundle = (options: BundleOptions): Stream.Stream<Uint8Array, IoError | TarballUnsafe> => {
  const root = nodePath.resolve(options.servicesPath)
  const progress = options.progress ?? silentProgress
  // Files travel in batches of about 1 MiB: one effect and one buffer per batch instead of per file.
  const batches: Array<Array<FileEntry>> = []
  let batch: Array<FileEntry> = []
  let bytes = 0
  for (const e of options.files) {
    if (batch.length > 0 && (bytes + e.size > BATCH_BYTES || batch.length >= 256)) {
      batches.push(batch)
      batch = []
      bytes = 0
    }
    batch.push(e)
    bytes += e.size
  }
  if (batch.length > 0) batches.push(batch)
  // A batch is one buffer of tar records; each file is read straight into its place there and hashed in place.
  // The buffers are used again once compressed: a few are out at a time whatever the tree's size.
  const pool = bufferPool(POOLED_BYTES)
  const readBatch = (files: ReadonlyArray<FileEntry>) =>
    Effect.flatMap(linkTargets(root, files), (laid) => {
      const { buffer, slots } = recordBatch(laid, pool.take)
      return Effect.forEach(
        files,
        (entry, i) => {
          if (entry.link === true) return Effect.sync(() => progress.advance(entry.size))
          const full = nodePath.join(root, entry.path)
          const slot = slots[i]!
          const read = entry.size <= SMALL ? readInto(full, slot) : readIntoAsync(full, slot)
          return Effect.flatMap(read, (whole) => {
            // The archive carries exactly the bytes the manifest promised, or nothing.
            if (!whole || createHash("sha256").update(slot).digest("hex") !== entry.sha256) {
              return Effect.fail(new IoError({ path: full, reason: "changed while bundling; run again" }))
            }
            progress.advance(entry.size)
            return Effect.void
          })
        },
        { discard: true }
      ).pipe(Effect.as(buffer as Uint8Array))
    })
  const records = Stream.fromIterable(batches).pipe(Stream.mapEffect(readBatch))
  const all = Stream.concat(Stream.fromIterable(options.prelude ?? []), records)
  return compress(tarOf(all), options.compression ?? { format: "gzip", level: LINK_LEVEL }, pool.release)
}
