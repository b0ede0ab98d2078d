// Gzip read without zlib while its members are stored gives what zlib gives — the same bytes for any mix of stored
// and compressed members however the stream is cut, and an error wherever zlib has one (a changed byte, a stream
// cut short) — and hands a stored member's bytes on without copying them.
import * as zlib from "node:zlib"
import { describe, expect, it } from "@effect/vitest"
import { FastCheck } from "effect"
import { Gunzip } from "minizlib"
import { CAPS } from "../../../src/domain/caps.js"
import { type Holds, reusable } from "../../../src/services/heldViews.js"
import { storedLength, storedMember } from "../../../src/stages/files/compress.js"
import {
  canReadStored,
  type Inflating,
  KEEP_AT_MOST,
  KEEP_PIECES_AT_MOST,
  storedGunzip
} from "../../../src/stages/files/storedGunzip.js"
import { cutAt, mixedMember } from "../../support/bytes.js"

/** zlib (minizlib, as readArchive uses it) taking over a member: what it gives past `skip` bytes into `out`. */
const zlibFrom = (skip: number, out: Array<Buffer>, failed: (e: unknown) => void): Inflating => {
  const z = new Gunzip({})
  let left = skip
  z.on("error", failed)
  z.on("data", (piece: Buffer) => {
    const rest = piece.subarray(Math.min(left, piece.length))
    left -= piece.length - rest.length
    if (rest.length > 0) out.push(Buffer.from(rest))
  })
  return { write: (b) => void z.write(b), end: () => void z.end(), close: () => z.close() }
}

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
    (skip) => {
      tookOver = true
      return zlibFrom(skip, out, (e) => {
        error ??= e
      })
    },
    crc32
  )
  for (const p of pieces) reader.write(p)
  reader.end()
  return { bytes: Buffer.concat(out), error, tookOver, views }
}

/**
 * `read`, each piece in a buffer of its own that is read into again (as a download's slabs are) as soon as the write
 * it came in returns, unless the reader holds a view of it: scribbled over then. What the reader keeps past a write
 * and does not hold (for zlib, should it take over) is read scribbled.
 */
const readReused = (pieces: ReadonlyArray<Buffer>, crc32 = true) => {
  const buffers: Array<{ readonly bytes: Buffer; readonly holds: Holds }> = []
  const copies = pieces.map((p) => {
    const bytes = Buffer.from(new ArrayBuffer(p.length))
    p.copy(bytes)
    buffers.push({ bytes, holds: reusable(bytes.buffer) })
    return bytes
  })
  /** The buffers of the pieces written so far, those not held scribbled over. */
  const scribble = (written: number) => {
    for (const b of buffers.slice(0, written)) if (b.holds.count === 0) b.bytes.fill(0xa5)
  }
  const out: Array<Buffer> = []
  let error: unknown
  const reader = storedGunzip(
    (piece) => void out.push(Buffer.from(piece)),
    (skip) =>
      zlibFrom(skip, out, (e) => {
        error ??= e
      }),
    crc32
  )
  /** The most bytes of input held after any write. */
  let mostHeld = 0
  copies.forEach((c, i) => {
    reader.write(c)
    scribble(i + 1)
    mostHeld = Math.max(
      mostHeld,
      buffers.reduce((n, b) => n + (b.holds.count > 0 ? b.bytes.length : 0), 0)
    )
  })
  reader.end()
  return { bytes: Buffer.concat(out), error, held: buffers.reduce((n, b) => n + b.holds.count, 0), mostHeld }
}

/**
 * `read`, the whole stream in one buffer that is read into again, written `size` bytes at a time: what it gives, and
 * the most views of the input held after any write (the buffer's count of holds).
 */
