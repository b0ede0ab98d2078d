/** The bundle stage: the local manifest (hashes cached by path, size and mtime) and a reproducible tar.gz of chosen files. */
import * as nodePath from "node:path"
import { Array as Arr, Console, Effect, Schema, Stream } from "effect"
import { byPath, sha256 } from "../../domain/hash.js"
import { type FileEntry, fileEntry, isExecutableMode, linkEntry, linkTargetProblem } from "../../domain/model.js"
import { IoError, type TarballUnsafe } from "../../errors.js"
import { type ProjectFileState, stateOf } from "../../services/FileState.js"
import { type Progress, silentProgress, withProgress } from "../../services/Progress.js"
import { type SpecialFile, type SpecialKind, specialName, specialsOf } from "../../services/state.js"
import { type WorkspaceFile, type WorkspaceShape, workspaceAt } from "../../services/Workspace.js"
import type { ReadInto } from "../../services/WorkspaceRead.js"
import { bufferPool, type Compression, compress, LINK_LEVEL, recordBatch, slotAndPad, tarOf } from "./archive.js"

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
  let previous: string | undefined
  for (const path of c.paths) {
    if (previous !== undefined && !(previous < path)) return undefined
    previous = path
  }
  let at = 0
  // Parallel lists as the cache file keeps them, their lengths checked above: an index below `n` is in each.
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

/**
 * What of the tree file sync does not carry, and why: a symbolic link whose target it refuses (`target`, see
 * `linkTargetProblem`), or a special file (`special`: a FIFO, a socket, a device), never opened.
 */
export type NotCarried =
  | { readonly path: string; readonly target: string; readonly reason: string }
  | { readonly path: string; readonly special: SpecialKind; readonly reason: string }

export interface LocalManifest {
  readonly entries: ReadonlyArray<FileEntry>
  /** Links whose target is absolute or leaves the tree, and special files: not in `entries`, reported by path. */
  readonly notCarried: ReadonlyArray<NotCarried>
  /** Files whose bytes were read this time (0 on a no-change run with a warm cache). */
  readonly hashed: number
  /** The listing the entries were made from, and its stamp (see `listingClock`). */
  readonly listed: ReadonlyArray<WorkspaceFile>
  readonly listedAt: number
}

export interface ManifestOptions {
  readonly servicesPath: string
  readonly projectRoot: string
  /** Write the refreshed cache back (false for a dry run, which changes nothing). */
  readonly writeCache: boolean
  readonly progress?: Progress
  /** The tree as just listed (with its stamp, see `listingClock`), when the caller has it. */
  readonly listed?: { readonly files: ReadonlyArray<WorkspaceFile>; readonly at: number }
}

const BATCH_BYTES = 1024 * 1024
// A batch's buffer: its files' bytes, a header and padding per file (a batch of one larger file is not pooled).
export const POOLED_BYTES = BATCH_BYTES + 256 * 1024

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

/** Writes the cache: `next[i]`, where there is one, for the listed `files[i]` (in the listing's order, by path). */
const writeCache = (
  state: ProjectFileState,
  root: string,
  files: ReadonlyArray<WorkspaceFile>,
  next: ReadonlyArray<CacheEntry | undefined>
) => {
  const paths: Array<string> = []
  const sizes: Array<number> = []
  const mtimes: Array<number> = []
  const sha256: Array<string> = []
  files.forEach((f, i) => {
    const e = next[i]
    if (e === undefined) return
    paths.push(f.path)
    sizes.push(e[0])
    mtimes.push(e[1])
    sha256.push(e[2])
  })
  const body: typeof CacheFile.Type = { version: 2, root, paths, sizes, mtimes, sha256 }
  // Only a cache: a run that could not keep it (a folder in its place, a full disk) has done its work all the same,
  // and fails for it neither before nor after an upload; a later run that lists the tree hashes it again. Said as
  // a plain line on stderr, as the CLI's other notes are.
  return state
    .write(CACHE_FILE, JSON.stringify(body))
    .pipe(
      Effect.catchAll((e) =>
        Console.error(
          `warning: the hash cache was not kept (${e.message}); a later run that lists the tree hashes it again`
        )
      )
    )
}

/**
 * The hash cache made from hashes taken elsewhere than here (a first upload hashes each file as it archives it):
 * `hashes[i]` of the listed `files[i]`, regular files in the listing's order; a file modified at or after the
 * listing's stamp `at`, or read at another size than listed, gets no entry (as `localManifest` keeps none).
 */
export const keepHashes = (
  options: { readonly servicesPath: string; readonly projectRoot: string },
  files: ReadonlyArray<WorkspaceFile>,
  at: number,
  hashes: ReadonlyArray<FileEntry | undefined>
) =>
  Effect.gen(function* () {
    const workspace = yield* workspaceAt(options.servicesPath)
    const state = yield* stateOf(options.projectRoot)
    const next = files.map((f, i): CacheEntry | undefined => {
      const h = hashes[i]
      return h !== undefined && f.link === undefined && f.mtimeMs < at && h.size === f.size
        ? [h.size, f.mtimeMs, h.sha256]
        : undefined
    })
    yield* writeCache(state, workspace.root, files, next)
  })

