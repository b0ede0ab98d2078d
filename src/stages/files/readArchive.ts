/** The archive reader: a strict, capped, streaming read of a tar (gzip, zstd, or plain for a pull), for both ends. */
import type { ZlibOptions } from "node:zlib"
import { type Chunk, Effect, Stream } from "effect"
import { Gunzip, ZstdDecompress } from "minizlib"
import { type ArchiveFormat, CAPS, type Caps, FORMATS } from "../../domain/caps.js"
import { isExecutableMode, linkTargetProblem } from "../../domain/model.js"
import { TarballUnsafe } from "../../errors.js"
import { canReadStored, type Inflating, storedGunzip } from "./storedGunzip.js"
import { BLOCK, type TarBody, tarReader } from "./tarReader.js"
import { ZSTD_MAGIC, ZSTD_READ_PARAMS, zstdFrameCutter } from "./zstdFrames.js"

/** What an archive held, once read. */
export interface ArchiveStats {
  readonly files: number
  readonly directories: number
  readonly bytes: number
  readonly compressedBytes: number
}

/**
 * Receives one file's bytes, synchronously as the reader produces them: the tar reader's body, views of the inflated
 * pieces, which are never written again, so a sink may keep them. May throw TarballUnsafe.
 */
export type EntrySink = TarBody

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
  /**
   * The visitor checks every file's bytes against a hash it was promised, and its path, size, mode and kind against
   * the entry it expected: a stored gzip member's CRC then guards nothing that reaches the disk (a tar header has its
   * own checksum, and padding is never kept), so it is not computed. A compressed member's is zlib's, always checked.
   */
  readonly verifiesContent?: boolean
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

// The most each inflate writes at a time (zlib's default is 16 KiB): fewer, larger pieces for the tar reader, whose
// bodies are views of them. minizlib passes node:zlib's options on, though its types leave this one out.
const INFLATED_PIECE = 256 * 1024
const INFLATE_OPTIONS: ConstructorParameters<typeof Gunzip>[0] & ZlibOptions = { chunkSize: INFLATED_PIECE }

/** The compressed format whose magic number `bytes` start with, if any. */
const formatOf = (bytes: Uint8Array): ArchiveFormat | undefined =>
  bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b
    ? "gzip"
    : bytes.length >= 4 && ZSTD_MAGIC.equals(bytes.subarray(0, 4))
      ? "zstd"
      : undefined

const USTAR = Buffer.from("ustar")

/**
 * Whether `bytes` start with a whole tar block that is a ustar header or all zeros (an empty archive's end): what a
 * plain tar of ours starts with, and neither compressed format's magic can.
 */
const isTarStart = (bytes: Buffer) =>
  bytes.length >= BLOCK && (USTAR.equals(bytes.subarray(257, 262)) || bytes.subarray(0, BLOCK).every((b) => b === 0))

/** "a gzip, zstd or tar": the formats named, for a refusal of bytes that are none of them. */
const namedFormats = (formats: ReadonlyArray<ArchiveFormat>) =>
  formats.length === 0
    ? "an"
    : `a ${formats.slice(0, -1).join(", ")}${formats.length > 1 ? " or " : ""}${formats.at(-1)}`

