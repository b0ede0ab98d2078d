/** The read side of tar records: a strict, synchronous, incremental reader of what `tarRecords` (and `tar`) write, bodies handed on as views of the input. */
import { TarballUnsafe } from "../../errors.js"

/** A tar block: headers, data and padding come in them. */
export const BLOCK = 512
// An extended header (pax, GNU long name) larger than this is not one of ours: paths are capped far below it.
const MAX_META = 1024 * 1024
/** The zeros taken after the end-of-archive blocks: one record of `tar`'s (20 blocks), more than its padding needs. */
const AFTER_END = 20 * BLOCK

/** One entry's header, its extended headers applied. `path` and `linkpath` are raw: the caller checks them. */
export interface TarHeader {
  /** `tar`'s name for the type: File, Directory, SymbolicLink, or another (Link, FIFO…) for the caller to refuse. */
  readonly type: string
  readonly path: string
  readonly linkpath: string
  /** The permission bits (`& 0o7777`), as the header carries them. */
  readonly mode: number
  readonly size: number
}

/** Receives an entry's bytes: views of the pieces given to `write`, never copied, never used again by the reader. */
export interface TarBody {
  readonly write: (chunk: Buffer) => void
  readonly end: () => void
}

export interface TarReader {
  /** Reads the next piece of the archive, handing on entries as their headers complete; throws TarballUnsafe. */
  readonly write: (piece: Buffer) => void
  /** Whether the two zero blocks that end an archive have been read. */
  readonly ended: () => boolean
}

// `tar`'s names for the type flags, for the caller's checks and its messages.
const TYPES: Record<string, string> = {
  "0": "File",
  "": "File",
  "1": "Link",
  "2": "SymbolicLink",
  "3": "CharacterDevice",
  "4": "BlockDevice",
  "5": "Directory",
  "6": "FIFO",
  "7": "ContiguousFile",
  D: "GNUDumpDir",
  M: "ContinuationFile",
  S: "SparseFile",
  V: "TapeVolumeHeader",
  A: "SolarisACL",
  I: "Inode"
}

const corrupt = (reason: string, entry?: string) =>
  new TarballUnsafe(
    entry === undefined ? { reason: `corrupt archive: ${reason}` } : { reason: `corrupt archive: ${reason}`, entry }
  )

/**
 * A numeric field: octal digits after any spaces, ended by a space or NUL with nothing else after them; or
 * base-256 (a first byte of 0x80), as `tar` writes numbers too large for octal. Undefined when it is neither.
 */
const numberAt = (b: Buffer, at: number, width: number): number | undefined => {
  const end = at + width
  if (b[at] === 0x80) {
    let n = 0
    for (let i = at + 1; i < end; i++) n = n * 256 + (b[i] ?? 0)
    return Number.isSafeInteger(n) ? n : undefined
  }
  let i = at
  while (i < end && b[i] === 0x20) i++
  let n = 0
  let digits = 0
  for (let c = b[i] ?? 0; i < end && c >= 0x30 && c <= 0x37; c = b[++i] ?? 0) {
    n = n * 8 + (c - 0x30)
    digits++
  }
  for (; i < end; i++) if (b[i] !== 0 && b[i] !== 0x20) return undefined
  return digits === 0 ? undefined : n
}

/** A text field: its bytes up to the first NUL, as UTF-8 (bytes that are not become U+FFFD, which checks refuse). */
const textAt = (b: Buffer, at: number, width: number): string => {
  let end = at
  while (end < at + width && b[end] !== 0) end++
  return b.toString("utf8", at, end)
}

const USTAR = Buffer.from("ustar\u000000", "latin1")
/** Whether a header block has ustar's magic and version, so its prefix field holds the start of its path. */
const isUstar = (b: Buffer, at: number) => {
  for (let i = 0; i < USTAR.length; i++) if (b[at + 257 + i] !== USTAR[i]) return false
  return true
}

/** The fields an extended header sets for the next entry. */
interface Extended {
  path?: string
  linkpath?: string
  size?: number
}

