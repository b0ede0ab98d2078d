/** The upload stage: the header and the new content of a push (or, a first upload, the files then their trailer), streamed to the tenant under one idempotency key. */
import { randomUUID } from "node:crypto"
import * as os from "node:os"
import { Deferred, Effect, Exit, Stream } from "effect"
import {
  FilesRoutes,
  standIn,
  UPLOAD_HEADER_ENTRY,
  UPLOAD_LEAD_ENTRY,
  UploadHeader,
  UploadLead,
  type UploadResult
} from "../../api/files.js"
import { type ArchiveFormat, CAPS, type CompressSetting, FORMATS } from "../../domain/caps.js"
import { byPath, manifestChecksum } from "../../domain/hash.js"
import type { FileEntry } from "../../domain/model.js"
import { ApiError } from "../../errors.js"
import { type Progress, silentProgress, withProgress } from "../../services/Progress.js"
import { SyncApiClient, type SyncApiClientShape, type SyncApiError } from "../../services/SyncApi.js"
import type { WorkspaceFile } from "../../services/Workspace.js"
import { bufferPool, type Compression, compressionFor, storedLength, textRecord } from "./archive.js"
import { bundle } from "./bundle.js"
import { strictlySorted } from "./plan.js"
import { streamBundle } from "./streamBundle.js"

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
 * The entries of `set` whose bytes go in the archive. Content the tenant already holds (the same hash under another
 * path or revision of `remote`) is not sent again, nor is a hash an earlier entry sends; a symbolic link always is
 * (its record is a header, and the server checks each link's target). Only `set`'s hashes are put in a set and the
 * tree is passed over once against it: a small push asks about a few hashes, where a set of the tree's every hash
 * (10,000 on a one-file push) was made and dropped by each.
 */
export const toSend = (remote: ReadonlyArray<FileEntry>, set: ReadonlyArray<FileEntry>): ReadonlyArray<FileEntry> => {
  const wanted = new Set<string>()
  for (const e of set) if (e.link !== true) wanted.add(e.sha256)
  const held = new Set<string>()
  if (wanted.size > 0) for (const e of remote) if (wanted.has(e.sha256)) held.add(e.sha256)
  const seen = new Set<string>()
  return set.filter((e) => {
    if (e.link === true) return true
    if (held.has(e.sha256) || seen.has(e.sha256)) return false
    seen.add(e.sha256)
    return true
  })
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
  const headerRecord = textRecord(UPLOAD_HEADER_ENTRY, JSON.stringify(header))
  const send = toSend(input.remote, input.set)
  const total = send.reduce((n, e) => n + e.size, 0)
  // Stored on loopback; on a link, zstd when the server said it reads it, else gzip.
  const host = new URL(client.baseUrl).hostname
  const compression = compressionFor(host, yield* peerFormats(client, host, client.compress, input), client.compress)
  const { result, bytesSent } = yield* sendArchive(client, {
    progress,
    total,
    compression,
    idempotencyKey: input.idempotencyKey ?? randomUUID(),
    sent: input.sent,
    body: (members) =>
      bundle({
        servicesPath: input.servicesPath,
        files: send,
        prelude: [headerRecord],
        progress,
        compression,
        members
      })
  })
  return { result, bytesSent, filesSent: send.length, tree, checksum } satisfies UploadOutcome
})

/**
 * Sends an archive made by `body` (anew for each attempt, its stored members' buffers from `members`) under one
 * idempotency key, with the upload's progress; `sent` is completed once an attempt's body has all gone.
 */
const sendArchive = <E>(
  client: SyncApiClientShape,
  options: {
    readonly progress: Progress
    readonly total: number
    readonly compression: Compression
    readonly idempotencyKey: string
    readonly sent: Deferred.Deferred<void> | undefined
    readonly body: (members: (size: number) => Buffer) => Stream.Stream<Uint8Array, E>
  }
) =>
  Effect.gen(function* () {
    const { progress, total, compression } = options
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
      if (attempt.ended && attempt.pending === 0 && options.sent !== undefined)
        Deferred.unsafeDone(options.sent, Exit.void)
    }
    const body = () => {
      bytesSent = 0
      const attempt: Attempt = { pending: 0, ended: false }
      // A retry starts the count again.
      if (attempts++ > 0) progress.start("upload", total, "bytes")
      members = bufferPool(storedLength(CAPS.memberBytes), MEMBERS_KEPT)
      return options.body(members.take).pipe(
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
      client.upload(body, options.idempotencyKey, compression.format, (chunk) => {
        members.release(chunk)
        const attempt = owner.get(chunk)
        if (attempt === undefined) return
        owner.delete(chunk)
        attempt.pending--
        flushed(attempt)
      })
    )
    return { result, bytesSent }
  })

