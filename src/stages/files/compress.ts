/** The archive writer's compression: gzip members (stored ones written directly) or zstd frames, cut and bounded alike, chosen for the link. */
import * as zlib from "node:zlib"
import { Chunk, Effect, Stream } from "effect"
import { type ArchiveFormat, CAPS, type CompressSetting, FORMATS } from "../../domain/caps.js"
import { TarballUnsafe } from "../../errors.js"
import { rawZstdFrame, ZSTD } from "./zstdFrames.js"

// A deflate stored block carries at most this many bytes.
const STORED_BLOCK = 0xffff
// The gzip header agentsync writes: deflate, no name, no time, no extra flags, OS unix (as zlib writes it).
const GZIP_HEADER = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3])

const storedBlocks = (bytes: number) => Math.max(1, Math.ceil(bytes / STORED_BLOCK))

/** Whether stored members are written here without zlib (`storedMember`: Node has `zlib.crc32`). */
const storesDirectly = typeof zlib.crc32 === "function"

/** The length of the stored member of `bytes` bytes (`storedMember`). */
export const storedLength = (bytes: number) => GZIP_HEADER.length + storedBlocks(bytes) * 5 + bytes + 8

/** A gzip member of `chunk` in stored deflate blocks, in a buffer from `allocate` (see `storedMember`). */
const writeStored = (chunk: Uint8Array, allocate: (size: number) => Buffer): Buffer => {
  const blocks = storedBlocks(chunk.length)
  const out = allocate(storedLength(chunk.length))
  let at = GZIP_HEADER.copy(out, 0)
  for (let b = 0; b < blocks; b++) {
    const start = b * STORED_BLOCK
    const len = Math.min(STORED_BLOCK, chunk.length - start)
    out[at] = b === blocks - 1 ? 1 : 0 // BFINAL on the last block, BTYPE 00 (stored)
    out.writeUInt16LE(len, at + 1)
    out.writeUInt16LE(~len & 0xffff, at + 3)
    at += 5
    out.set(chunk.subarray(start, start + len), at)
    at += len
  }
  out.writeUInt32LE(zlib.crc32(chunk), at)
  out.writeUInt32LE(chunk.length % 2 ** 32, at + 4)
  return out
}

/**
 * A gzip member of stored (uncompressed) deflate blocks, written directly: one buffer and one copy of the
 * bytes, where zlib at level 0 copies them in, out in 16 KiB pieces and together again, on the thread pool.
 * The buffer comes from `allocate` (a pool whose buffers the transport gives back once written: see `upload`).
 * Returns undefined where Node has no `zlib.crc32` (before 20.15), which then goes through zlib.
 */
export const storedMember = (
  chunk: Uint8Array,
  allocate: (size: number) => Buffer = Buffer.allocUnsafe
): Uint8Array | undefined => (storesDirectly ? writeStored(chunk, allocate) : undefined)

const gzipMember = (chunk: Uint8Array, level: number) =>
  Effect.async<Uint8Array, TarballUnsafe>((resume) => {
    zlib.gzip(chunk, { level }, (error, out) => {
      if (error) return resume(Effect.fail(new TarballUnsafe({ reason: `gzip failed: ${error.message}` })))
      // Within the ratio every reader allows, whatever the bytes: a member that compresses better is stored.
      if (chunk.length > CAPS.maxRatio * out.length) {
        zlib.gzip(chunk, { level: 0 }, (e, stored) =>
          resume(e ? Effect.fail(new TarballUnsafe({ reason: `gzip failed: ${e.message}` })) : Effect.succeed(stored))
        )
      } else resume(Effect.succeed(out))
    })
  })

/** Elements cut to at most one member's worth (CAPS.memberBytes). */
const members = (chunk: Uint8Array): Chunk.Chunk<Uint8Array> => {
  if (chunk.length <= CAPS.memberBytes) return Chunk.of(chunk)
  const out: Array<Uint8Array> = []
  for (let i = 0; i < chunk.length; i += CAPS.memberBytes) out.push(chunk.subarray(i, i + CAPS.memberBytes))
  return Chunk.unsafeFromArray(out)
}

/** The gzip level where compression costs more than it saves: the other end is on this machine. */
export const LOOPBACK_LEVEL = 0
/** The gzip level for a real link. */
export const LINK_LEVEL = 6

/** Whether a host (a URL's hostname, or a socket's peer address) is this machine. */
export const isLoopback = (host: string) =>
  host === "localhost" || host === "[::1]" || host === "::1" || /^(::ffff:)?127\./.test(host)

/**
 * The level that pays for a link: on loopback, where bytes cost next to nothing, none (stored members, about
 * 6× cheaper than level 1 on text); on a real link, the usual balance.
 */
export const levelFor = (host: string) => (isLoopback(host) ? LOOPBACK_LEVEL : LINK_LEVEL)

/**
 * Gzips a byte stream, one gzip member per element of at most `CAPS.memberBytes` (larger elements are cut): a
 * valid gzip file (RFC 1952 allows many members) that every gunzip reads. Compressed members are made two at a time
 * on the thread pool, in order, and only as the consumer pulls, so memory stays flat whatever the stream's length.
 * At level 0 each member is written directly (`storedMember`) as it is pulled, on the consumer's fiber: it is made
 * synchronously, so two at a time gained nothing there, and their fibers, queue and signals cost three times the
 * members' own CPU (100 members of 1 MiB: 96–121 ms against 33–50 ms). The elements are read one ahead of it (one
 * fiber and a queue of one for the whole stream): while the consumer waits for its socket to drain, the next
 * element is read (a file's bytes on upload, a batch of blobs on a download), as making two at a time let it be.
 * Deterministic: no time in the headers, a given level. No member exceeds `CAPS.maxRatio`.
 */