/** Parses a pax extended header's records (`<length> <key>=<value>\n`, the length counting the whole record). */
const paxRecords = (meta: Buffer, into: Extended, global: boolean): void => {
  let at = 0
  while (at < meta.length) {
    const space = meta.indexOf(0x20, at)
    const length = space === -1 ? Number.NaN : Number(meta.toString("latin1", at, space))
    if (!Number.isSafeInteger(length) || length <= space - at + 1 || at + length > meta.length)
      throw corrupt("a pax header record with a bad length")
    const end = at + length - 1
    if (meta[end] !== 0x0a) throw corrupt("a pax header record that does not end its line")
    const equals = meta.indexOf(0x3d, space + 1)
    if (equals === -1 || equals >= end) throw corrupt("a pax header record without a value")
    const key = meta.toString("utf8", space + 1, equals)
    const value = meta.toString("utf8", equals + 1, end)
    at += length
    if (key.startsWith("GNU.sparse.")) throw corrupt(`a sparse file (pax ${key}) is not accepted`)
    if (key === "size") {
      if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw corrupt(`a pax size of ${value}`)
      // A size for every later entry would make their headers say one thing and the archive another.
      if (global) throw corrupt("a global pax header setting a size is not accepted")
      into.size = Number(value)
    } else if (!global && key === "path") into.path = value
    else if (!global && key === "linkpath") into.linkpath = value
    // Anything else (times, owners, a global path as `tar` ignores it) means nothing to a reader of ours.
  }
}

/**
 * A reader of a tar stream, `entry` called for each file, directory or link as its header completes (the types it
 * does not take are for it to refuse): a body it returns receives the entry's bytes, any padding skipped. Extended
 * headers (pax `x`, GNU long names `L` and `K`) apply to the next entry; a global pax header is read and, but for a
 * size it refuses, ignored. Refused as corrupt: a header whose checksum does not match, a numeric field that is
 * not a number, a file or folder with a link name, a link without one, a folder with data, an entry without a
 * path, a lone zero block, anything but zeros after the two that end the archive.
 */