/**
 * Reads a tar stream, gzip or zstd (told apart by its first bytes; zstd where this Node has it) or plain (where
 * `formats` names `tar` and the visitor verifies every file's bytes: its first block a ustar header or zeros),
 * strictly: the same ratio and size caps for all, only regular files, directories and symbolic links whose target
 * stays in the tree, checked paths, no duplicates, no setuid, setgid or sticky mode, nothing after the
 * end-of-archive blocks, within the caps. Any breach fails the whole read with TarballUnsafe; the visitor decides
 * what to do with bytes. A failure of the source itself (the network) is passed on as it is, never as an unsafe
 * archive.
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
    let failure: TarballUnsafe | undefined
    const seen = new Set<string>()
    const fail = (e: unknown) => {
      if (failure === undefined) failure = asUnsafe(e)
    }
    const reader = tarReader((entry): TarBody | undefined => {
      const path = checkEntryPath(entry.path)
      // No writer of ours sets them, and no reader applies a mode beyond the execute bit: an archive that
      // asks for them is not one of ours.
      if ((entry.mode & 0o7000) !== 0)
        throw unsafe(`mode ${entry.mode.toString(8)} (setuid, setgid or sticky) is not accepted`, entry.path)
      // One more than the cap: an upload's header (the trailer form has two, so a tree of the cap goes in the header form).
      if (files + directories > caps.maxEntries) throw unsafe(`more than ${caps.maxEntries} entries`, entry.path)
      if (entry.type === "Directory") {
        directories++
        if (path !== "") visitor.directory?.(path)
        return undefined
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
        if (entry.size !== 0) throw unsafe("a symbolic link with data", path)
        const problem = linkTargetProblem(path, entry.linkpath)
        if (problem !== undefined) throw unsafe(`a symbolic link not accepted: ${problem}`, path)
        const bytes = Buffer.from(entry.linkpath)
        files++
        const sink = visitor.file(path, bytes.length, false, true)
        sink.write(bytes)
        sink.end()
        return undefined
      }
      const size = entry.size
      if (size > caps.maxFileBytes) throw unsafe(`file larger than ${caps.maxFileBytes} bytes`, path)
      if (bytes + size > caps.maxTotalBytes) throw unsafe(`archive larger than ${caps.maxTotalBytes} bytes`, path)
      bytes += size
      files++
      return visitor.file(path, size, isExecutableMode(entry.mode), false)
    })
    // Inflating and parsing are synchronous, so each network chunk is fully handled (and its files flushed)
    // before the next is read: memory does not grow with the archive. The ratio is checked on every inflated
    // piece, with one member's allowance (see CAPS.maxRatio); the size caps on each header, before any data.
    // The decompressor, chosen by the archive's first bytes (gzip or zstd); undefined until they have come.
    let inflater: Inflating | undefined
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
      try {
        reader.write(piece)
      } catch (e) {
        fail(e)
      }
    }
    /** The decompressor for the archive's first bytes, or a failure naming what they are not. */
    let cut: ((chunk: Buffer) => Array<Buffer>) | undefined
    const write = (into: Inflating, bytes: Buffer) => {
      if (cut === undefined) return void into.write(bytes)
      try {
        for (const piece of cut(bytes)) if (piece.length > 0) into.write(piece)
      } catch (e) {
        fail(unsafe(`corrupt zstd: ${e instanceof Error ? e.message : String(e)}`))
      }
    }
    /** A minizlib decompressor whose output goes to the reader, all but its first `skip` bytes. */
    const inflating = (made: Gunzip | ZstdDecompress, format: ArchiveFormat, skip = 0): Inflating => {
      let left = skip
      made.on("error", (e: unknown) => fail(unsafe(`corrupt ${format}: ${e instanceof Error ? e.message : String(e)}`)))
      made.on("data", (piece: Buffer) => {
        if (left === 0) return onPiece(piece)
        if (piece.length <= left) {
          left -= piece.length
          return
        }
        const rest = piece.subarray(left)
        left = 0
        onPiece(rest)
      })
      return { write: (b) => void made.write(b), end: () => void made.end(), close: () => made.close() }
    }
    // What this reader takes: a plain tar only where named and every file's bytes are verified.
    const accepted = formats.filter((f) => f !== "tar" || visitor.verifiesContent === true)
    const start = (first: Buffer): Inflating | TarballUnsafe => {
      const format = formatOf(first) ?? (isTarStart(first) ? "tar" : undefined)
      if (format === undefined) return unsafe(`not ${namedFormats(accepted)} archive`)
      const refused = () =>
        unsafe(`a ${format} archive, which this end does not read (it reads ${accepted.join(", ")})`)
      if (!formats.includes(format)) return refused()
      if (format === "tar") {
        // No frame and no checksum of its bytes: only for a reader that checks every file's bytes itself.
        if (visitor.verifiesContent !== true) return refused()
        return { write: onPiece, end: () => {}, close: () => {} }
      }
      if (format === "gzip") {
        const gunzip = (skip: number) => inflating(new Gunzip(INFLATE_OPTIONS), "gzip", skip)
        // Stored members (a loopback download's) read as views of the input; zlib for any other.
        return canReadStored ? storedGunzip(onPiece, gunzip, visitor.verifiesContent !== true) : gunzip(0)
      }
      if (ZSTD_READ_PARAMS === undefined) return refused()
      cut = zstdFrameCutter()
      // Node's zstd options (`params`), which minizlib passes on but types as zlib's.
      return inflating(
        new ZstdDecompress({ params: ZSTD_READ_PARAMS, chunkSize: INFLATED_PIECE } as ConstructorParameters<
          typeof ZstdDecompress
        >[0]),
        "zstd"
      )
    }

    const check = Effect.suspend(() => (failure === undefined ? Effect.void : Effect.fail(failure)))
    /** Inflates and reads one input chunk, synchronously; a refusal is left in `failure`. */
    const feed = (chunk: Uint8Array): void => {
      if (failure !== undefined) return
      compressed += chunk.length
      let bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length)
      let into = inflater
      if (into === undefined) {
        // The first bytes name the format: held until there are enough of them (a tar's first block, where the
        // tar is read and they name no compressed format).
        head = Buffer.concat([head, bytes])
        if (head.length < ZSTD_MAGIC.length) return
        if (head.length < BLOCK && formats.includes("tar") && formatOf(head) === undefined) return
        const made = start(head)
        if (made instanceof TarballUnsafe) {
          fail(made)
          return
        }
        into = inflater = made
        bytes = head
      }
      write(into, bytes)
    }
    const flush = visitor.flush
    // With a flush, it runs after each input chunk (the database writes keep pace with the reading); without
    // one, a stream chunk's elements are read in one loop.
    const feedChunk =
      flush === undefined
        ? (chunk: Chunk.Chunk<Uint8Array>) =>
            Effect.suspend(() => {
              for (const piece of chunk) feed(piece)
              return check
            })
        : (chunk: Chunk.Chunk<Uint8Array>) =>
            Effect.forEach(
              chunk,
              (piece) =>
                Effect.suspend(() => {
                  feed(piece)
                  return check
                }).pipe(Effect.zipRight(flush()), Effect.zipRight(check)),
              { discard: true }
            )

    return Stream.runForEachChunk(source, feedChunk).pipe(
      Effect.zipRight(
        Effect.suspend(() => {
          if (compressed === 0) return Effect.fail(unsafe("empty archive"))
          let into = inflater
          if (into === undefined) {
            const made = start(head)
            if (made instanceof TarballUnsafe) return Effect.fail(made)
            into = inflater = made
            write(into, head)
          }
          into.end()
          if (failure === undefined && !reader.ended())
            fail(unsafe("the archive ends without its end-of-archive blocks (truncated)"))
          return check
        })
      ),
      Effect.zipRight(flush === undefined ? Effect.void : flush()),
      Effect.zipRight(check),
      Effect.map((): ArchiveStats => ({ files, directories, bytes, compressedBytes: compressed })),
      Effect.ensuring(Effect.sync(() => inflater?.close()))
    )
  })
