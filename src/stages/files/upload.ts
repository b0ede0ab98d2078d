/** The upload stage: the header and the new content of a push, streamed to the tenant under one idempotency key. */
import { randomUUID } from "node:crypto"
import * as os from "node:os"
import { Deferred, Effect, Exit, Stream } from "effect"
import { standIn, UPLOAD_HEADER_ENTRY, UploadHeader, type UploadResult } from "../../api/files.js"
import { type ArchiveFormat, CAPS, type CompressSetting, FORMATS } from "../../domain/caps.js"
import { byPath, manifestChecksum } from "../../domain/hash.js"
import type { FileEntry } from "../../domain/model.js"
import { type Progress, silentProgress, withProgress } from "../../services/Progress.js"
import { SyncApiClient, type SyncApiClientShape, type SyncApiError } from "../../services/SyncApi.js"
import { bufferPool, compressionFor, fileRecord, storedLength } from "./archive.js"
import { bundle } from "./bundle.js"
import { strictlySorted } from "./plan.js"

export interface UploadInput {
  readonly servicesPath: string
  /** The remote revision the plan was made against: the push succeeds only while it is still the head. */
  readonly base: string | null
  /** The remote tree at `base`. */
  readonly remote: ReadonlyArray<FileEntry>
  readonly set: ReadonlyArray<FileEntry>
  readonly delete: ReadonlyArray<string>
  readonly author?: string
  readonly idempotencyKey?: string
  readonly progress?: Progress
  /** The tree the upload produces and its manifestChecksum, when the caller has them (else made here). */
  readonly planned?: { readonly tree: ReadonlyArray<FileEntry>; readonly checksum: string }
  /**
   * Completed once an attempt's body has all been written to the connection (each chunk flushed, not only queued
   * before the connection is made): what waits for the answer can start without holding the request back.
   */
  readonly sent?: Deferred.Deferred<void>
}

export interface UploadOutcome {
  readonly result: UploadResult
  /** Compressed bytes sent in the last attempt. */
  readonly bytesSent: number
  /** Files whose bytes were sent (content the tenant already holds is not sent again). */
  readonly filesSent: number
  /** The tree the new revision holds (sorted by path), and its manifestChecksum. */
  readonly tree: ReadonlyArray<FileEntry>
  readonly checksum: string
}

// Members out at once: two being made, one or two waiting, one being written.
const MEMBERS_KEPT = 6

const defaultAuthor = () => {
  try {
    return `${os.userInfo().username}@${os.hostname()}`
  } catch {
    return os.hostname()
  }
}

/**
 * The tree the upload produces: remote, minus deletions, plus the set; sorted by path, as manifests are. Both sides
 * sorted (a head and a plan's uploads are) are merged in one pass; else through a map and a sort.
 */
export const resultingTree = (
  remote: ReadonlyArray<FileEntry>,
  set: ReadonlyArray<FileEntry>,
  deleted: ReadonlyArray<string>
): ReadonlyArray<FileEntry> => {
  if (!strictlySorted(set) || !strictlySorted(remote)) {
    const tree = new Map(remote.map((e) => [e.path, e]))
    for (const p of deleted) tree.delete(p)
    for (const e of set) tree.set(e.path, e)
    return [...tree.values()].sort(byPath)
  }
  const gone = new Set(deleted)
  const tree: Array<FileEntry> = []
  let i = 0
  let j = 0
  for (;;) {
    // Past its end a side reads undefined.
    const r = remote[i]
    const s = set[j]
    if (r === undefined && s === undefined) break
    if (s === undefined || (r !== undefined && r.path < s.path)) {
      i++
      if (r !== undefined && !gone.has(r.path)) tree.push(r)
    } else {
      // A path set and in the remote tree: the set's entry (a path both set and deleted is set).
      if (r !== undefined && r.path === s.path) i++
      j++
      tree.push(s)
    }
  }
  return tree
}

/**
 * What the server reads: what its last manifest answer said (or the settled check's 304, see
 * `SyncApiClient.heard`), or, when the client has had none (the stage called on its own) and the answer would change
 * the format, what a conditional request for the base says (a 304 carries it; a moved head makes the upload a
 * conflict anyway).
 */
