// Gzip read without zlib while its members are stored gives what zlib gives — the same bytes for any mix of stored
// and compressed members however the stream is cut, and an error wherever zlib has one (a changed byte, a stream
// cut short) — and hands a stored member's bytes on without copying them.
import * as zlib from "node:zlib"
import { describe, expect, it } from "@effect/vitest"
import { FastCheck } from "effect"
import { Gunzip } from "minizlib"
import { storedMember } from "../../../src/stages/files/compress.js"
import { canReadStored, type Inflating, storedGunzip } from "../../../src/stages/files/storedGunzip.js"
import { cutAt } from "../../support/bytes.js"

/** Reads `pieces` through the stored reader, zlib (minizlib, as readArchive uses it) taking over where it must. */
const read = (pieces: ReadonlyArray<Buffer>, crc32 = true) => {
  const out: Array<Buffer> = []
  const views: Array<Buffer> = []
  let error: unknown
  let tookOver = false
  const reader = storedGunzip(
    (piece) => {
      views.push(piece)
      out.push(Buffer.from(piece))
    },
    (skip): Inflating => {
      tookOver = true
      const z = new Gunzip({})
      let left = skip
      z.on("error", (e: unknown) => {
        error ??= e
      })
      z.on("data", (piece: Buffer) => {
        const rest = piece.subarray(Math.min(left, piece.length))
        left -= piece.length - rest.length
        if (rest.length > 0) out.push(Buffer.from(rest))
      })
      return { write: (b) => void z.write(b), end: () => void z.end(), close: () => z.close() }
    },
    crc32
  )
  for (const p of pieces) reader.write(p)
  reader.end()
  return { bytes: Buffer.concat(out), error, tookOver, views }
}

/** A member of `data`: stored by our writer, or by zlib at a level (0 is zlib's own stored blocks). */
const memberArb = FastCheck.record({
  data: FastCheck.oneof(
    FastCheck.uint8Array({ maxLength: 3000 }),
    FastCheck.integer({ min: 0, max: 200_000 }).map((n) => new Uint8Array(n).fill(n % 7)),
    FastCheck.constantFrom(0, 0xffff, 0x10000, 2 * 0xffff + 1).map((n) => new Uint8Array(n).map((_, i) => i % 251))
  ),
  how: FastCheck.constantFrom<"ours" | 0 | 1 | 6>("ours", "ours", 0, 1, 6)
})
const member = (m: { data: Uint8Array; how: "ours" | number }) =>
  m.how === "ours"
    ? Buffer.from(storedMember(m.data) ?? zlib.gzipSync(m.data, { level: 0 }))
    : zlib.gzipSync(m.data, { level: m.how })

