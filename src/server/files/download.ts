/** A revision (or some of its paths) as a streamed archive, its blobs read in batches: a member each, or plain tar. */
import { Array as Arr, Effect, Stream } from "effect"
import { NotFound } from "../../api/common.js"
import { ApiError } from "../../errors.js"
import {
  bufferPool,
  type Compression,
  compress,
  LINK_LEVEL,
  recordBatch,
  storedLength,
  tarOf
} from "../../stages/files/archive.js"
import type { BlobReader, BlobRows } from "./blobRead.js"
import type { LoadRevision } from "./revisions.js"
import { BATCH_ROWS, LINK, type StoredEntry, storageFailure } from "./stored.js"

// A download batch becomes one gzip member (compressed ones two at a time, stored ones one at a time as the response
// pulls them, the next batch read meanwhile: see `gzip`), or, as a plain tar, its records as they are.
const DOWNLOAD_BATCH_BYTES = 2 * 1024 * 1024
/** The largest batch buffer pooled: a batch's bytes and its rows' headers and padding (each a new allocation). */
export const BATCH_BUFFER_BYTES = DOWNLOAD_BATCH_BYTES + BATCH_ROWS * 1024
// Stored members' buffers kept free for the next ones (the one being made, the one being written and the ones before
// it not yet known to be written, and spares). It caps the free list, not the buffers out: those are
// what `givenBackWhenWritten` holds (at most `2 * MEMBER_BUFFERS`), what the stream is making, and what the socket
// still holds; one dropped or never given back is the collector's (the pool knows its buffers weakly).
const MEMBER_BUFFERS = 8
/** The size of a stored member's pooled buffer (each one a new allocation of exactly this size). */
export const MEMBER_BUFFER_BYTES = storedLength(BATCH_BUFFER_BYTES)

/**
 * Gives each pooled member back once it is known to be written. Its consumer (the response's writer) hands each
 * element to the socket before it pulls the next, so when it pulls again and `written()` says nothing handed to the
 * socket is still pending, every element before this pull is written and its buffer may be filled again. A member
 * not yet known to be written when the download ends (or fails), or forgotten, is left to the collector. Without
 * `written` nothing goes back (a consumer that keeps what it pulls gets buffers of its own). Safe only while nothing
 * between this stream and the socket reads ahead of the writer (see `ServeOptions.middleware`).
 */
const givenBackWhenWritten = <E, R>(
  members: Stream.Stream<Uint8Array, E, R>,
  release: (member: Uint8Array) => void,
  written: (() => boolean) | undefined
): Stream.Stream<Uint8Array, E, R> => {
  if (written === undefined) return members
  let handed: Array<Uint8Array> = []
  return Stream.mapChunks(members, (chunk) => {
    if (handed.length > 0 && written()) {
      for (const member of handed) release(member)
      handed = []
    }
    for (const member of chunk) handed.push(member)
    // Members not yet known to be written are forgotten past a few, left to the collector (the pool holds its
    // buffers weakly): this list holds at most `2 * MEMBER_BUFFERS` even while the probe keeps saying no (members
    // that never fill the socket, or a socket that never drains while the download is open).
    if (handed.length > 2 * MEMBER_BUFFERS) handed = handed.slice(-MEMBER_BUFFERS)
    return chunk
  })
}

/** Entries in batches of at most `DOWNLOAD_BATCH_BYTES` (or one larger entry) and `BATCH_ROWS` rows. */
const batchesOf = (entries: ReadonlyArray<StoredEntry>): ReadonlyArray<ReadonlyArray<StoredEntry>> => {
  const batches: Array<Array<StoredEntry>> = []
  let batch: Array<StoredEntry> = []
  let bytes = 0
  for (const e of entries) {
    if (batch.length > 0 && (bytes + e[1] > DOWNLOAD_BATCH_BYTES || batch.length >= BATCH_ROWS)) {
      batches.push(batch)
      batch = []
      bytes = 0
    }
    batch.push(e)
    bytes += e[1]
  }
  if (batch.length > 0) batches.push(batch)
  return batches
}

/** A batch's entries with their bytes, each checked against its manifest entry's size. */
const withContent = (batch: ReadonlyArray<StoredEntry>, rows: BlobRows) => {
  const data = new Map(rows.map((r) => [r.sha256, r.data]))
  const files = []
  for (const [path, size, sha, x] of batch) {
    const bytes = data.get(sha)
    if (bytes === undefined || bytes.length !== size) {
      const what = bytes === undefined ? "missing" : "of another size than its manifest entry"
      return Effect.fail(new ApiError({ status: 500, reason: `stored content ${what} for ${path}` }))
    }
    // A link's target (its blob) goes into its header; a file's bytes into its slot.
    files.push(
      x === LINK
        ? { path, size, target: Buffer.from(bytes).toString(), content: undefined }
        : { path, size, executable: x === 1, content: bytes }
    )
  }
  return Effect.succeed(files)
}

