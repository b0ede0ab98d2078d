/** Gzip read without zlib while its members are stored (what a loopback link carries): each block's bytes handed on as views of the input, zlib taking over at the first member that is not. */
import * as zlib from "node:zlib"
import { CAPS } from "../../domain/caps.js"
import { hold, release } from "../../services/heldViews.js"
import { storedLength } from "./compress.js"

/** What reads a compressed stream: written to, ended, closed (minizlib's decompressors are such). */
export interface Inflating {
  readonly write: (bytes: Buffer) => void
  readonly end: () => void
  readonly close: () => void
}

/** Whether this Node can check a stored member's CRC without zlib's stream (`zlib.crc32`, from 20.15). */
export const canReadStored = typeof zlib.crc32 === "function"

const HEADER = 10
const BLOCK_HEADER = 5
const TRAILER = 8

/**
 * The most of one member this reader keeps for zlib: the longest stored member a writer of ours makes. A longer one
 * (a foreign writer's, or a hostile one's) goes to zlib there and then, which streams it, so what is held stays
 * within this however long a member is.
 */
export const KEEP_AT_MOST = storedLength(CAPS.memberBytes)

/**
 * The most pieces of one member this reader keeps for zlib: each costs a view (some hundred bytes of heap) however
 * few its bytes, so a member within `KEEP_AT_MOST` sent a byte a write would otherwise hold millions. A member of ours
 * read from a socket comes in a few hundred (a 4 MiB member: 64 blocks, each a header and its data, split further at
 * each read's end).
 */
export const KEEP_PIECES_AT_MOST = 4096

/**
 * A gzip reader that hands the bytes of stored members (gzip header with no flags, deflate blocks of type 00) to
 * `emit` as views of what is written, checking each member's CRC and length; at anything else — a compressed
 * block, a flag, a CRC or length that does not match, an end inside a member — it hands the rest of the stream,
 * from the start of that member, to `fallback(skip)` (zlib), which must emit all but the first `skip` bytes (those this reader
 * has already emitted), and reports what zlib reports. So the output, and every error, is what zlib alone would
 * give, without copying a stored member's bytes.
 *
 * With `crc` false, a stored member's CRC is neither computed nor checked (its length still is): for a reader that
 * verifies every byte it keeps by a stronger hash (a pull: each file's SHA-256 against its manifest entry), to which
 * a changed byte of a stored block arrives changed instead of as zlib's error.
 *
 * A member longer than `keepAtMost` bytes, or that came in more than `keepPiecesAtMost` pieces, goes to zlib there
 * and then, whatever it is made of (stored data, or nothing but empty blocks): what is kept for zlib is bounded in
 * bytes and in pieces, never the whole of a member however long a server makes it or however finely it cuts it.
 */
export const storedGunzip = (
  emit: (piece: Buffer) => void,
  fallback: (skip: number) => Inflating,
  crc32 = true,
  keepAtMost = KEEP_AT_MOST,
  keepPiecesAtMost = KEEP_PIECES_AT_MOST
): Inflating => {
  /**
   * The bytes of the current member so far (views, held: their buffer may be read into again once let go, see
   * `heldViews`), for zlib should it take over.
   */
  let member: Array<Buffer> = []
  /** Their length. */
  let kept = 0
  const keep = (piece: Buffer) => {
    hold(piece)
    member.push(piece)
    kept += piece.length
  }
  /** The current member's views let go (it ended, or zlib has read them). */
  const letGo = () => {
    for (const b of member) release(b)
    member = []
    kept = 0
  }
  /** Bytes emitted from the current member. */
  let emitted = 0
  let crc = 0
  /** A header, block header or trailer that arrived in pieces. */
  const small = Buffer.alloc(HEADER)
  let smallLength = 0
  let state: "header" | "block" | "stored" | "trailer" = "header"
  /** Bytes of the current stored block still to come, and whether it is the member's last. */
  let remain = 0
  let final = false
  let taken: Inflating | undefined

  /** zlib takes over from the start of the current member, `rest` after what it has already seen. */
  const takeOver = (rest: Buffer | undefined): Inflating => {
    const z = fallback(emitted)
    taken = z
    for (const b of member) z.write(b)
    letGo()
    if (rest !== undefined && rest.length > 0) z.write(rest)
    return z
  }

  /** How many bytes of `b` from `at` complete the fixed-size part being read (`need` long), copying them aside when it
   * arrives in pieces; the part once whole, else undefined. */
  const gather = (b: Buffer, at: number, need: number): { readonly took: number; readonly part?: Buffer } => {
    if (smallLength === 0 && b.length - at >= need) return { took: need, part: b.subarray(at, at + need) }
    const took = Math.min(need - smallLength, b.length - at)
    b.copy(small, smallLength, at, at + took)
    smallLength += took
    if (smallLength < need) return { took }
    smallLength = 0
    return { took, part: small.subarray(0, need) }
  }

  /**
   * Longer than any member of ours, or in more pieces than one comes in: zlib reads it from here on, without keeping
   * it. Checked in every state, as a member of nothing but empty stored blocks never reaches "stored".
   */
  const keptTooMuch = () => kept > keepAtMost || member.length > keepPiecesAtMost

  const write = (b: Buffer) => {
    if (taken !== undefined) return taken.write(b)
    let at = 0
    while (at < b.length) {
      if (keptTooMuch()) return takeOver(b.subarray(at))
      if (state === "stored") {
        const n = Math.min(remain, b.length - at)
        const piece = at === 0 && n === b.length ? b : b.subarray(at, at + n)
        keep(piece)
        if (crc32) crc = zlib.crc32(piece, crc)
        emitted += n
        remain -= n
        at += n
        emit(piece)
        if (remain === 0) state = final ? "trailer" : "block"
        continue
      }
      const { took, part } = gather(b, at, state === "header" ? HEADER : state === "block" ? BLOCK_HEADER : TRAILER)
      keep(b.subarray(at, at + took))
      at += took
      if (part === undefined) break
      if (state === "header") {
        // ID1 ID2, deflate, no flags (so no name, comment, extra field or header CRC to skip).
        if (part[0] !== 0x1f || part[1] !== 0x8b || part[2] !== 8 || part[3] !== 0) return takeOver(b.subarray(at))
        crc = 0
        state = "block"
      } else if (state === "block") {
        const len = (part[1] ?? 0) | ((part[2] ?? 0) << 8)
        const nlen = (part[3] ?? 0) | ((part[4] ?? 0) << 8)
        // A block of type 00 (stored), its length checked against its complement.
        if (((part[0] ?? 0) & 0b110) !== 0 || (len ^ 0xffff) !== nlen) return takeOver(b.subarray(at))
        final = ((part[0] ?? 0) & 1) === 1
        remain = len
        state = len === 0 ? (final ? "trailer" : "block") : "stored"
      } else {
        if ((crc32 && part.readUInt32LE(0) !== crc >>> 0) || part.readUInt32LE(4) !== emitted % 2 ** 32)
          return takeOver(b.subarray(at))
        letGo()
        emitted = 0
        state = "header"
      }
    }
    if (keptTooMuch()) takeOver(undefined)
  }

  return {
    write,
    end: () => {
      // An end inside a member (or inside a part of one): zlib says how it ends.
      if (taken === undefined && (state !== "header" || smallLength !== 0)) takeOver(undefined)
      taken?.end()
    },
    close: () => {
      letGo()
      taken?.close()
    }
  }
}