describe.runIf(canReadStored)("stored gzip members", () => {
  it.prop(
    "read back to what zlib reads, for any mix of members however the stream is cut",
    [FastCheck.array(memberArb, { minLength: 1, maxLength: 5 }), FastCheck.array(FastCheck.nat(), { maxLength: 10 })],
    ([members, cuts]) => {
      const stream = Buffer.concat(members.map(member))
      const { bytes, error, tookOver } = read(cutAt(stream, cuts))
      expect(error).toBeUndefined()
      expect(bytes.equals(zlib.gunzipSync(stream))).toBe(true)
      // zlib is needed only from a member written by zlib at a level above 0.
      if (members.every((m) => m.how === "ours" || m.how === 0)) expect(tookOver).toBe(false)
    },
    { fastCheck: { numRuns: 60 } }
  )

  it.prop(
    "a changed byte or a stream cut short is an error wherever zlib has one, and otherwise the same bytes",
    [
      FastCheck.array(memberArb, { minLength: 1, maxLength: 3 }),
      FastCheck.nat(),
      FastCheck.integer({ min: 1, max: 255 }),
      FastCheck.boolean(),
      FastCheck.array(FastCheck.nat(), { maxLength: 6 })
    ],
    ([members, where, flip, truncate, cuts]) => {
      const stream = Buffer.from(Buffer.concat(members.map(member)))
      const at = where % stream.length
      const damaged = truncate ? stream.subarray(0, at) : stream
      if (!truncate) damaged[at] = (damaged[at] ?? 0) ^ flip
      // Nothing at all is readArchive's to refuse ("empty archive"), before any reader sees it.
      if (damaged.length === 0) return
      let expected: Buffer | undefined
      try {
        expected = zlib.gunzipSync(damaged)
      } catch {
        expected = undefined
      }
      const { bytes, error } = read(cutAt(damaged, cuts))
      if (expected === undefined) expect(error).toBeDefined()
      else if (error === undefined) expect(bytes.equals(expected)).toBe(true)
    },
    { fastCheck: { numRuns: 100 } }
  )

  it.prop(
    "without its CRC: the same bytes as zlib, and a changed byte is an error or arrives changed (never a change of length)",
    [
      FastCheck.array(memberArb, { minLength: 1, maxLength: 3 }),
      FastCheck.nat(),
      FastCheck.integer({ min: 1, max: 255 }),
      FastCheck.array(FastCheck.nat(), { maxLength: 6 })
    ],
    ([members, where, flip, cuts]) => {
      const stream = Buffer.from(Buffer.concat(members.map(member)))
      const whole = read(cutAt(stream, cuts), false)
      expect(whole.error).toBeUndefined()
      expect(whole.bytes.equals(zlib.gunzipSync(stream))).toBe(true)
      const at = where % stream.length
      const damaged = Buffer.from(stream)
      damaged[at] = (damaged[at] ?? 0) ^ flip
      const { bytes, error } = read(cutAt(damaged, cuts), false)
      let expected: Buffer | undefined
      try {
        expected = zlib.gunzipSync(damaged)
      } catch {
        expected = undefined
      }
      if (error !== undefined) return
      if (expected !== undefined) expect(bytes.equals(expected)).toBe(true)
      else {
        // Where only the CRC would have caught it, what the caller's hash must: as many bytes as the intact stream
        // gives, at most one of them changed.
        const intact = zlib.gunzipSync(stream)
        expect(bytes.length).toBe(intact.length)
        let changed = 0
        for (let i = 0; i < bytes.length; i++) if (bytes[i] !== intact[i]) changed++
        expect(changed).toBeLessThanOrEqual(1)
      }
    },
    { fastCheck: { numRuns: 100 } }
  )

  it("without its CRC, a changed byte of a stored block's data arrives changed; with it, zlib refuses the member", () => {
    const data = Buffer.alloc(1000, 7)
    const stream = Buffer.from(storedMember(data) ?? Buffer.alloc(0))
    // Past the gzip header (10 bytes) and the block's (5).
    stream[500] = 8
    const unchecked = read([stream], false)
    expect(unchecked.error).toBeUndefined()
    expect(unchecked.tookOver).toBe(false)
    expect(unchecked.bytes[500 - 15]).toBe(8)
    expect(read([stream]).error).toBeDefined()
  })

  it("without its CRC, a stored member's length is still checked: a changed length byte is an error", () => {
    const data = Buffer.alloc(1000, 7)
    const intact = storedMember(data) ?? Buffer.alloc(0)
    // The trailer's last four bytes are the member's length (ISIZE); each one changed in turn.
    for (let at = intact.length - 4; at < intact.length; at++) {
      const stream = Buffer.from(intact)
      stream[at] = (stream[at] ?? 0) ^ 1
      expect(read([stream], false).error).toBeDefined()
    }
    expect(read([Buffer.from(intact)], false).error).toBeUndefined()
  })

  it("hands a stored member's bytes on as views of the input, not copies", () => {
    const data = Buffer.alloc(100_000, 7)
    const stream = Buffer.from(storedMember(data) ?? Buffer.alloc(0))
    const { views, tookOver } = read([stream])
    expect(tookOver).toBe(false)
    expect(views.every((v) => v.buffer === stream.buffer)).toBe(true)
    expect(Buffer.concat(views).equals(data)).toBe(true)
  })
})
