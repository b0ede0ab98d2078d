/** Bundle archives: a reproducible tar writer (gzip members or zstd frames) and a strict, capped, streaming reader, shared by client and server. */
import * as zlib from "node:zlib"
import { Chunk, Effect, Stream } from "effect"
import { Gunzip, ZstdDecompress } from "minizlib"
import { Parser, type ReadEntry } from "tar"
import { type ArchiveFormat, CAPS, type Caps, type CompressSetting, FORMATS } from "../../domain/caps.js"
import { isExecutableMode, linkTargetProblem } from "../../domain/model.js"
import { TarballUnsafe } from "../../errors.js"

export { bufferPool, END_OF_ARCHIVE, fileHeader, fileRecord, linkHeader, recordBatch, tarOf } from "./tarRecords.js"

// A deflate stored block carries at most this many bytes.
const STORED_BLOCK = 0xffff
// The gzip header agentsync writes: deflate, no name, no time, no extra flags, OS unix (as zlib writes it).
const GZIP_HEADER = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3])

/**
 * A gzip member of stored (uncompressed) deflate blocks, written directly: one buffer and one copy of the
 * bytes, where zlib at level 0 copies them in, out in 16 KiB pieces and together again, on the thread pool.
 * Returns undefined where Node has no `zlib.crc32` (before 20.15), which then goes through zlib.
 */
export const storedMember = (chunk: Uint8Array): Uint8Array | undefined => {
  if (typeof zlib.crc32 !== "function") return undefined
  const blocks = Math.max(1, Math.ceil(chunk.length / STORED_BLOCK))
  const out = Buffer.allocUnsafe(GZIP_HEADER.length + blocks * 5 + chunk.length + 8)
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
 * valid gzip file (RFC 1952 allows many members) that every gunzip reads. Members are compressed two at a
 * time on the thread pool (at level 0 written directly, see `storedMember`), in order, and only as the
 * consumer pulls, so memory stays flat whatever the stream's length. Deterministic: no time in the headers, a given level. No member exceeds `CAPS.maxRatio`.
 */
export const gzip = <E, R>(
  bytes: Stream.Stream<Uint8Array, E, R>,
  level = LINK_LEVEL,
  consumed?: (chunk: Uint8Array) => void
): Stream.Stream<Uint8Array, E | TarballUnsafe, R> =>
  bytes.pipe(
    Stream.mapConcatChunk(members),
    Stream.mapEffect(
      (chunk) => {
        const stored = level === 0 ? storedMember(chunk) : undefined
        return done(stored === undefined ? gzipMember(chunk, level) : Effect.succeed(stored), chunk, consumed)
      },
      { concurrency: 2 }
    )
  )

/** A member made from `chunk`, which no member refers to: handed to `consumed` (a pool's release) once made. */
const done = <E>(member: Effect.Effect<Uint8Array, E>, chunk: Uint8Array, consumed?: (chunk: Uint8Array) => void) =>
  consumed === undefined ? member : Effect.tap(member, () => consumed(chunk))

/** An archive's format and level: what the writer uses, chosen for the link and the other end (`compressionFor`). */
export interface Compression {
  readonly format: ArchiveFormat
  readonly level: number
}

/** The part of `node:zlib` that zstd needs (absent before Node 22.15; not in Node 20's types). */
interface ZstdZlib {
  readonly zstdCompress: (
    data: Uint8Array,
    options: { readonly params: Record<number, number> },
    callback: (error: Error | null, out: Buffer) => void
  ) => void
  readonly ZstdDecompress: unknown
  readonly constants: Record<string, number>
}

const zstdZlib = (): ZstdZlib | undefined => {
  const z = zlib as unknown as Partial<ZstdZlib>
  return typeof z.zstdCompress === "function" && typeof z.ZstdDecompress === "function" ? (z as ZstdZlib) : undefined
}

/** zstd, where this Node has it (then `FORMATS` names it). */
const ZSTD = zstdZlib()

/** The zstd level for a real link (see README, "Compression": the bench corpus's figures against gzip 1 and 6). */
export const ZSTD_LEVEL = 3

/**
 * The compression of an archive sent to `host` (a URL's hostname, or a socket's peer address) whose reader reads
 * `peerReads`: stored gzip members on loopback (unless `always`) and when `never`; else zstd when both ends have it
 * (`ours`, what this end writes, and `peerReads`), gzip at `LINK_LEVEL` otherwise.
 */
export const compressionFor = (
  host: string,
  peerReads: ReadonlyArray<ArchiveFormat>,
  setting: CompressSetting = "auto",
  ours: ReadonlyArray<ArchiveFormat> = FORMATS
): Compression =>
  setting === "never" || (setting === "auto" && isLoopback(host))
    ? { format: "gzip", level: LOOPBACK_LEVEL }
    : ZSTD !== undefined && ours.includes("zstd") && peerReads.includes("zstd")
      ? { format: "zstd", level: ZSTD_LEVEL }
      : { format: "gzip", level: LINK_LEVEL }

const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd])
// A raw zstd block carries at most this many bytes (and the window declared below holds one).
const RAW_BLOCK = 128 * 1024