/** The tree listed, and the listing's stamp taken from the state's clock (see `listingClock`). */
export const listAndStamp = (workspace: WorkspaceShape, state: ProjectFileState) =>
  Effect.flatMap(workspace.listFiles(), (files) => Effect.map(state.clock(files), (at) => ({ files, at })))

/**
 * Lists the tree with the membership list and `.agentsyncignore`, hashing only files the cache cannot vouch for.
 * Whether a file is executable comes from the listing's stat (the cache holds content only): a chmod is seen
 * whatever the cache says.
 */
export const localManifest = Effect.fn("bundle.localManifest")(function* (options: ManifestOptions) {
  const progress = options.progress ?? silentProgress
  const workspace = yield* workspaceAt(options.servicesPath)
  const state = yield* stateOf(options.projectRoot)
  const listed = options.listed ?? (yield* listAndStamp(workspace, state))
  const { files, links, notCarried } = splitLinks(listed.files)
  // The listing's stamp: a file modified at or after it is racy, and no cache entry is kept for it.
  const stamp = listed.at
  const kept = yield* readCache(state, workspace.root)
  // The entries to keep, by the listing's index (so written in its order).
  const next: Array<CacheEntry | undefined> = new Array(files.length)
  let nextCount = 0
  // Cache hits are settled in one synchronous pass; only the misses are read.
  const entries: Array<FileEntry> = new Array(files.length)
  const misses: Array<{ readonly at: number; readonly file: WorkspaceFile }> = []
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
          if (f.mtimeMs < stamp) {
            next[i] = hit
            nextCount++
          }
          progress.advance(1)
        } else misses.push({ at: i, file: f })
      })
      return workspace.hashFiles(
        misses.map((m) => m.file),
        progress.advance
      )
    })
  )
  // One hash per miss, in order (a port that answers otherwise is at fault, not the tree).
  if (hashed.length !== misses.length)
    return yield* Effect.dieMessage(`the workspace hashed ${hashed.length} files of ${misses.length} asked`)
  Arr.zip(misses, hashed).forEach(([{ at, file: f }, h]) => {
    entries[at] = isExecutableMode(f.mode) ? fileEntry(h.path, h.size, h.sha256, true) : h
    if (f.mtimeMs < stamp && h.size === f.size) {
      next[at] = [h.size, f.mtimeMs, h.sha256]
      nextCount++
    }
  })
  if (options.writeCache && (kept === undefined || worthWriting(kept, nextCount, hashed)))
    yield* writeCache(state, workspace.root, files, next)
  return {
    entries: links.length === 0 ? entries : [...entries, ...links].sort(byPath),
    notCarried,
    hashed: hashed.length,
    listed: listed.files,
    listedAt: stamp
  } satisfies LocalManifest
})

/** A special file as not carried: named by its kind, never opened. */
const specialNotCarried = (s: SpecialFile): NotCarried => ({
  path: s.path,
  special: s.kind,
  reason: `${specialName(s.kind)}: file sync carries only regular files, folders and symbolic links, and never opens one`
})

/**
 * A listing's regular files apart from its symbolic links, which are not hashed through the cache: a link's
 * entry is its target text's hash, taken from the listing (links are few and their targets short). A link whose
 * target is absolute or leaves the tree is not carried, nor is a special file the walk found (`specialsOf`).
 */
export const splitLinks = (listed: ReadonlyArray<WorkspaceFile>) => {
  const special = specialsOf(listed)
  if (!listed.some((f) => f.link !== undefined))
    return { files: listed, links: [], notCarried: special.map(specialNotCarried) }
  const links: Array<FileEntry> = []
  const notCarried: Array<NotCarried> = special.map(specialNotCarried)
  for (const f of listed) {
    if (f.link === undefined) continue
    const reason = linkTargetProblem(f.path, f.link)
    if (reason === undefined) links.push(linkEntry(f.path, f.size, sha256(f.link)))
    else notCarried.push({ path: f.path, target: f.link, reason })
  }
  return {
    files: listed.filter((f) => f.link === undefined),
    links,
    notCarried: notCarried.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  }
}

/**
 * The batch with each symbolic link's target read (never followed) and checked as a file's bytes are: a link's record
 * carries its target in its header. `expected(f)` is undefined for a regular file, else whether a target read is the
 * one `f` stands for (the hash a manifest promised, or the target listed); a link that is not one any more, is gone
 * or points elsewhere fails the batch as changed since it was listed.
 */
