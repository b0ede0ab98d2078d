/** Test support: a buffer cut into the pieces a stream might deliver, and gzip members made by hand, for the codec tests. */

import * as zlib from "node:zlib"

/** `bytes` cut at the given points (any order, any repeats; each taken modulo the length + 1), as views. */
export const cutAt = (bytes: Buffer, points: ReadonlyArray<number>): Array<Buffer> => {
  const at = [...new Set(points.map((p) => p % (bytes.length + 1)))].sort((a, b) => a - b)
  const out: Array<Buffer> = []
  let from = 0
  for (const p of at) {
    out.push(bytes.subarray(from, p))
    from = p
  }
  out.push(bytes.subarray(from))
  return out
}

/**
 * A gzip member whose first deflate block is stored and the rest compressed (zlib takes over inside it, reading it
 * from its start): `stored` (at most 65,535 bytes) in a stored block that is not the last, then `rest` deflated.
 */
export const mixedMember = (stored: Uint8Array, rest: Uint8Array): Buffer => {
  const head = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff])
  const block = Buffer.alloc(5)
  block[0] = 0
  block.writeUInt16LE(stored.length, 1)
  block.writeUInt16LE(stored.length ^ 0xffff, 3)
  const trailer = Buffer.alloc(8)
  const all = Buffer.concat([stored, rest])
  trailer.writeUInt32LE(zlib.crc32(all), 0)
  trailer.writeUInt32LE(all.length, 4)
  return Buffer.concat([head, block, stored, zlib.deflateRawSync(rest), trailer])
}