/**
 * A zstd frame of raw (uncompressed) blocks: the zstd counterpart of `storedMember`, for a member that would
 * compress past `CAPS.maxRatio`. Header: the magic, no content size or checksum, a 128 KiB window.
 */
export const rawZstdFrame = (chunk: Uint8Array): Uint8Array => {
  const blocks = Math.max(1, Math.ceil(chunk.length / RAW_BLOCK))
  const out = Buffer.allocUnsafe(ZSTD_MAGIC.length + 2 + blocks * 3 + chunk.length)
  let at = ZSTD_MAGIC.copy(out, 0)
  out[at++] = 0 // frame header descriptor: no content size, no checksum, no dictionary
  out[at++] = 7 << 3 // window descriptor: 2^(10 + 7) bytes
  for (let b = 0; b < blocks; b++) {
    const start = b * RAW_BLOCK
    const len = Math.min(RAW_BLOCK, chunk.length - start)
    out.writeUIntLE((len << 3) | (b === blocks - 1 ? 1 : 0), at, 3) // size, type raw (0), last block
    at += 3
    out.set(chunk.subarray(start, start + len), at)
    at += len
  }
  return out
}

const zstdMember = (chunk: Uint8Array, level: number) =>
  Effect.async<Uint8Array, TarballUnsafe>((resume) => {
    if (ZSTD === undefined) return resume(Effect.fail(new TarballUnsafe({ reason: "zstd is not available here" })))
    const params = { [ZSTD.constants.ZSTD_c_compressionLevel!]: level, [ZSTD.constants.ZSTD_c_checksumFlag!]: 1 }
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
 */
export const compress = <E, R>(
  bytes: Stream.Stream<Uint8Array, E, R>,
  compression: Compression,
  consumed?: (chunk: Uint8Array) => void
): Stream.Stream<Uint8Array, E | TarballUnsafe, R> =>
  compression.format === "gzip"
    ? gzip(bytes, compression.level, consumed)
    : bytes.pipe(
        Stream.mapConcatChunk(members),
        Stream.mapEffect((chunk) => done(zstdMember(chunk, compression.level), chunk, consumed), { concurrency: 2 })
      )

/** The largest zstd window a reader accepts (8 MiB: above a member; a frame asking more is refused, not allocated). */
const ZSTD_WINDOW_LOG_MAX = 23

/** What an archive held, once read. */
export interface ArchiveStats {
  readonly files: number
  readonly directories: number
  readonly bytes: number
  readonly compressedBytes: number
}

/** Receives one file's bytes, synchronously as the parser produces them; may throw TarballUnsafe. */
export interface EntrySink {
  readonly write: (chunk: Uint8Array) => void
  readonly end: () => void
}

export interface ArchiveVisitor<E, R> {
  /**
   * A regular file at a checked path, executable when its mode has the owner-execute bit (whatever else its
   * mode says is never applied); or, with `link`, a symbolic link whose target (relative, inside the tree: see
   * `linkTargetProblem`) arrives as its bytes. Throw TarballUnsafe to reject the archive.
   */
  readonly file: (path: string, size: number, executable: boolean, link: boolean) => EntrySink
  readonly directory?: (path: string) => void
  /** Runs after each input chunk, so asynchronous work (database writes) keeps pace with the parser. */
  readonly flush?: () => Effect.Effect<void, E, R>
}

/** A path from an archive, normalised and checked: relative, inside the root, no `..`, no odd characters. */
export const checkEntryPath = (raw: string): string => {
  let p = raw
  while (p.startsWith("./")) p = p.slice(2)
  if (p.endsWith("/")) p = p.slice(0, -1)
  const bad = (why: string) => new TarballUnsafe({ reason: why, entry: raw })
  if (p === "" || p === ".") return ""
  if (p.startsWith("/") || /^[A-Za-z]:/.test(p)) throw bad("absolute path")
  if (p.includes("\\") || p.includes("\0")) throw bad("backslash or NUL in path")
  if (Buffer.byteLength(p) > CAPS.maxPathBytes) throw bad("path too long")
  for (const segment of p.split("/")) {
    if (segment === "..") throw bad("path escapes the root ('..')")
    if (segment === "" || segment === ".") throw bad("empty or '.' path segment")
  }
  return p
}

const unsafe = (reason: string, entry?: string) =>
  entry === undefined ? new TarballUnsafe({ reason }) : new TarballUnsafe({ reason, entry })

const asUnsafe = (e: unknown): TarballUnsafe =>
  e instanceof TarballUnsafe ? e : unsafe(`corrupt archive: ${e instanceof Error ? e.message : String(e)}`)

/**
 * Cuts a zstd stream where each frame ends, walking the frames' headers and block headers (RFC 8878) without
 * decompressing: Node's zstd decoder ends at the end of the first frame in a write and drops what follows, so each
 * frame must reach it in writes of its own. Throws on what is not a zstd frame (a skippable frame included).
 */
export const zstdFrameCutter = () => {
  let state: "start" | "header" | "block" | "body" | "checksum" = "start"
  let want = 5
  let collected: Array<number> = []
  let last = false
  let checksum = false
  return (chunk: Buffer): Array<Buffer> => {
    const pieces: Array<Buffer> = []
    let from = 0
    let at = 0
    const frameEnd = () => {
      pieces.push(chunk.subarray(from, at))
      from = at
      state = "start"
      want = 5
    }
    const bodyDone = () => {
      if (!last) {
        state = "block"
        want = 3
      } else if (checksum) {
        state = "checksum"
        want = 4
      } else frameEnd()
    }
    while (at < chunk.length || (state === "body" && want === 0)) {
      if (state === "body" || state === "checksum") {
        const n = Math.min(want, chunk.length - at)
        at += n
        want -= n
        if (want > 0) break
        if (state === "checksum") frameEnd()
        else bodyDone()
        continue
      }
      collected.push(chunk[at++]!)
      if (--want > 0) continue
      const h = collected
      collected = []
      if (state === "start") {
        if (!ZSTD_MAGIC.equals(Buffer.from(h.slice(0, 4)))) throw new Error("not a zstd frame")
        const fhd = h[4]!
        if ((fhd & 0x08) !== 0) throw new Error("reserved bit set in a frame header")
        const single = (fhd >> 5) & 1
        checksum = ((fhd >> 2) & 1) === 1
        want = (single ? 0 : 1) + [0, 1, 2, 4][fhd & 3]! + [single, 2, 4, 8][fhd >> 6]!
        state = want === 0 ? "block" : "header"
        if (want === 0) want = 3
      } else if (state === "header") {
        state = "block"
        want = 3
      } else {
        const header = h[0]! | (h[1]! << 8) | (h[2]! << 16)
        const type = (header >> 1) & 3
        if (type === 3) throw new Error("reserved block type")
        last = (header & 1) === 1
        state = "body"
        want = type === 1 ? 1 : header >>> 3
      }
    }
    if (from < chunk.length) pieces.push(chunk.subarray(from))
    return pieces
  }
}

/** The format whose magic number `bytes` start with, if any. */
const formatOf = (bytes: Uint8Array): ArchiveFormat | undefined =>
  bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b
    ? "gzip"
    : bytes.length >= 4 && ZSTD_MAGIC.equals(bytes.subarray(0, 4))
      ? "zstd"
      : undefined

/**
 * Reads a tar stream, gzip or zstd (told apart by its first bytes; zstd where this Node has it), strictly: the same
 * ratio and size caps for both, only regular files, directories and symbolic links whose target stays in the
 * tree, checked paths, no duplicates, no
 * setuid, setgid or sticky mode, nothing after the end-of-archive blocks, within the caps. Any breach fails the whole read with TarballUnsafe; the
 * visitor decides what to do with bytes. A failure of the source itself (the network) is passed on as it is,
 * never as an unsafe archive.
 */
export const readArchive = <E, R, E2 = never, R2 = never>(
  source: Stream.Stream<Uint8Array, E, R>,
  visitor: ArchiveVisitor<E2, R2>,
  caps: Caps = CAPS,
  formats: ReadonlyArray<ArchiveFormat> = FORMATS
): Effect.Effect<ArchiveStats, E | E2 | TarballUnsafe, R | R2> =>
  Effect.suspend(() => {
    let compressed = 0
    let decompressed = 0
    let files = 0
    let directories = 0
    let bytes = 0
    let ended = false
    let failure: TarballUnsafe | undefined
    const seen = new Set<string>()
    // Inflating and parsing are synchronous, so each network chunk is fully handled (and its files flushed)
    // before the next is read: memory does not grow with the archive. The ratio is checked on every inflated
    // piece, with one member's allowance (see CAPS.maxRatio); the size caps on each header, before any data.
    const parser = new Parser({ strict: true, brotli: false, zstd: false })
    const fail = (e: unknown) => {
      if (failure === undefined) failure = asUnsafe(e)
    }
    // The decompressor, chosen by the archive's first bytes (gzip or zstd); undefined until they have come.
    let inflater: Gunzip | ZstdDecompress | undefined
    let head = Buffer.alloc(0)
    const onPiece = (piece: Buffer) => {
      if (failure !== undefined) return
      decompressed += piece.length
      if (decompressed > caps.maxRatio * compressed + caps.memberBytes) {
        return fail(unsafe(`decompression ratio above ${caps.maxRatio} (a decompression bomb?)`))
      }
      if (decompressed === piece.length && formatOf(piece) !== undefined) {
        return fail(unsafe(`a ${formatOf(piece)} inside the archive (nested compression is not accepted)`))
      }
      if (ended) {
        // Zero padding after the end-of-archive blocks is allowed (tar pads to records); anything else is not.
        if (piece.some((b) => b !== 0)) fail(unsafe("data after the end of the archive"))
        return
      }
      parser.write(piece)
    }
    /** The decompressor for the archive's first bytes, or a failure naming what they are not. */
    let cut: ((chunk: Buffer) => Array<Buffer>) | undefined
    const write = (bytes: Buffer) => {
      if (cut === undefined) return void inflater!.write(bytes)
      try {
        for (const piece of cut(bytes)) if (piece.length > 0) inflater!.write(piece)
      } catch (e) {
        fail(unsafe(`corrupt zstd: ${e instanceof Error ? e.message : String(e)}`))
      }
    }
    const start = (first: Buffer): Gunzip | ZstdDecompress | TarballUnsafe => {
      const format = formatOf(first)
      if (format === undefined) return unsafe("not a gzip or zstd archive")
      if (!formats.includes(format) || (format === "zstd" && ZSTD === undefined))
        return unsafe(`a ${format} archive, which this end does not read (it reads ${formats.join(", ")})`)
      const made =
        format === "gzip"
          ? new Gunzip({})
          : // Node's zstd options (`params`), which minizlib passes on but types as zlib's.
            new ZstdDecompress({
              params: { [ZSTD!.constants.ZSTD_d_windowLogMax!]: ZSTD_WINDOW_LOG_MAX }
            } as ConstructorParameters<typeof ZstdDecompress>[0])
      made.on("error", (e: unknown) => fail(unsafe(`corrupt ${format}: ${e instanceof Error ? e.message : String(e)}`)))
      made.on("data", onPiece)
      if (format === "zstd") cut = zstdFrameCutter()
      return made
    }
    parser.on("error", fail)
    parser.on("warn", (code: string, message: string) => fail(unsafe(`${code}: ${message}`)))
    parser.on("eof", () => {
      ended = true
    })
    parser.on("entry", (entry: ReadEntry) => {
      if (failure !== undefined) return void entry.resume()
      try {
        const path = checkEntryPath(entry.path)
        // No writer of ours sets them, and no reader applies a mode beyond the execute bit: an archive that
        // asks for them is not one of ours.
        if (((entry.mode ?? 0) & 0o7000) !== 0)
          throw unsafe(`mode ${(entry.mode ?? 0).toString(8)} (setuid, setgid or sticky) is not accepted`, entry.path)
        // One more than the cap: an upload's header entry.
        if (files + directories > caps.maxEntries) throw unsafe(`more than ${caps.maxEntries} entries`, entry.path)
        if (entry.type === "Directory") {
          directories++
          entry.resume()
          if (path !== "") visitor.directory?.(path)
          return
        }
        if (entry.type !== "File" && entry.type !== "SymbolicLink")
          throw unsafe(
            `${entry.type} entries are not allowed; only regular files, symbolic links and directories`,
            entry.path
          )
        if (path === "") throw unsafe("a file without a name", entry.path)
        if (seen.has(path)) throw unsafe("duplicate entry", path)
        seen.add(path)
        if (entry.type === "SymbolicLink") {
          // Its target is its content: checked here, for every reader, before any visitor sees it.
          if ((entry.size ?? 0) !== 0) throw unsafe("a symbolic link with data", path)
          const target = entry.linkpath ?? ""
          const problem = linkTargetProblem(path, target)
          if (problem !== undefined) throw unsafe(`a symbolic link not accepted: ${problem}`, path)
          const bytes = Buffer.from(target)
          files++
          entry.resume()
          const sink = visitor.file(path, bytes.length, false, true)
          sink.write(bytes)
          sink.end()
          return
        }
        const size = entry.size ?? 0
        if (size > caps.maxFileBytes) throw unsafe(`file larger than ${caps.maxFileBytes} bytes`, path)
        if (bytes + size > caps.maxTotalBytes) throw unsafe(`archive larger than ${caps.maxTotalBytes} bytes`, path)
        bytes += size
        files++
        const sink = visitor.file(path, size, isExecutableMode(entry.mode ?? 0), false)
        entry.on("data", (chunk: Buffer) => {
          if (failure !== undefined) return
          try {
            sink.write(chunk)
          } catch (e) {
            fail(e)
          }
        })
        entry.on("end", () => {
          if (failure !== undefined) return
          try {
            sink.end()
          } catch (e) {
            fail(e)
          }
        })
      } catch (e) {
        fail(e)
        entry.resume()
      }
    })

    const check = Effect.suspend(() => (failure === undefined ? Effect.void : Effect.fail(failure)))
    const feed = (chunk: Uint8Array) =>
      Effect.suspend(() => {
        compressed += chunk.length
        let bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length)
        if (inflater === undefined) {
          // The first bytes name the format: held until there are enough of them.
          head = Buffer.concat([head, bytes])
          if (head.length < ZSTD_MAGIC.length) return check
          const made = start(head)
          if (made instanceof TarballUnsafe) return Effect.fail(made)
          inflater = made
          bytes = head
        }
        write(bytes)
        return check
      }).pipe(Effect.zipRight(visitor.flush ? visitor.flush() : Effect.void), Effect.zipRight(check))

    return Stream.runForEachChunk(source, (chunk) =>
      Effect.forEach(Chunk.toReadonlyArray(chunk), feed, { discard: true })
    ).pipe(
      Effect.zipRight(
        Effect.suspend(() => {
          if (compressed === 0) return Effect.fail(unsafe("empty archive"))
          if (inflater === undefined) {
            const made = start(head)
            if (made instanceof TarballUnsafe) return Effect.fail(made)
            inflater = made
            write(head)
          }
          inflater.end()
          if (failure === undefined && !ended) parser.end()
          if (failure === undefined && !ended)
            fail(unsafe("the archive ends without its end-of-archive blocks (truncated)"))
          return check
        })
      ),
      Effect.zipRight(visitor.flush ? visitor.flush() : Effect.void),
      Effect.zipRight(check),
      Effect.map((): ArchiveStats => ({ files, directories, bytes, compressedBytes: compressed })),
      Effect.ensuring(
        Effect.sync(() => {
          if (failure !== undefined || !ended) parser.abort(new Error("rejected"))
          inflater?.close()
        })
      )
    )
  })