const peerFormats = (
  client: SyncApiClientShape,
  host: string,
  setting: CompressSetting,
  input: UploadInput
): Effect.Effect<ReadonlyArray<ArchiveFormat>, SyncApiError> => {
  const said = client.serverFormats()
  if (said !== undefined || compressionFor(host, FORMATS, setting).format !== "zstd") return Effect.succeed(said ?? [])
  const known = input.base === null ? {} : { known: standIn("", input.base) }
  return client.manifest(known).pipe(Effect.map(() => client.serverFormats() ?? []))
}

export const upload = Effect.fn("upload")(function* (input: UploadInput) {
  const client = yield* SyncApiClient
  const progress = input.progress ?? silentProgress
  const tree = input.planned?.tree ?? resultingTree(input.remote, input.set, input.delete)
  const checksum = input.planned?.checksum ?? manifestChecksum(tree)
  const header = new UploadHeader({
    base: input.base,
    author: input.author ?? defaultAuthor(),
    set: input.set,
    delete: input.delete,
    checksum
  })
  const headerRecord = fileRecord(UPLOAD_HEADER_ENTRY, Buffer.from(JSON.stringify(header), "utf8"))
  // Content the tenant already holds (same hash under another path or revision) is not sent again; a symbolic
  // link always is (its record is a header, and the server checks each link's target).
  const held = new Set(input.remote.map((e) => e.sha256))
  const seen = new Set<string>()
  const send = input.set.filter((e) => {
    if (e.link === true) return true
    if (held.has(e.sha256) || seen.has(e.sha256)) return false
    seen.add(e.sha256)
    return true
  })
  const total = send.reduce((n, e) => n + e.size, 0)
  // Stored on loopback; on a link, zstd when the server said it reads it, else gzip.
  const host = new URL(client.baseUrl).hostname
  const compression = compressionFor(host, yield* peerFormats(client, host, client.compress, input), client.compress)
  let bytesSent = 0
  let attempts = 0
  // Stored members' buffers, used again once the socket has written them (a fresh one per member cost more than
  // its copy): a pool per attempt, so a retry never reuses a buffer an abandoned attempt's socket may still hold.
  let members = bufferPool(storedLength(CAPS.memberBytes), MEMBERS_KEPT)
  // Per attempt, its chunks not yet flushed and whether its body has ended: both done, the body has all gone. Each
  // chunk out is known by its attempt (a retry's count is not an abandoned attempt's).
  type Attempt = { pending: number; ended: boolean }
  const owner = new WeakMap<Uint8Array, Attempt>()
  const flushed = (attempt: Attempt) => {
    if (attempt.ended && attempt.pending === 0 && input.sent !== undefined) Deferred.unsafeDone(input.sent, Exit.void)
  }
  const body = () => {
    bytesSent = 0
    const attempt: Attempt = { pending: 0, ended: false }
    // A retry starts the count again.
    if (attempts++ > 0) progress.start("upload", total, "bytes")
    members = bufferPool(storedLength(CAPS.memberBytes), MEMBERS_KEPT)
    return bundle({
      servicesPath: input.servicesPath,
      files: send,
      prelude: [headerRecord],
      progress,
      compression,
      members: members.take
    }).pipe(
      Stream.tap((chunk) =>
        Effect.sync(() => {
          bytesSent += chunk.length
          attempt.pending++
          owner.set(chunk, attempt)
        })
      ),
      Stream.ensuring(
        Effect.sync(() => {
          attempt.ended = true
          flushed(attempt)
        })
      )
    )
  }
  const result = yield* withProgress(
    progress,
    "upload",
    total,
    "bytes",
    client.upload(body, input.idempotencyKey ?? randomUUID(), compression.format, (chunk) => {
      members.release(chunk)
      const attempt = owner.get(chunk)
      if (attempt === undefined) return
      owner.delete(chunk)
      attempt.pending--
      flushed(attempt)
    })
  )
  return { result, bytesSent, filesSent: send.length, tree, checksum } satisfies UploadOutcome
})
