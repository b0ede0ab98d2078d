/** zstd where this Node has it, and its frames: the raw frame a writer falls back to, the cutting a reader needs. */
import * as zlib from "node:zlib"

/** The part of `node:zlib` that zstd needs (absent before Node 22.15; not in Node 20's types). */
interface ZstdZlib {
  readonly zstdCompress: (
    data: Uint8Array,
    options: { readonly params: Record<number, number> },
    callback: (error: Error | null, out: Buffer) => void
  ) => void
  readonly ZstdDecompress: unknown
  readonly constants: {
    readonly ZSTD_c_compressionLevel: number
    readonly ZSTD_c_checksumFlag: number
    readonly ZSTD_d_windowLogMax: number
  }
}

const zstdZlib = (): ZstdZlib | undefined => {
  const z = zlib as unknown as Partial<ZstdZlib>
  return typeof z.zstdCompress === "function" && typeof z.ZstdDecompress === "function" ? (z as ZstdZlib) : undefined
}

/** zstd, where this Node has it (then `FORMATS` names it). */
export const ZSTD = zstdZlib()

/** The four bytes every zstd frame starts with. */
export const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd])
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

/** The largest zstd window a reader accepts (8 MiB: above a member; a frame asking more is refused, not allocated). */
const ZSTD_WINDOW_LOG_MAX = 23

/** What a zstd reader is made with here (undefined where this Node has no zstd): the window cap above. */
export const ZSTD_READ_PARAMS =
  ZSTD === undefined ? undefined : { [ZSTD.constants.ZSTD_d_windowLogMax]: ZSTD_WINDOW_LOG_MAX }

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
      collected.push(chunk.readUInt8(at++))
      if (--want > 0) continue
      const h = Buffer.from(collected)
      collected = []
      if (state === "start") {
        if (!ZSTD_MAGIC.equals(h.subarray(0, 4))) throw new Error("not a zstd frame")
        const fhd = h.readUInt8(4)
        if ((fhd & 0x08) !== 0) throw new Error("reserved bit set in a frame header")
        const single = (fhd >> 5) & 1
        checksum = ((fhd >> 2) & 1) === 1
        // The window byte (unless single segment), the dictionary id (0, 1, 2 or 4 bytes), the content size (1
        // byte only when single segment, else 0, then 2, 4 or 8).
        const dictionary = fhd & 3
        const size = fhd >> 6
        want = (single ? 0 : 1) + (dictionary === 3 ? 4 : dictionary) + (size === 0 ? single : 1 << size)
        state = want === 0 ? "block" : "header"
        if (want === 0) want = 3
      } else if (state === "header") {
        state = "block"
        want = 3
      } else {
        const header = h.readUIntLE(0, 3)
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
