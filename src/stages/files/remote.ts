/** The remote side of a plan: the head manifest, asked for conditionally against the copy kept in .agentsync. */
import { Effect, Schema } from "effect"
import { FileEntries, RemoteManifest } from "../../api/files.js"
import { manifestChecksum } from "../../domain/hash.js"
import { type FileEntry, Sha256 } from "../../domain/model.js"
import type { IoError } from "../../errors.js"
import { stateOf } from "../../services/FileState.js"
import { SyncApiClient } from "../../services/SyncApi.js"

const CACHE_FILE = "remote-manifest.json" as const

/** The last head manifest seen, with the API it came from: another server or tenant never reuses it. */
const CacheFile = Schema.Struct({
  version: Schema.Literal(1),
  url: Schema.String,
  manifest: Schema.Struct({ tenant: Schema.String, revision: Schema.String, entries: FileEntries, checksum: Sha256 })
})

/**
 * The cached head manifest for this API, if any and intact: its entries must still add up to its checksum,
 * so a damaged file is only a slower run (the manifest is fetched whole), never a wrong plan.
 */
export const readKnownHead = Effect.fn("remote.readKnownHead")(function* (projectRoot: string, url: string) {
  // Read synchronously: the request it conditions should leave before the local tree is scanned.
  const text = yield* (yield* stateOf(projectRoot)).read(CACHE_FILE)
  if (text === undefined) return undefined
  const decoded = Schema.decodeUnknownOption(Schema.parseJson(CacheFile))(text)
  if (decoded._tag === "None" || decoded.value.url !== url) return undefined
  const m = decoded.value.manifest
  if (manifestChecksum(m.entries) !== m.checksum) return undefined
  return new RemoteManifest(m, { disableValidation: true })
})

/** Keeps a head manifest for the next run's conditional request (an empty tenant has nothing to keep). */
export const writeKnownHead = (
  projectRoot: string,
  url: string,
  manifest: RemoteManifest
): Effect.Effect<void, IoError> =>
  manifest.revision === null
    ? Effect.void
    : Effect.flatMap(stateOf(projectRoot), (state) =>
        state.write(
          CACHE_FILE,
          JSON.stringify({
            version: 1,
            url,
            manifest: {
              tenant: manifest.tenant,
              revision: manifest.revision,
              entries: manifest.entries,
              checksum: manifest.checksum
            }
          })
        )
      )

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