export const makeDownload = (readBlobs: BlobReader, loadRevision: LoadRevision) =>
  /**
   * A revision (head by default) as a streamed archive (a tar, compressed as `compression` says or plain),
   * optionally only some paths; blobs are read in batches. With `written` (whether every byte its consumer has
   * handed on so far is written: the response's socket has nothing pending), the buffers it sends are used again
   * once written: a plain tar's batch buffers, or stored members' (gzip at level 0); its consumer must then hand
   * each element on before pulling the next, as the response's writer does. A compressed member is zlib's or
   * zstd's own buffer, so for those `written` is not asked.
   */
  Effect.fn("FileStore.download")(function* (
    tenantId: string,
    revision: string | undefined,
    paths?: ReadonlyArray<string>,
    compression?: Compression,
    written?: () => boolean
  ) {
    const rev = yield* loadRevision(tenantId, revision).pipe(Effect.catchTag("SqlError", storageFailure("download")))
    let entries = rev.manifest
    if (paths !== undefined) {
      const wanted = new Set(paths)
      entries = entries.filter((e) => wanted.has(e[0]))
      if (entries.length !== wanted.size) {
        return yield* new NotFound({
          reason: `${wanted.size - entries.length} requested path(s) are not in revision ${rev.id}`
        })
      }
    }
    // Batch buffers used again once compressed (a batch of one larger blob is not pooled); stored members' buffers
    // once written (see `givenBackWhenWritten`): a fresh buffer per member cost more than its copy, in first-touch
    // page faults and in the major collections that a download's 100 MB of new buffers set off.
    const pool = bufferPool(BATCH_BUFFER_BYTES)
    const compressed = compression ?? { format: "gzip", level: LINK_LEVEL }
    // Members come from their pool only when they can go back to it: stored, and with a probe. Taken without one,
    // they would be new buffers all the same, only the pool's for nothing.
    const given = compressed.format === "gzip" && compressed.level === 0 ? written : undefined
    const members = bufferPool(MEMBER_BUFFER_BYTES, MEMBER_BUFFERS)
    // The blobs of a batch are read into one buffer, used again for the next batch once this one's bytes are
    // copied into its records: a buffer per blob cost more in garbage collection than the read itself.
    let arena = Buffer.allocUnsafe(0)
    const arenaFor = (batch: ReadonlyArray<StoredEntry>) => {
      const sizes = new Map(batch.map((e) => [e[2], e[1]]))
      let need = 0
      for (const size of sizes.values()) need += size
      if (arena.length < need) arena = Buffer.allocUnsafe(Math.max(need, DOWNLOAD_BATCH_BYTES))
      const from = arena
      let at = 0
      // A blob longer than its manifest entry says (refused below) gets a buffer of its own.
      return (size: number) => {
        if (at + size > from.length) return Buffer.allocUnsafe(size)
        at += size
        return from.subarray(at - size, at)
      }
    }
    const records = Stream.fromIterable(batchesOf(entries)).pipe(
      Stream.mapEffect((batch) =>
        Effect.gen(function* () {
          const rows = yield* readBlobs(tenantId, [...new Set(batch.map((e) => e[2]))], arenaFor(batch))
          const files = yield* withContent(batch, rows)
          // One element (one gzip member) per batch, each blob copied once, into its record.
          const { buffer, slots } = recordBatch(files, pool.take)
          for (const [file, slot] of Arr.zip(files, slots)) if (file.content !== undefined) slot.set(file.content)
          return buffer as Uint8Array
        })
      )
    )
    return {
      revision: rev.id,
      entries: entries.length,
      // A plain tar sends the batches' own buffers, each given back once written as a stored member is; the next
      // batch is read while the socket drains (one ahead, as `gzip` reads stored members' elements).
      body:
        compressed.format === "tar"
          ? givenBackWhenWritten(tarOf(records).pipe(Stream.buffer({ capacity: 1 })), pool.release, written)
          : givenBackWhenWritten(
              compress(tarOf(records), compressed, pool.release, given === undefined ? undefined : members.take),
              members.release,
              given
            )
    }
  })
