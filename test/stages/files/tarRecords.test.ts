// The tar records of a batch are byte for byte what `tar`'s own encoder writes for the same fields (fixed owner and
// mtime), whatever the paths (short, long, non-ASCII), sizes and modes: archives stay reproducible across releases.
import { describe, expect, it } from "@effect/vitest"
import { FastCheck } from "effect"
import { Header, Pax } from "tar"
import { fileMode } from "../../../src/domain/model.js"
import { bufferPool, fileHeader, fileRecord, recordBatch, textRecord } from "../../../src/stages/files/tarRecords.js"

/** The reference: `tar`'s Header (and a pax header before it when the fields do not fit ustar). */
const tarHeader = (path: string, size: number, executable: boolean) => {
  const epoch = new Date(0)
  const fields = { path, size, mode: fileMode(executable), type: "File" as const, uid: 0, gid: 0, mtime: epoch }
  const block = Buffer.alloc(512)
  const needPax = new Header({ ...fields, uname: "", gname: "" }).encode(block, 0)
  return needPax ? Buffer.concat([new Pax({ path, size, mtime: epoch }).encode(), block]) : block
}

const segment = FastCheck.stringMatching(/^[A-Za-z0-9._-]{1,40}$/)
const unicode = FastCheck.constantFrom("é", "ß", "日本", "😀", "a b")
const path = FastCheck.array(FastCheck.oneof(segment, segment, unicode), { minLength: 1, maxLength: 8 }).map((s) =>
  s.join("/")
)
const file = FastCheck.record({
  path,
  size: FastCheck.oneof(FastCheck.nat(5000), FastCheck.constantFrom(0, 511, 512, 513, 256 * 1024 * 1024)),
  executable: FastCheck.boolean()
})

describe("tar records", () => {
  it.prop("a header is the block(s) tar's encoder writes", [file], ([f]) => {
    expect(fileHeader(f.path, f.size, f.executable).equals(tarHeader(f.path, f.size, f.executable))).toBe(true)
  })

  it.prop(
    "a batch is the records of its files, each with its bytes in its slot",
    [
      FastCheck.array(
        file.map((f) => ({ ...f, size: f.size % 3000 })),
        { maxLength: 12 }
      )
    ],
    ([files]) => {
      const { buffer, slots } = recordBatch(files)
      const bytes = files.map((f, i) => Buffer.alloc(f.size, i + 1))
      slots.forEach((slot, i) => {
        slot.set(bytes[i]!)
      })
      const expected = Buffer.concat(files.map((f, i) => fileRecord(f.path, bytes[i]!, f.executable)))
      const reference = Buffer.concat(
        files.map((f, i) =>
          Buffer.concat([
            tarHeader(f.path, f.size, f.executable),
            bytes[i]!,
            Buffer.alloc((512 - (f.size % 512)) % 512)
          ])
        )
      )
      expect(buffer.equals(expected)).toBe(true)
      expect(buffer.equals(reference)).toBe(true)
    }
  )

  it.prop(
    "a text's record is the record of its UTF-8 bytes, whatever the text's length and characters",
    [
      path,
      FastCheck.oneof(
        FastCheck.string({ maxLength: 1200 }),
        FastCheck.string({ unit: "grapheme", maxLength: 600 }),
        FastCheck.string({ unit: "binary", maxLength: 600 }),
        FastCheck.nat(3).map((k) => "x".repeat(512 * k))
      )
    ],
    ([p, text]) => {
      expect(textRecord(p, text).equals(fileRecord(p, Buffer.from(text, "utf8")))).toBe(true)
    }
  )

  it("a pool gives a buffer back out only once it was released, and keeps at most its share", () => {
    const pool = bufferPool(8192, 1)
    const a = pool.take(100)
    const b = pool.take(8000)
    expect(a.buffer).not.toBe(b.buffer)
    pool.release(b)
    pool.release(b)
    pool.release(Buffer.alloc(10))
    const c = pool.take(50)
    expect(c.buffer).toBe(b.buffer)
    expect(c.length).toBe(50)
    expect(pool.take(10).buffer).not.toBe(b.buffer)
    // Larger than the pool's buffers: a new one, never kept.
    const big = pool.take(16_384)
    pool.release(big)
    expect(pool.take(16_384).buffer).not.toBe(big.buffer)
    // Over its share: a released buffer past `keep` is dropped.
    pool.release(c)
    pool.release(a)
    expect(pool.take(10).buffer).toBe(c.buffer)
    expect(pool.take(10).buffer).not.toBe(a.buffer)
  })
})
