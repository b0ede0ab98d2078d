/** Test support: a buffer cut into the pieces a stream might deliver, for the codec tests. */

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
