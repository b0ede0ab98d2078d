/** The remote side of a plan: the head manifest, asked for conditionally against the copy kept in .agentsync. */
import { createHash } from "node:crypto"
import { Effect, Schema } from "effect"
import { FileEntries, isEntry, RemoteManifest } from "../../api/files.js"
import { manifestChecksum, updateText } from "../../domain/hash.js"
import { type FileEntry, Sha256 } from "../../domain/model.js"
import type { IoError } from "../../errors.js"
import { stateOf } from "../../services/FileState.js"
import { SyncApiClient } from "../../services/SyncApi.js"
import { HEAD_FILE, stateText } from "../../services/state.js"
import type { Contents } from "../../services/WorkspaceWrite.js"
import { isKeptLines, keepable, keptHeader, linesOf, readKeptLines } from "./keptLines.js"

const listOf = <A>(is: (v: unknown) => v is A, identifier: string) =>
  Schema.declare((u: unknown): u is ReadonlyArray<A> => Array.isArray(u) && u.every(is), { identifier })
const isString = (v: unknown): v is string => typeof v === "string"
const isIndex = (v: unknown): v is number => Number.isSafeInteger(v)

/**
 * The last head manifest seen, with the API it came from: another server or tenant never reuses it. Version 4
 * (written since, see `keptLines.ts`): a sealed header line, then the manifest checksum's own lines, so that the
 * checksum is the copy's check and a push's next head and its checksum are the copy's bytes spliced. Version 3 (read
 * only): `{"version":3,"digest":D,"kept":K}`, K the lists below as JSON text and D the SHA-256 of that text.
 * Version 2 (read only): the same lists beside the version, the copy checked by its manifest checksum and each entry
 * by the FileEntry rules. Version 1 (read only): an object per entry.
 */
const Lists = {
  url: Schema.String,
  tenant: Schema.String,
  revision: Schema.String,
  checksum: Sha256,
  paths: listOf(isString, "Paths"),
  sizes: listOf(isIndex, "Sizes"),
  sha256: listOf(isString, "Hashes"),
  executable: listOf(isIndex, "Executables"),
  links: listOf(isIndex, "Links")
}
const KeptV3 = Schema.Struct(Lists)
const CacheFile = Schema.Union(
  Schema.Struct({ version: Schema.Literal(2), ...Lists }),
  Schema.Struct({
    version: Schema.Literal(1),
    url: Schema.String,
    manifest: Schema.Struct({ tenant: Schema.String, revision: Schema.String, entries: FileEntries, checksum: Sha256 })
  })
)
type KeptLists = typeof KeptV3.Type

/** The opening of a version 3 copy, up to its digest, and what follows the digest up to the kept text. */
const V3_OPEN = '{"version":3,"digest":"'
const V3_KEPT = '","kept":'

/**
 * The entries the lists keep, index for index; undefined when they do not line up or a flag's index is past the
 * end. `checked`: each entry is also asked the FileEntry rules (a copy no digest vouches for).
 */
const entriesOf = (kept: KeptLists, checked: boolean): ReadonlyArray<FileEntry> | undefined => {
  const n = kept.paths.length
  if (kept.sizes.length !== n || kept.sha256.length !== n) return undefined
  const entries: Array<{ path: string; size: number; sha256: string; executable?: true; link?: true }> = new Array(n)
  for (let i = 0; i < n; i++) {
    // Parallel lists whose lengths were checked above: an index below `n` is in each.
    entries[i] = { path: kept.paths[i]!, size: kept.sizes[i]!, sha256: kept.sha256[i]! }
  }
  for (const i of kept.executable) {
    const entry = entries[i]
    if (entry === undefined) return undefined
    entry.executable = true
  }
  for (const i of kept.links) {
    const entry = entries[i]
    if (entry === undefined) return undefined
    entry.link = true
  }
  return !checked || entries.every(isEntry) ? entries : undefined
}

/** The lists of a version 3 copy whose digest matches its kept text; undefined for anything else. */
const readV3 = (text: string): KeptLists | undefined => {
  const at = V3_OPEN.length + 64
  if (!text.startsWith(V3_OPEN) || text.slice(at, at + V3_KEPT.length) !== V3_KEPT || !text.endsWith("}"))
    return undefined
  const kept = text.slice(at + V3_KEPT.length, -1)
  if (updateText(createHash("sha256"), kept).digest("hex") !== text.slice(V3_OPEN.length, at)) return undefined
  const decoded = Schema.decodeUnknownOption(Schema.parseJson(KeptV3))(kept)
  return decoded._tag === "Some" ? decoded.value : undefined
}

/**
 * The cached head manifest for this API, if any and intact, so a damaged file is only a slower run (the manifest
 * is fetched whole), never a wrong plan: version 4 by its seal and checksum, version 3 by its digest, older ones by
 * their entries adding up to their checksum.
 */
