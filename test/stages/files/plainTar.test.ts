// A pull's download as a plain tar (no gzip frame, no CRC-32 of every byte): chosen where stored members would be and
// the reader names it, read only by a reader that verifies every file's bytes, and refused anywhere else.
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, FastCheck, Stream } from "effect"
import { type ArchiveFormat, DOWNLOAD_FORMATS, FORMATS, parseFormats } from "../../../src/domain/caps.js"
import { TarballUnsafe } from "../../../src/errors.js"
import {
  compress,
  compressionFor,
  END_OF_ARCHIVE,
  fileRecord,
  LINK_LEVEL,
  LOOPBACK_LEVEL,
  readArchive,
  tarOf
} from "../../../src/stages/files/archive.js"

/** The archive cut at `cuts` (offsets, any order), read with `formats` by a visitor that verifies (or not). */
const readCut = (
  archive: Uint8Array,
  cuts: ReadonlyArray<number>,
  formats = DOWNLOAD_FORMATS,
  verifiesContent = true
) => {
  const at = [...new Set([0, ...cuts.map((c) => Math.min(c, archive.length)), archive.length])].sort((a, b) => a - b)
  const pieces = at.slice(1).map((end, i) => archive.subarray(at[i], end))
  const files = new Map<string, string>()
  return readArchive(
    Stream.fromIterable(pieces),
    {
      file: (path) => {
        const chunks: Array<Uint8Array> = []
        return { write: (c) => void chunks.push(c), end: () => void files.set(path, Buffer.concat(chunks).toString()) }
      },
      verifiesContent
    },
    undefined,
    formats
  ).pipe(
    Effect.map(() => Object.fromEntries(files)),
    Effect.either
  )
}

const plainTar = (files: Record<string, string>) =>
  Buffer.concat([...Object.entries(files).map(([p, text]) => fileRecord(p, Buffer.from(text))), END_OF_ARCHIVE])

const reason = (result: Either.Either<unknown, unknown>) =>
  Either.isLeft(result) && result.left instanceof TarballUnsafe ? result.left.reason : `not refused: ${result}`

describe("a plain tar's format for a link", () => {
  it("is chosen where stored members would be, and only for a reader that names it", () => {
    const stored = { format: "gzip", level: LOOPBACK_LEVEL }
    const tar = { format: "tar", level: LOOPBACK_LEVEL }
    expect(compressionFor("127.0.0.1", DOWNLOAD_FORMATS)).toEqual(tar)
    expect(compressionFor("10.0.0.2", DOWNLOAD_FORMATS, "never")).toEqual(tar)
    // A reader that does not name it (an older client, or any upload's server) gets stored members, as before.
    expect(compressionFor("127.0.0.1", FORMATS)).toEqual(stored)
    expect(compressionFor("10.0.0.2", FORMATS, "never")).toEqual(stored)
    // On a real link, or told to compress, the reader's compressed formats.
    expect(compressionFor("10.0.0.2", DOWNLOAD_FORMATS).format).not.toBe("tar")
    expect(compressionFor("127.0.0.1", ["gzip", "tar"], "always")).toEqual({ format: "gzip", level: LINK_LEVEL })
    // Named in a download's request; never taken from a server's answer (no upload is made in it).
    expect(parseFormats("gzip, TAR", true)).toEqual(["gzip", "tar"])
    expect(parseFormats("gzip, tar")).toEqual(["gzip"])
    expect(FORMATS).not.toContain("tar")
    expect(DOWNLOAD_FORMATS).toEqual([...FORMATS, "tar"])
  })

  it.effect("is the records as they are", () =>
    Effect.gen(function* () {
      const records = [fileRecord("a.md", Buffer.from("a")), fileRecord("b.md", Buffer.from("bb"))]
      const out = yield* Stream.runCollect(compress(Stream.fromIterable(records), { format: "tar", level: 0 }))
      expect(Chunk.toReadonlyArray(out)).toEqual(records)
    })
  )
})

describe("reading a plain tar", () => {
  it.effect.prop(
    "a plain tar reads as the files written, however it is cut (its first block too)",
    [
      FastCheck.dictionary(
        FastCheck.stringMatching(/^[a-z]{1,12}\/[a-z]{1,12}\.md$/),
        FastCheck.string({ maxLength: 2000 }),
        { minKeys: 0, maxKeys: 6 }
      ),
      FastCheck.array(FastCheck.nat({ max: 20_000 }), { maxLength: 8 })
    ],
    ([files, cuts]) =>
      Effect.gen(function* () {
        const read = yield* readCut(plainTar(files), cuts)
        expect(read).toEqual(Either.right(files))
      })
  )

  it.effect("is refused by a reader that does not name it, and by one that does not verify what it keeps", () =>
    Effect.gen(function* () {
      const archive = plainTar({ "content/a.md": "# a\n" })
      expect(reason(yield* readCut(archive, [], FORMATS))).toBe(
        `a tar archive, which this end does not read (it reads ${FORMATS.join(", ")})`
      )
      // Its first bytes alone, to a reader that does not wait for a tar's first block: named by neither magic.
      expect(reason(yield* readCut(archive, [100], ["zstd", "gzip"]))).toBe("not a zstd or gzip archive")
      // One that does not verify names what it does read: not the tar it refuses.
      expect(reason(yield* readCut(archive, [], DOWNLOAD_FORMATS, false))).toBe(
        `a tar archive, which this end does not read (it reads ${DOWNLOAD_FORMATS.filter((f) => f !== "tar").join(", ")})`
      )
    })
  )

  it.effect("bytes that are neither compressed nor a tar block are refused, naming what the reader takes", () =>
    Effect.gen(function* () {
      const junk = Buffer.alloc(600, "x")
      const all: ReadonlyArray<ArchiveFormat> = ["zstd", "gzip", "tar"]
      expect(reason(yield* readCut(junk, [3, 300], all))).toBe("not a zstd, gzip or tar archive")
      expect(reason(yield* readCut(junk.subarray(0, 100), [], all))).toBe("not a zstd, gzip or tar archive")
      // A plain tar is taken only by a reader that verifies: one that does not, does not name it.
      expect(reason(yield* readCut(junk, [3], all, false))).toBe("not a zstd or gzip archive")
      expect(reason(yield* readCut(junk, [], ["gzip"]))).toBe("not a gzip archive")
    })
  )

  it.effect("a plain tar cut short, or with bytes after its end, is refused", () =>
    Effect.gen(function* () {
      const archive = plainTar({ "content/a.md": "# a\n".repeat(300), "content/b.md": "b" })
      expect(reason(yield* readCut(archive.subarray(0, archive.length - 700), [512]))).toMatch(/truncated|ends/)
      expect(reason(yield* readCut(Buffer.concat([archive, Buffer.from("more")]), [512]))).toBe(
        "data after the end of the archive"
      )
    })
  )

  it.effect("a gzip archive still reads where a plain tar is named too (its magic seen in its first bytes)", () =>
    Effect.gen(function* () {
      const files = { "content/a.md": "# a\n".repeat(50) }
      const gz = Buffer.concat(
        Chunk.toReadonlyArray(
          yield* Stream.runCollect(
            compress(tarOf(Stream.make(fileRecord("content/a.md", Buffer.from(files["content/a.md"])))), {
              format: "gzip",
              level: LINK_LEVEL
            })
          )
        )
      )
      expect(yield* readCut(gz, [2, 5])).toEqual(Either.right(files))
    })
  )
})