export interface StreamedUploadInput {
  readonly servicesPath: string
  /** The remote head the upload goes over: its tree is empty (a first upload), so every listed file is sent. */
  readonly base: string | null
  /** The files as listed (regular files and links the tree carries), sorted by path. */
  readonly files: ReadonlyArray<WorkspaceFile>
  readonly author?: string
  readonly idempotencyKey?: string
  readonly progress?: Progress
  /** As `UploadInput.sent`. */
  readonly sent?: Deferred.Deferred<void>
  /**
   * Told each time an attempt has read every file and made its trailer: what the revision will hold, before the
   * server has answered (what is recorded after can be made meanwhile).
   */
  readonly made?: (made: Made) => void
}

/** The tree a streamed upload's trailer names (sorted by path), its checksum, and `files[i]` as read. */
export interface Made {
  readonly tree: ReadonlyArray<FileEntry>
  readonly checksum: string
  readonly entries: ReadonlyArray<FileEntry>
}

export interface StreamedUploadOutcome extends UploadOutcome {
  /** `files[i]` as read and sent. */
  readonly entries: ReadonlyArray<FileEntry>
}

/**
 * A first upload in the trailer form (the server announced it): no hash is known before, each listed file is read
 * once, hashed as it is archived and sent at once; the manifest (every entry, no deletion, the base and the
 * resulting tree's checksum) follows the files as the trailer. What was read is had from `entries` as it is read.
 */
export const uploadStreamed = Effect.fn("uploadStreamed")(function* (input: StreamedUploadInput) {
  const client = yield* SyncApiClient
  const progress = input.progress ?? silentProgress
  const author = input.author ?? defaultAuthor()
  const total = input.files.reduce((n, f) => n + f.size, 0)
  const host = new URL(client.baseUrl).hostname
  const compression = compressionFor(host, client.serverFormats() ?? [], client.compress)
  const lead = textRecord(UPLOAD_LEAD_ENTRY, JSON.stringify(new UploadLead({ manifest: "trailer" })))
  // What any earlier attempt read (each attempt's entries start from its pins, so one cut short loses none); a retry
  // must read the same: it may repeat an attempt that committed, which the server replays by the idempotency key.
  let read: ReadonlyArray<FileEntry | undefined> = []
  // The records the last attempt sent (the same bytes under a second path are named by the trailer only).
  let sentFiles = () => 0
  let made: Made | undefined
  const trailer = (entries: ReadonlyArray<FileEntry>) => {
    // The listing is sorted by path, and so are the entries read from it.
    const tree = strictlySorted(entries) ? entries : [...entries].sort(byPath)
    const checksum = manifestChecksum(tree)
    made = { tree, checksum, entries }
    input.made?.(made)
    const header = new UploadHeader({ base: input.base, author, set: tree, delete: [], checksum })
    return textRecord(UPLOAD_HEADER_ENTRY, JSON.stringify(header))
  }
  const { result, bytesSent } = yield* sendArchive(client, {
    progress,
    total,
    compression,
    idempotencyKey: input.idempotencyKey ?? randomUUID(),
    sent: input.sent,
    body: (members) => {
      const streamed = streamBundle({
        servicesPath: input.servicesPath,
        files: input.files,
        prelude: [lead],
        trailer,
        pinned: read,
        progress,
        compression,
        members
      })
      read = streamed.entries
      sentFiles = streamed.sent
      return streamed.stream
    }
  })
  // A 2xx before the trailer was read: the server committed a manifest it never got, which no server of this
  // protocol does; nothing is recorded of it.
  if (made === undefined)
    return yield* new ApiError({
      kind: "Decode",
      status: 200,
      reason: "the server accepted the upload before its trailer (the manifest) was sent",
      url: `${client.baseUrl}${FilesRoutes.upload}`
    })
  return {
    result,
    bytesSent,
    filesSent: sentFiles(),
    tree: made.tree,
    checksum: made.checksum,
    entries: made.entries
  } satisfies StreamedUploadOutcome
})