export const readKnownHead = Effect.fn("remote.readKnownHead")(function* (projectRoot: string, url: string) {
  // Read synchronously: the request it conditions should leave before the local tree is scanned.
  const bytes = yield* (yield* stateOf(projectRoot)).readBytes(HEAD_FILE)
  if (bytes === undefined) return undefined
  if (isKeptLines(bytes)) return readKeptLines(bytes, url)
  const text = stateText(bytes)
  const v3 = text.startsWith(V3_OPEN) ? readV3(text) : undefined
  if (v3 !== undefined) {
    const entries = v3.url === url ? entriesOf(v3, false) : undefined
    if (entries === undefined) return undefined
    const { tenant, revision, checksum } = v3
    return new RemoteManifest({ tenant, revision, entries, checksum }, { disableValidation: true })
  }
  const decoded = Schema.decodeUnknownOption(Schema.parseJson(CacheFile))(text)
  if (decoded._tag === "None" || decoded.value.url !== url) return undefined
  const kept = decoded.value
  const m =
    kept.version === 1
      ? kept.manifest
      : { tenant: kept.tenant, revision: kept.revision, entries: entriesOf(kept, true), checksum: kept.checksum }
  if (m.entries === undefined || manifestChecksum(m.entries) !== m.checksum) return undefined
  return new RemoteManifest({ ...m, entries: m.entries }, { disableValidation: true })
})

/**
 * A head manifest's kept text (version 4, see `keptLines.ts`) made before its revision is known, finished once it
 * is: the lines are had while a push waits for the server's answer, and the header after.
 */
export const keptTextFor = (
  url: string,
  manifest: { readonly tenant: string; readonly checksum: string; readonly entries: ReadonlyArray<FileEntry> }
): ((revision: string) => ReadonlyArray<string>) => {
  const body = linesOf(manifest.entries)
  return (revision) => [
    keptHeader({ url, tenant: manifest.tenant, revision, checksum: manifest.checksum, files: manifest.entries.length }),
    ...body
  ]
}

/** A head manifest as version 4 keeps it: its header, then its lines in path order (see `keptLines.ts`). */
export const keptText = (
  url: string,
  manifest: {
    readonly tenant: string
    readonly revision: string
    readonly checksum: string
    readonly entries: ReadonlyArray<FileEntry>
  }
): string => keptTextFor(url, manifest)(manifest.revision).join("")

/**
 * Keeps a head manifest's text, as `keptTextFor` or `splicedHead` makes it, for the next run's conditional request.
 * A text with a path UTF-8 cannot hold (a lone surrogate, see `keepable`) would read back as another tree: the copy
 * is removed instead, and the next run fetches the head whole.
 */
export const keepHeadText = (projectRoot: string, text: Contents): Effect.Effect<void, IoError> =>
  Effect.flatMap(stateOf(projectRoot), (state) =>
    keepable(typeof text === "string" ? [text] : Array.isArray(text) ? text.filter(isString) : [])
      ? state.write(HEAD_FILE, text)
      : state.remove(HEAD_FILE)
  )

/** Keeps a head manifest for the next run's conditional request (an empty tenant has nothing to keep). */
export const writeKnownHead = (
  projectRoot: string,
  url: string,
  manifest: RemoteManifest
): Effect.Effect<void, IoError> => {
  const { tenant, revision, checksum, entries } = manifest
  return revision === null
    ? Effect.void
    : keepHeadText(projectRoot, keptTextFor(url, { tenant, checksum, entries })(revision))
}

export interface HeadManifest {
  readonly manifest: RemoteManifest
  /** true when the server answered 304 and the kept copy was used. */
  readonly cached: boolean
}

/** The head manifest: 304 to the kept copy's ETag when the head has not moved; else fetched (and kept, if asked). */
export const headManifest = Effect.fn("remote.headManifest")(function* (options: {
  readonly projectRoot: string
  readonly keep: boolean
  /** The head as already fetched in this run. */
  readonly fetched?: RemoteManifest | undefined
  /** The head revision the server confirmed in this run: a kept manifest of it is used without asking again. */
  readonly confirmed?: string | undefined
}) {
  const client = yield* SyncApiClient
  const known = options.fetched === undefined ? yield* readKnownHead(options.projectRoot, client.baseUrl) : undefined
  const manifest =
    options.fetched ??
    (known !== undefined && options.confirmed !== undefined && known.revision === options.confirmed
      ? known
      : yield* client.manifest(known === undefined ? {} : { known }))
  const cached = known !== undefined && manifest === known
  if (!cached && options.keep) yield* writeKnownHead(options.projectRoot, client.baseUrl, manifest)
  return { manifest, cached } satisfies HeadManifest
})

/** The manifest of the revision a push created: the head it was planned against with the push applied (its tree sorted by path). */
export const pushedHead = (head: RemoteManifest, revision: string, tree: ReadonlyArray<FileEntry>, checksum: string) =>
  new RemoteManifest({ tenant: head.tenant, revision, entries: tree, checksum }, { disableValidation: true })