export const gzip = <E, R>(
  bytes: Stream.Stream<Uint8Array, E, R>,
  level = LINK_LEVEL,
  consumed?: (chunk: Uint8Array) => void,
  allocate?: (size: number) => Buffer
): Stream.Stream<Uint8Array, E | TarballUnsafe, R> =>
  level === LOOPBACK_LEVEL && storesDirectly
    ? bytes.pipe(
        // Elements out at once: the one made into a member, one queued, the one upstream is making (then waiting).
        Stream.buffer({ capacity: 1 }),
        Stream.mapConcatChunk(members),
        // One at a time, as pulled: a chunk of many elements is not made into as many members at once.
        Stream.mapEffect((chunk) =>
          Effect.sync(() => {
            const member = writeStored(chunk, allocate ?? Buffer.allocUnsafe)
            consumed?.(chunk)
            return member
          })
        )
      )
    : bytes.pipe(
        Stream.mapConcatChunk(members),
        // Where Node has no `zlib.crc32`, a stored member too is zlib's (at level 0).
        Stream.mapEffect((chunk) => done(gzipMember(chunk, level), chunk, consumed), { concurrency: 2 })
      )

/** A member made from `chunk`, which no member refers to: handed to `consumed` (a pool's release) once made. */
const done = <E>(member: Effect.Effect<Uint8Array, E>, chunk: Uint8Array, consumed?: (chunk: Uint8Array) => void) =>
  consumed === undefined ? member : Effect.tap(member, () => consumed(chunk))

/** An archive's format and level: what the writer uses, chosen for the link and the other end (`compressionFor`). */
export interface Compression {
  readonly format: ArchiveFormat
  readonly level: number
}

/** The zstd level for a real link (see README, "Compression": the bench corpus's figures against gzip 1 and 6). */
export const ZSTD_LEVEL = 3

/**
 * The compression of an archive sent to `host` (a URL's hostname, or a socket's peer address) whose reader reads
 * `peerReads`: on loopback (unless `always`) and when `never`, a plain tar when the reader reads one (a pull: see
 * `DOWNLOAD_FORMATS`), else stored gzip members; otherwise zstd when both ends have it (`ours`, what this end
 * writes, and `peerReads`), gzip at `LINK_LEVEL` otherwise.
 */
export const compressionFor = (
  host: string,
  peerReads: ReadonlyArray<ArchiveFormat>,
  setting: CompressSetting = "auto",
  ours: ReadonlyArray<ArchiveFormat> = FORMATS
): Compression =>
  setting === "never" || (setting === "auto" && isLoopback(host))
    ? peerReads.includes("tar")
      ? { format: "tar", level: LOOPBACK_LEVEL }
      : { format: "gzip", level: LOOPBACK_LEVEL }
    : ZSTD !== undefined && ours.includes("zstd") && peerReads.includes("zstd")
      ? { format: "zstd", level: ZSTD_LEVEL }
      : { format: "gzip", level: LINK_LEVEL }

const zstdMember = (chunk: Uint8Array, level: number) =>
  Effect.async<Uint8Array, TarballUnsafe>((resume) => {
    if (ZSTD === undefined) return resume(Effect.fail(new TarballUnsafe({ reason: "zstd is not available here" })))
    const params = { [ZSTD.constants.ZSTD_c_compressionLevel]: level, [ZSTD.constants.ZSTD_c_checksumFlag]: 1 }
    ZSTD.zstdCompress(chunk, { params }, (error, out) => {
      if (error) return resume(Effect.fail(new TarballUnsafe({ reason: `zstd failed: ${error.message}` })))
      // Within the ratio every reader allows, as a gzip member is.
      resume(Effect.succeed(chunk.length > CAPS.maxRatio * out.length ? rawZstdFrame(chunk) : out))
    })
  })

/**
 * Compresses a byte stream as `compression` says: gzip members (`gzip`), or zstd frames cut and bounded the same
 * way (one frame per element of at most `CAPS.memberBytes`, none past `CAPS.maxRatio`, two at a time, in order).
 * `consumed` gets each element once its member or frame is made (nothing made refers to it): a pool takes it back.
 * Stored members are written into buffers from `allocate` (see `storedMember`). A plain `tar` is the stream itself:
 * its elements are what is sent, so none is handed to `consumed` (a caller that pools them gives them back once
 * written, as a download does).
 */
export const compress = <E, R>(
  bytes: Stream.Stream<Uint8Array, E, R>,
  compression: Compression,
  consumed?: (chunk: Uint8Array) => void,
  allocate?: (size: number) => Buffer
): Stream.Stream<Uint8Array, E | TarballUnsafe, R> =>
  compression.format === "tar"
    ? bytes
    : compression.format === "gzip"
      ? gzip(bytes, compression.level, consumed, allocate)
      : bytes.pipe(
          Stream.mapConcatChunk(members),
          Stream.mapEffect((chunk) => done(zstdMember(chunk, compression.level), chunk, consumed), { concurrency: 2 })
        )
