// zstd archives where Node has it (22.15, 23.8 on): the writer's frames, the strict reader's caps for them, and the
// choice of format for a link. On a Node without zstd (20), the choice falls back to gzip and a zstd archive is
// refused by name; both halves run on whichever Node runs the suite.
import * as zlib from "node:zlib"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, FastCheck, Stream } from "effect"
import { CAPS, FORMATS, parseFormats } from "../../../src/domain/caps.js"
import { TarballUnsafe } from "../../../src/errors.js"
import {
  compress,
  compressionFor,
  fileRecord,
  LINK_LEVEL,
  LOOPBACK_LEVEL,
  rawZstdFrame,
  readArchive,
  tarOf,
  ZSTD_LEVEL
} from "../../../src/stages/files/archive.js"

/** The zstd half of `node:zlib`, where this Node has it. */
const zstd = zlib as unknown as {
  readonly zstdCompressSync?: (data: Uint8Array, options?: { params: Record<number, number> }) => Buffer
  readonly zstdDecompressSync?: (data: Uint8Array) => Buffer
  readonly constants: Record<string, number>
}
const hasZstd = FORMATS.includes("zstd")

const collect = <E>(s: Stream.Stream<Uint8Array, E>) =>
  Stream.runCollect(s).pipe(Effect.map((c) => Buffer.concat(Chunk.toReadonlyArray(c))))

/** Reads an archive in pieces of 1,000 bytes, accepting every entry; the files it held. */
const readAll = (archive: Uint8Array) => {
  const files = new Map<string, Buffer>()
  const pieces: Array<Uint8Array> = []
  for (let i = 0; i < archive.length; i += 1000) pieces.push(archive.subarray(i, i + 1000))
  return readArchive(Stream.fromIterable(pieces), {
    file: (path) => {
      const chunks: Array<Uint8Array> = []
      return { write: (c) => void chunks.push(c), end: () => void files.set(path, Buffer.concat(chunks)) }
    }
  }).pipe(Effect.as(files))
}

const tarStream = (files: ReadonlyArray<readonly [string, Uint8Array]>) =>
  tarOf(Stream.fromIterable(files.map(([p, bytes]) => fileRecord(p, bytes))))

const reason = (result: Either.Either<unknown, unknown>) =>
  Either.isLeft(result) && result.left instanceof TarballUnsafe ? result.left.reason : `not refused: ${result}`

describe("the archive format for a link", () => {
  it("stores on loopback, and uses zstd on a link only where both ends read it", () => {
    const zstdHere = hasZstd ? { format: "zstd", level: ZSTD_LEVEL } : { format: "gzip", level: LINK_LEVEL }
    expect(compressionFor("127.0.0.1", ["zstd", "gzip"])).toEqual({ format: "gzip", level: LOOPBACK_LEVEL })
    expect(compressionFor("10.0.0.2", ["zstd", "gzip"])).toEqual(zstdHere)
    expect(compressionFor("127.0.0.1", ["zstd", "gzip"], "always")).toEqual(zstdHere)
    // A peer that reads gzip only (an older one, or one on Node 20), or this end told it reads gzip only.
    expect(compressionFor("10.0.0.2", ["gzip"])).toEqual({ format: "gzip", level: LINK_LEVEL })
    expect(compressionFor("10.0.0.2", [])).toEqual({ format: "gzip", level: LINK_LEVEL })
    expect(compressionFor("10.0.0.2", ["zstd"], "auto", ["gzip"])).toEqual({ format: "gzip", level: LINK_LEVEL })
    expect(compressionFor("10.0.0.2", ["zstd", "gzip"], "never")).toEqual({ format: "gzip", level: LOOPBACK_LEVEL })
    expect(parseFormats(" ZSTD, gzip, br")).toEqual(["zstd", "gzip"])
    expect(FORMATS).toEqual(typeof zstd.zstdCompressSync === "function" ? ["zstd", "gzip"] : ["gzip"])
  })
})