export const tarReader = (entry: (header: TarHeader) => TarBody | undefined): TarReader => {
  /** A header block that arrived in pieces, and how much of it has. */
  const held = Buffer.alloc(BLOCK)
  let heldLength = 0
  /** The entry whose bytes are arriving, and how many are still to come. */
  let body: TarBody | undefined
  let remain = 0
  /** Padding to skip after an entry's bytes. */
  let pad = 0
  /** An extended header's bytes, arriving; what it is; and what the extended headers so far set for the next entry. */
  let meta: Buffer | undefined
  let metaAt = 0
  let metaType = ""
  let extended: Extended | undefined
  let zeroBlocks = 0
  let ended = false
  /** Zeros read after the end-of-archive blocks. */
  let afterEnd = 0

  const endMeta = (bytes: Buffer) => {
    const ex: Extended = extended ?? {}
    extended = ex
    if (metaType === "x" || metaType === "X") paxRecords(bytes, ex, false)
    else if (metaType === "g") paxRecords(bytes, {}, true)
    else {
      // GNU long names: the name, NUL-terminated.
      const nul = bytes.indexOf(0)
      const name = bytes.toString("utf8", 0, nul === -1 ? bytes.length : nul)
      if (metaType === "K") ex.linkpath = name
      else ex.path = name
    }
  }

  const startBody = (size: number, sink: TarBody | undefined) => {
    pad = (BLOCK - (size % BLOCK)) % BLOCK
    if (size === 0) sink?.end()
    else {
      body = sink
      remain = size
    }
  }

  const header = (b: Buffer, at: number) => {
    // The checksum counts its own field as spaces; a block of zeros sums to nothing.
    let sum = 0
    // Indexed, as the writer's checksum loop: a subarray walk cost ten times more.
    for (let i = at; i < at + BLOCK; i++) sum += b[i] ?? 0
    if (sum === 0) {
      zeroBlocks++
      if (zeroBlocks === 2) ended = true
      return
    }
    if (zeroBlocks !== 0) throw corrupt("a zero block inside the archive")
    let field = 0
    for (let i = at + 148; i < at + 156; i++) field += b[i] ?? 0
    const checksum = numberAt(b, at + 148, 8)
    if (checksum !== sum - field + 8 * 0x20) throw corrupt("a header's checksum does not match")
    const flag = b[at + 156] === 0 ? "" : String.fromCharCode(b[at + 156] ?? 0)
    const rawSize = numberAt(b, at + 124, 12)
    if (rawSize === undefined) throw corrupt("a header's size is not a number")
    if (flag === "x" || flag === "X" || flag === "g" || flag === "L" || flag === "K" || flag === "N") {
      if (rawSize > MAX_META) throw corrupt(`an extended header of ${rawSize} bytes`)
      pad = (BLOCK - (rawSize % BLOCK)) % BLOCK
      metaType = flag
      if (rawSize === 0) return
      meta = Buffer.allocUnsafe(rawSize)
      metaAt = 0
      return
    }
    const ex = extended
    extended = undefined
    let path = ex?.path ?? textAt(b, at, 100)
    // ustar's prefix (`tar` reads 155 bytes when the last of them is set, else 130: the rest may hold times).
    if (ex?.path === undefined && isUstar(b, at)) {
      const prefix = textAt(b, at + 345, b[at + 475] === 0 ? 130 : 155)
      if (prefix !== "") path = `${prefix}/${path}`
    }
    if (path === "") throw corrupt("an entry without a path")
    let type = TYPES[flag] ?? `Unsupported (type ${JSON.stringify(flag)})`
    // Old tars marked a folder as a file whose name ends in a slash.
    if (type === "File" && path.endsWith("/")) type = "Directory"
    const mode = numberAt(b, at + 100, 8)
    if (mode === undefined) throw corrupt("a header's mode is not a number", path)
    const size = ex?.size ?? rawSize
    const linkpath = ex?.linkpath ?? textAt(b, at + 157, 100)
    const isLink = type === "SymbolicLink" || type === "Link"
    if (isLink && linkpath === "") throw corrupt("a link without a target", path)
    if ((type === "File" || type === "Directory") && linkpath !== "") throw corrupt("a link name on a non-link", path)
    if (type === "Directory" && size !== 0) throw corrupt("a folder with data", path)
    startBody(size, entry({ type, path, linkpath, mode: mode & 0o7777, size }))
  }

  const write = (piece: Buffer) => {
    const length = piece.length
    let at = 0
    while (at < length) {
      if (remain > 0) {
        const n = Math.min(remain, length - at)
        body?.write(at === 0 && n === length ? piece : piece.subarray(at, at + n))
        at += n
        remain -= n
        if (remain === 0) {
          const done = body
          body = undefined
          done?.end()
        }
      } else if (meta !== undefined) {
        const n = Math.min(meta.length - metaAt, length - at)
        piece.copy(meta, metaAt, at, at + n)
        at += n
        metaAt += n
        if (metaAt === meta.length) {
          const bytes = meta
          meta = undefined
          endMeta(bytes)
        }
      } else if (pad > 0) {
        const n = Math.min(pad, length - at)
        at += n
        pad -= n
      } else if (ended) {
        // Zeros after the end-of-archive blocks are a record's padding (`tar` pads to its 10,240-byte records), up
        // to one record's; anything else, or more zeros (a server that never stops sending them), is refused.
        const stop = Math.min(length, at + AFTER_END - afterEnd)
        afterEnd += stop - at
        for (; at < stop; at++)
          if (piece[at] !== 0) throw new TarballUnsafe({ reason: "data after the end of the archive" })
        if (at < length)
          throw new TarballUnsafe({
            reason: `data after the end of the archive: more than ${AFTER_END} bytes of zeros`
          })
      } else if (heldLength === 0 && length - at >= BLOCK) {
        header(piece, at)
        at += BLOCK
      } else {
        const n = Math.min(BLOCK - heldLength, length - at)
        piece.copy(held, heldLength, at, at + n)
        at += n
        heldLength += n
        if (heldLength === BLOCK) {
          heldLength = 0
          header(held, 0)
        }
      }
    }
  }

  return { write, ended: () => ended }
}