const readInPieces = (stream: Buffer, size: number) => {
  const bytes = Buffer.from(new ArrayBuffer(stream.length))
  stream.copy(bytes)
  const holds = reusable(bytes.buffer)
  const out: Array<Buffer> = []
  let error: unknown
  let tookOver = false
  const reader = storedGunzip(
    (piece) => void out.push(Buffer.from(piece)),
    (skip) => {
      tookOver = true
      return zlibFrom(skip, out, (e) => {
        error ??= e
      })
    }
  )
  let mostViews = 0
  for (let at = 0; at < bytes.length; at += size) {
    reader.write(bytes.subarray(at, at + size))
    mostViews = Math.max(mostViews, holds.count)
  }
  reader.end()
  return { bytes: Buffer.concat(out), error, tookOver, mostViews, held: holds.count }
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

  it.prop(
    "input read into again once a write returns: the same bytes as zlib, an error where it has one, nothing held at the end",
    [
      FastCheck.array(
        FastCheck.oneof(
          memberArb.map(member),
          FastCheck.record({
            stored: FastCheck.uint8Array({ minLength: 1, maxLength: 0xffff }),
            rest: FastCheck.uint8Array({ maxLength: 5000 })
          }).map((m) => mixedMember(m.stored, m.rest))
        ),
        { minLength: 1, maxLength: 4 }
      ),
      FastCheck.array(FastCheck.nat(), { maxLength: 10 }),
      FastCheck.option(FastCheck.tuple(FastCheck.nat(), FastCheck.integer({ min: 1, max: 255 })), { nil: undefined }),
      FastCheck.boolean()
    ],
    ([members, cuts, damage, crc32]) => {
      const stream = Buffer.from(Buffer.concat(members))
      if (damage !== undefined) {
        const at = damage[0] % stream.length
        stream[at] = (stream[at] ?? 0) ^ damage[1]
      }
      const { bytes, error, held } = readReused(cutAt(stream, cuts), crc32)
      // The same pieces read from buffers nobody writes again.
      const plain = read(cutAt(stream, cuts), crc32)
      expect(error === undefined).toBe(plain.error === undefined)
      if (error === undefined) expect(bytes.equals(plain.bytes)).toBe(true)
      if (damage === undefined) {
        expect(error).toBeUndefined()
        expect(bytes.equals(zlib.gunzipSync(stream))).toBe(true)
        // Every member ended: no view of the input is held any more.
        expect(held).toBe(0)
      }
    },
    { fastCheck: { numRuns: 150 } }
  )

  it("lets go of what it holds when closed inside a member", () => {
    const data = Buffer.alloc(50_000).map((_, i) => (i * 31) % 256)
    const stream = Buffer.from(storedMember(data) ?? zlib.gzipSync(data, { level: 0 }))
    // The member cut before its trailer, each piece in a reusable buffer of its own.
    const pieces = cutAt(stream.subarray(0, stream.length - 4), [7, 12_000, 30_000]).map((p) => {
      const bytes = Buffer.from(new ArrayBuffer(p.length))
      p.copy(bytes)
      return { bytes, holds: reusable(bytes.buffer) }
    })
    const reader = storedGunzip(
      () => {},
      () => ({ write: () => {}, end: () => {}, close: () => {} })
    )
    for (const p of pieces) reader.write(p.bytes)
    const held = () => pieces.reduce((n, p) => n + p.holds.count, 0)
    expect(held()).toBeGreaterThan(0)
    reader.close()
    expect(held()).toBe(0)
  })

  it("holds the stored blocks of a member zlib takes over in the middle of, until it does", () => {
    const stored = Buffer.alloc(40_000).map((_, i) => (i * 13) % 256)
    const rest = Buffer.alloc(20_000, 9)
    const stream = mixedMember(stored, rest)
    // The stored block's bytes in pieces of their own, each written before the compressed block comes.
    const cuts = [5, 15, 1000, 20_000, 39_000, 40_015]
    const { bytes, error } = readReused(cutAt(stream, cuts))
    expect(error).toBeUndefined()
    expect(bytes.equals(Buffer.concat([stored, rest]))).toBe(true)
  })

  it("keeps at most the longest member of ours of a stored member however long: zlib streams the rest", () => {
    // Three times the longest stored member a writer of ours makes, in 64 KiB pieces, each in a reusable buffer.
    const longest = storedLength(CAPS.memberBytes)
    const data = Buffer.alloc(3 * longest).map((_, i) => (i * 7) % 251)
    const stream = Buffer.from(storedMember(data) ?? zlib.gzipSync(data, { level: 0 }))
    const { bytes, error, mostHeld } = readReused(
      cutAt(
        stream,
        Array.from({ length: stream.length >> 16 }, (_, i) => (i + 1) << 16)
      )
    )
    expect(error).toBeUndefined()
    expect(bytes.equals(data)).toBe(true)
    expect(mostHeld).toBeLessThanOrEqual(longest + 65_536)
  })

  it("keeps a bounded part of a member of nothing but empty stored blocks: zlib reads the rest", () => {
    // A gzip header, 5 MiB of empty stored blocks (never a byte of data, so never the "stored" state), a last empty
    // block, and the trailer of nothing.
    const blocks = Math.ceil((5 * 2 ** 20) / 5)
    const stream = Buffer.alloc(10 + 5 * (blocks + 1) + 8)
    stream.set([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3])
    for (let i = 0; i <= blocks; i++) stream.set([i === blocks ? 1 : 0, 0, 0, 0xff, 0xff], 10 + 5 * i)
    const pieces = cutAt(
      stream,
      Array.from({ length: stream.length >> 16 }, (_, i) => (i + 1) << 16)
    )
    const { bytes, error, held, mostHeld } = readReused(pieces)
    expect(error).toBeUndefined()
    expect(bytes.equals(zlib.gunzipSync(stream))).toBe(true)
    expect(held).toBe(0)
    // It held the whole 5 MiB before.
    expect(mostHeld).toBeLessThanOrEqual(KEEP_AT_MOST + 65_536)
    const views = readInPieces(stream, 65_536)
    expect(views.error).toBeUndefined()
    expect(views.mostViews).toBeLessThanOrEqual(KEEP_PIECES_AT_MOST + 1)
  })

  it("keeps a bounded number of pieces of a member sent a byte a write, and none of ours in pieces of 4 KiB", () => {
    const data = Buffer.alloc(60_000).map((_, i) => (i * 7) % 251)
    const stream = Buffer.from(storedMember(data) ?? zlib.gzipSync(data, { level: 0 }))
    const tiny = readInPieces(stream, 1)
    expect(tiny.error).toBeUndefined()
    expect(tiny.bytes.equals(zlib.gunzipSync(stream))).toBe(true)
    expect(tiny.held).toBe(0)
    // It held a view per byte before.
    expect(tiny.mostViews).toBeLessThanOrEqual(KEEP_PIECES_AT_MOST + 1)
    // The longest member of ours, in pieces smaller than a socket gives: read without zlib, as a download's are.
    const longest = Buffer.alloc(CAPS.memberBytes).map((_, i) => (i * 13) % 251)
    const ours = readInPieces(Buffer.from(storedMember(longest) ?? Buffer.alloc(0)), 4096)
    expect(ours.error).toBeUndefined()
    expect(ours.tookOver).toBe(false)
    expect(ours.bytes.equals(longest)).toBe(true)
  })
})