describe.runIf(hasZstd)("zstd archives (this Node has zstd)", () => {
  it.effect.prop(
    "a zstd archive reads back as the files written, at any level",
    [
      FastCheck.uniqueArray(
        FastCheck.tuple(FastCheck.stringMatching(/^[a-z]{1,8}(\/[a-z]{1,8}){0,2}\.md$/), FastCheck.uint8Array()),
        { selector: ([p]) => p, maxLength: 8 }
      ),
      FastCheck.constantFrom(1, 3, 9)
    ],
    ([files, level]) =>
      Effect.gen(function* () {
        const archive = yield* collect(compress(tarStream(files), { format: "zstd", level }))
        expect([...archive.subarray(0, 4)]).toEqual([0x28, 0xb5, 0x2f, 0xfd])
        const read = yield* readAll(archive)
        expect(new Map([...read].map(([p, b]) => [p, [...b]]))).toEqual(new Map(files.map(([p, b]) => [p, [...b]])))
      }),
    { fastCheck: { numRuns: 12 } }
  )

  it.effect("keeps every frame within the ratio cap: a member that compresses better goes raw", () =>
    Effect.gen(function* () {
      const zeros = new Uint8Array(3 * CAPS.memberBytes)
      const archive = yield* collect(compress(tarStream([["zeros.bin", zeros]]), { format: "zstd", level: 3 }))
      expect(archive.length * CAPS.maxRatio).toBeGreaterThan(zeros.length)
      expect((yield* readAll(archive)).get("zeros.bin")?.equals(zeros)).toBe(true)
      // The raw frame is zstd any reader reads: Node's own.
      const raw = rawZstdFrame(Buffer.from("x".repeat(300_000)))
      expect(zstd.zstdDecompressSync!(raw).toString()).toBe("x".repeat(300_000))
      expect(zstd.zstdDecompressSync!(rawZstdFrame(new Uint8Array(0))).length).toBe(0)
    })
  )

  it.effect("refuses a zstd bomb as it refuses a gzip one", () =>
    Effect.gen(function* () {
      // 16 MiB of zeros in one frame written by zstd itself (not by our writer, which would not write it).
      const tar = Buffer.concat([fileRecord("bomb.bin", new Uint8Array(16 * 1024 * 1024)), Buffer.alloc(1024)])
      const bomb = zstd.zstdCompressSync!(tar)
      expect(bomb.length * CAPS.maxRatio).toBeLessThan(tar.length)
      expect(reason(yield* Effect.either(readAll(bomb)))).toMatch(/decompression ratio above 200/)
    })
  )

  it.effect("refuses a frame that asks for a window larger than a member, before allocating it", () =>
    Effect.gen(function* () {
      const frame = Buffer.from(rawZstdFrame(fileRecord("a.md", Buffer.from("a"))))
      frame[5] = 20 << 3 // a 1 GiB window
      expect(reason(yield* Effect.either(readAll(frame)))).toMatch(/^corrupt zstd/)
    })
  )

  it.effect("refuses a zstd archive inside the zstd archive, and a zstd archive where only gzip is read", () =>
    Effect.gen(function* () {
      const inner = zstd.zstdCompressSync!(Buffer.alloc(4096))
      const nested = zstd.zstdCompressSync!(Buffer.concat([inner, Buffer.alloc(4096)]))
      expect(reason(yield* Effect.either(readAll(nested)))).toMatch(/a zstd inside the archive/)
      const archive = yield* collect(compress(tarStream([["a.md", Buffer.from("a")]]), { format: "zstd", level: 3 }))
      const gzipOnly = readArchive(Stream.make(archive), { file: () => ({ write: () => {}, end: () => {} }) }, CAPS, [
        "gzip"
      ])
      expect(reason(yield* Effect.either(gzipOnly))).toMatch(/a zstd archive, which this end does not read/)
    })
  )
})

describe.runIf(!hasZstd)("zstd archives (this Node has no zstd)", () => {
  it.effect("refuses a zstd archive by name, and writes none", () =>
    Effect.gen(function* () {
      // A raw frame needs no zstd to write: what an archive from a zstd-reading end would look like.
      const archive = rawZstdFrame(Buffer.concat([fileRecord("a.md", Buffer.from("a")), Buffer.alloc(1024)]))
      expect(reason(yield* Effect.either(readAll(archive)))).toMatch(/a zstd archive, which this end does not read/)
      const written = yield* Effect.either(
        collect(compress(Stream.make(new Uint8Array(10)), { format: "zstd", level: 3 }))
      )
      expect(reason(written)).toMatch(/zstd is not available/)
    })
  )
})
