/** Bundle archives: a reproducible tar.gz writer and a strict, capped, streaming reader, shared by client and server. */
import * as zlib from "node:zlib"
import { Chunk, Effect, Stream } from "effect"
import { Gunzip } from "minizlib"
import { Header, Parser, Pax, type ReadEntry } from "tar"
import { CAPS, type Caps } from "../../domain/caps.js"
import { fileMode, isExecutableMode, linkTargetProblem } from "../../domain/model.js"
import { TarballUnsafe } from "../../errors.js"

// A fixed mtime and owner make the same files give the same bytes on every machine.
const EPOCH = new Date(0)
const BLOCK = 512

/** A header block of ours (fixed owner and mtime), a pax header first when a path or link name does not fit ustar. */
const headerBlocks = (
  fields: { readonly path: string; readonly size: number; readonly mode: number } & (
    | { readonly type: "File" }
    | { readonly type: "SymbolicLink"; readonly linkpath: string }
  )
): Buffer => {
  const header = new Header({ ...fields, uid: 0, gid: 0, mtime: EPOCH, uname: "", gname: "" })
  const block = Buffer.alloc(BLOCK)
  const needPax = header.encode(block, 0)
  if (!needPax) return block
  const { path, size } = fields
  const pax =
    fields.type === "File"
      ? new Pax({ path, size, mtime: EPOCH })
      : new Pax({ path, linkpath: fields.linkpath, mtime: EPOCH })
  return Buffer.concat([pax.encode(), block])
}

/**
 * The tar header block(s) of a regular file. Its mode is 0755 for an executable file, else 0644 (`fileMode`): the
 * only two an archive of ours carries.
 */
export const fileHeader = (path: string, size: number, executable = false): Buffer =>
  headerBlocks({ path, size, mode: fileMode(executable), type: "File" })

/** The tar header block(s) of a symbolic link: type 2, its target as the link name, mode 0777 as links have, no data. */
export const linkHeader = (path: string, target: string): Buffer =>
  headerBlocks({ path, size: 0, mode: 0o777, type: "SymbolicLink", linkpath: target })

const padLength = (size: number) => (BLOCK - (size % BLOCK)) % BLOCK
const padding = (size: number): Buffer => Buffer.alloc(padLength(size))

/** One whole tar record of a file: header, bytes, padding. */
export const fileRecord = (path: string, bytes: Uint8Array, executable = false): Buffer =>
  Buffer.concat([fileHeader(path, bytes.length, executable), bytes, padding(bytes.length)])

/**
 * The tar records of several files in one buffer, each file's header and padding written and its bytes left
 * for the caller to put in place (`slots[i]`, exactly `files[i].size` long): one allocation for a batch of
 * files, instead of a buffer per file and per record and the copies between them.
 */
export const recordBatch = (
  files: ReadonlyArray<{
    readonly path: string
    readonly size: number
    readonly executable?: boolean | undefined
    /** A symbolic link's target: its record is its header alone, and its slot empty. */
    readonly target?: string | undefined
  }>
): { readonly buffer: Buffer; readonly slots: ReadonlyArray<Buffer> } => {
  const headers = files.map((f) =>
    f.target === undefined ? fileHeader(f.path, f.size, f.executable === true) : linkHeader(f.path, f.target)
  )
  const sizeOf = (f: (typeof files)[number]) => (f.target === undefined ? f.size : 0)
  let total = 0
  files.forEach((f, i) => {
    total += headers[i]!.length + sizeOf(f) + padLength(sizeOf(f))
  })
  const buffer = Buffer.allocUnsafe(total)
  const slots: Array<Buffer> = new Array(files.length)
  let at = 0
  files.forEach((f, i) => {
    const size = sizeOf(f)
    at += headers[i]!.copy(buffer, at)
    slots[i] = buffer.subarray(at, at + size)
    at += size
    const pad = padLength(size)
    buffer.fill(0, at, at + pad)
    at += pad
  })
  return { buffer, slots }
}

/** Two zero blocks end an archive. */
export const END_OF_ARCHIVE: Uint8Array = new Uint8Array(BLOCK * 2)

/** A tar stream of records, ended properly. */
export const tarOf = <E, R>(records: Stream.Stream<Uint8Array, E, R>): Stream.Stream<Uint8Array, E, R> =>
  Stream.concat(records, Stream.succeed(END_OF_ARCHIVE))

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
  level = LINK_LEVEL
): Stream.Stream<Uint8Array, E | TarballUnsafe, R> =>
  bytes.pipe(
    Stream.mapConcatChunk(members),
    Stream.mapEffect(
      (chunk) => {
        const stored = level === 0 ? storedMember(chunk) : undefined
        return stored === undefined ? gzipMember(chunk, level) : Effect.succeed(stored)
      },
      { concurrency: 2 }
    )
  )

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
 * Reads a tar.gz stream strictly: only regular files, directories and symbolic links whose target stays in the
 * tree, checked paths, no duplicates, no
 * setuid, setgid or sticky mode, nothing after the end-of-archive blocks, within the caps. Any breach fails the whole read with TarballUnsafe; the
 * visitor decides what to do with bytes. A failure of the source itself (the network) is passed on as it is,
 * never as an unsafe archive.
 */
export const readArchive = <E, R, E2 = never, R2 = never>(
  source: Stream.Stream<Uint8Array, E, R>,
  visitor: ArchiveVisitor<E2, R2>,
  caps: Caps = CAPS
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
    const gunzip = new Gunzip({})
    const fail = (e: unknown) => {
      if (failure === undefined) failure = asUnsafe(e)
    }
    gunzip.on("error", (e: unknown) => fail(unsafe(`corrupt gzip: ${e instanceof Error ? e.message : String(e)}`)))
    gunzip.on("data", (piece: Buffer) => {
      if (failure !== undefined) return
      decompressed += piece.length
      if (decompressed > caps.maxRatio * compressed + caps.memberBytes) {
        return fail(unsafe(`decompression ratio above ${caps.maxRatio} (a decompression bomb?)`))
      }
      if (decompressed === piece.length && piece.length >= 2 && piece[0] === 0x1f && piece[1] === 0x8b) {
        return fail(unsafe("a gzip inside the gzip (nested compression is not accepted)"))
      }
      if (ended) {
        // Zero padding after the end-of-archive blocks is allowed (tar pads to records); anything else is not.
        if (piece.some((b) => b !== 0)) fail(unsafe("data after the end of the archive"))
        return
      }
      parser.write(piece)
    })
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
        if (compressed === 0 && chunk.length >= 2 && !(chunk[0] === 0x1f && chunk[1] === 0x8b)) {
          return Effect.fail(unsafe("not a gzip archive"))
        }
        compressed += chunk.length
        gunzip.write(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length))
        return check
      }).pipe(Effect.zipRight(visitor.flush ? visitor.flush() : Effect.void), Effect.zipRight(check))

    return Stream.runForEachChunk(source, (chunk) =>
      Effect.forEach(Chunk.toReadonlyArray(chunk), feed, { discard: true })
    ).pipe(
      Effect.zipRight(
        Effect.suspend(() => {
          if (compressed === 0) return Effect.fail(unsafe("empty archive"))
          gunzip.end()
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
          gunzip.close()
        })
      )
    )
  })