export const linkTargets = <F extends { readonly path: string; readonly size: number }>(
  workspace: WorkspaceShape,
  files: ReadonlyArray<F>,
  expected: (f: F) => ((target: string) => boolean) | undefined
): Effect.Effect<ReadonlyArray<F | LaidLink>, IoError> => {
  const links = files.filter((f) => expected(f) !== undefined)
  if (links.length === 0) return Effect.succeed(files)
  return Effect.flatMap(workspace.readLinks(links.map((f) => f.path)), (targets) => {
    const laid: Array<F | LaidLink> = []
    let k = 0
    for (const f of files) {
      const holds = expected(f)
      if (holds === undefined) {
        laid.push(f)
        continue
      }
      const target = targets[k++]
      if (target === undefined || !holds(target)) return Effect.fail(changed(workspace, f.path))
      laid.push({ path: f.path, size: f.size, target })
    }
    return Effect.succeed(laid)
  })
}

/** A link's record as `recordBatch` lays it: its target in its header. */
export interface LaidLink {
  readonly path: string
  readonly size: number
  readonly target: string
}

/** A file read otherwise than listed (or than its entry promised): the run fails, naming it. */
export const changed = (workspace: WorkspaceShape, path: string) =>
  new IoError({ path: nodePath.join(workspace.root, path), reason: "changed while bundling; run again" })

/** A manifest entry's link check: its target's size and hash. */
const promised = (entry: FileEntry) =>
  entry.link === true
    ? (target: string) => Buffer.byteLength(target) === entry.size && sha256(target) === entry.sha256
    : undefined

export interface BundleOptions {
  readonly servicesPath: string
  /** The files to carry, each with the hash the manifest promised; a file that changed since fails the bundle. */
  readonly files: ReadonlyArray<FileEntry>
  /** Records placed before the files (an upload's header entry). */
  readonly prelude?: ReadonlyArray<Uint8Array>
  readonly progress?: Progress
  /** The format and level (see `compressionFor`); default gzip at `LINK_LEVEL`. */
  readonly compression?: Compression
  /**
   * Where stored members' buffers come from (default: a new one each). A pool given here must take a member back
   * only once the transport has written it (`SyncApiClient.upload`'s `written`).
   */
  readonly members?: (size: number) => Buffer
}

/**
 * A reproducible tar.gz of the given files, streamed: entries in the given order, fixed owner and mtime, the
 * mode 0755 or 0644 as the entry is executable or not (a symbolic link as a link record naming its target),
 * so the same files give the same bytes. Each file is read once and checked against its hash.
 */
export const bundle = (options: BundleOptions): Stream.Stream<Uint8Array, IoError | TarballUnsafe> =>
  Stream.unwrap(Effect.map(workspaceAt(options.servicesPath), (workspace) => bundleFrom(workspace, options)))

/** A file's read into its record's slot, with the padding byte after it where there is one (see `slotAndPad`). */
export const readOf = (path: string, into: Buffer): ReadInto & { readonly into: Buffer } => {
  const room = slotAndPad(into)
  return room === undefined ? { path, into } : { path, into, room }
}

/** Files in batches of about 1 MiB (at most 256 files): one effect and one buffer per batch instead of per file. */
export const batched = <F extends { readonly size: number }>(files: ReadonlyArray<F>) => {
  const batches: Array<{ readonly files: ReadonlyArray<F>; readonly bytes: number }> = []
  let batch: Array<F> = []
  let bytes = 0
  for (const e of files) {
    if (batch.length > 0 && (bytes + e.size > BATCH_BYTES || batch.length >= 256)) {
      batches.push({ files: batch, bytes })
      batch = []
      bytes = 0
    }
    batch.push(e)
    bytes += e.size
  }
  if (batch.length > 0) batches.push({ files: batch, bytes })
  return batches
}

const bundleFrom = (workspace: WorkspaceShape, options: BundleOptions) => {
  const progress = options.progress ?? silentProgress
  const batches = batched(options.files)
  // A batch is one buffer of tar records; each file is read straight into its place there (one call to the
  // workspace for the batch) and hashed in place. The buffers are used again once compressed: a few are out at a
  // time whatever the tree's size.
  const pool = bufferPool(POOLED_BYTES)
  const readBatch = ({ files, bytes }: (typeof batches)[number]) =>
    Effect.flatMap(linkTargets(workspace, files, promised), (laid) => {
      const { buffer, slots } = recordBatch(laid, pool.take)
      const reads: Array<ReadInto & { readonly into: Buffer; readonly entry: FileEntry }> = []
      for (const [entry, into] of Arr.zip(files, slots))
        if (entry.link !== true) reads.push({ ...readOf(entry.path, into), entry })
      return Effect.flatMap(workspace.readInto(reads), (whole) => {
        // The archive carries exactly the bytes the manifest promised, or nothing.
        const bad = reads.find((r, k) => whole[k] !== true || sha256(r.into) !== r.entry.sha256)
        if (bad !== undefined) return Effect.fail(changed(workspace, bad.entry.path))
        progress.advance(bytes)
        return Effect.succeed<Uint8Array>(buffer)
      })
    })
  const records = Stream.fromIterable(batches).pipe(Stream.mapEffect(readBatch))
  const all = Stream.concat(Stream.fromIterable(options.prelude ?? []), records)
  const compression = options.compression ?? { format: "gzip", level: LINK_LEVEL }
  return compress(tarOf(all), compression, pool.release, options.members)
}
