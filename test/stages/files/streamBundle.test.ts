// A first upload's archive round-trips: over generated trees, the lead, every file's bytes and mode as read, and a
// trailer naming each with the hash of those bytes and the tree's checksum; a file not at its listed size fails it.
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, FastCheck as fc, Stream } from "effect"
import { UPLOAD_HEADER_ENTRY, UPLOAD_LEAD_ENTRY } from "../../../src/api/files.js"
import { manifestChecksum } from "../../../src/domain/hash.js"
import { type FileEntry, fileEntry } from "../../../src/domain/model.js"
import type { WorkspaceFile } from "../../../src/services/Workspace.js"
import { fileRecord, LOOPBACK_LEVEL, readArchive } from "../../../src/stages/files/archive.js"
import { streamBundle } from "../../../src/stages/files/streamBundle.js"
import { sha } from "../../support/hostile.js"
import { tempDirs } from "../../support/tree.js"

const tempDir = tempDirs("streambundle")

/** Every entry of an archive, in order: its path, bytes and mode bit. */
const readAll = (archive: Uint8Array) => {
  const entries: Array<{ path: string; bytes: Buffer; executable: boolean }> = []
  return readArchive(Stream.make(archive), {
    file: (path, _size, executable) => {
      const chunks: Array<Uint8Array> = []
      return {
        write: (c) => void chunks.push(c),
        end: () => void entries.push({ path, bytes: Buffer.concat(chunks), executable })
      }
    }
  }).pipe(Effect.as(entries))
}

/** The tree written under a fresh `services/`, listed as the workspace lists it (sorted by path, with stats). */
const written = (files: ReadonlyArray<{ path: string; bytes: Uint8Array; executable: boolean }>) => {
  const root = nodePath.join(tempDir("tree"), "services")
  const listed: Array<WorkspaceFile> = []
  for (const f of [...files].sort((a, b) => (a.path < b.path ? -1 : 1))) {
    const at = nodePath.join(root, f.path)
    fs.mkdirSync(nodePath.dirname(at), { recursive: true })
    fs.writeFileSync(at, f.bytes)
    fs.chmodSync(at, f.executable ? 0o755 : 0o644)
    const st = fs.statSync(at)
    listed.push({ path: f.path, size: st.size, mtimeMs: st.mtimeMs, mode: st.mode })
  }
  return { root, listed }
}

const run = (root: string, listed: ReadonlyArray<WorkspaceFile>, pinned?: ReadonlyArray<FileEntry | undefined>) => {
  let named: ReadonlyArray<FileEntry> = []
  const streamed = streamBundle({
    servicesPath: root,
    files: listed,
    ...(pinned === undefined ? {} : { pinned }),
    prelude: [fileRecord(UPLOAD_LEAD_ENTRY, Buffer.from('{"manifest":"trailer"}'))],
    trailer: (entries) => {
      named = entries
      return fileRecord(
        UPLOAD_HEADER_ENTRY,
        Buffer.from(JSON.stringify({ set: entries, checksum: manifestChecksum(entries) }))
      )
    },
    compression: { format: "gzip", level: LOOPBACK_LEVEL }
  })
  return Stream.runCollect(streamed.stream).pipe(
    Effect.map((c) => ({
      archive: Buffer.concat(Chunk.toReadonlyArray(c)),
      entries: streamed.entries,
      named,
      sent: streamed.sent()
    }))
  )
}

const fileArb = fc.record({
  path: fc
    .array(fc.constantFrom("a", "b", "c", "d"), { minLength: 1, maxLength: 3 })
    .map((segments) => `content/${segments.join("/")}.md`),
  bytes: fc.uint8Array({ maxLength: 3000 }),
  executable: fc.boolean()
})

describe("streamBundle", () => {
  it.effect.prop(
    "carries each listed file's bytes and mode as read, and a trailer of their hashes and checksum",
    [
      // Paths unique, and none a folder of another.
      fc
        .uniqueArray(fileArb, { minLength: 1, maxLength: 40, selector: (f) => f.path })
        .map((files) => files.filter((f) => !files.some((g) => g.path.startsWith(`${f.path.slice(0, -3)}/`))))
    ],
    ([files]) =>
      Effect.gen(function* () {
        const { root, listed } = written(files)
        const { archive, entries, named, sent } = yield* run(root, listed)
        const expected = listed.map((l) => {
          const f = files.find((g) => g.path === l.path)!
          return fileEntry(l.path, f.bytes.length, sha(f.bytes), f.executable)
        })
        expect(entries).toEqual(expected)
        expect(named).toEqual(expected)
        // Each content once, under the first path (in the listing's order) that holds it; the trailer names them all.
        const carried = listed.filter((_, i) => expected.findIndex((e) => e.sha256 === expected[i]!.sha256) === i)
        const read = yield* readAll(archive)
        expect(read.map((e) => e.path)).toEqual([UPLOAD_LEAD_ENTRY, ...carried.map((l) => l.path), UPLOAD_HEADER_ENTRY])
        expect(sent).toBe(carried.length)
        for (const [i, l] of carried.entries()) {
          const f = files.find((g) => g.path === l.path)!
          expect([read[i + 1]!.bytes.equals(Buffer.from(f.bytes)), read[i + 1]!.executable]).toEqual([
            true,
            f.executable
          ])
        }
        const trailer = JSON.parse(read.at(-1)!.bytes.toString())
        expect(trailer).toEqual({ set: expected, checksum: manifestChecksum(expected) })
      }),
    { fastCheck: { numRuns: 30 } }
  )

  it.effect("sends the same bytes once: a second path of them, in the same batch or a later one, is named only", () =>
    Effect.gen(function* () {
      const same = Buffer.from("the same bytes\n")
      // 300 files: more than a batch (256), so the copies fall in the first batch and in the second.
      const files = Array.from({ length: 300 }, (_, i) => ({
        path: `content/${String(i).padStart(3, "0")}.md`,
        bytes: i % 3 === 0 ? same : Buffer.from(`file ${i}\n`),
        executable: i === 3
      }))
      const { root, listed } = written(files)
      const { archive, named, sent } = yield* run(root, listed)
      const read = yield* readAll(archive)
      const paths = read.map((e) => e.path)
      expect(paths.filter((p) => p.startsWith("content/"))).toHaveLength(201)
      expect(paths).toContain("content/000.md")
      expect(paths).not.toContain("content/003.md")
      expect(paths).not.toContain("content/297.md")
      expect(sent).toBe(201)
      // Every file is read and named, the copies with their own mode.
      expect(named).toHaveLength(300)
      expect(named[3]).toEqual(fileEntry("content/003.md", same.length, sha(same), true))
      expect(named[297]).toEqual(fileEntry("content/297.md", same.length, sha(same), false))
      for (const e of read.slice(1, -1)) {
        const f = files.find((g) => g.path === e.path)!
        expect(e.bytes.equals(f.bytes)).toBe(true)
      }
    })
  )

  it.effect("a retry fails, naming the file, where it reads a file otherwise than the attempt it repeats", () =>
    Effect.gen(function* () {
      const { root, listed } = written([
        { path: "content/a.md", bytes: Buffer.from("one"), executable: false },
        { path: "content/b.md", bytes: Buffer.from("two"), executable: false }
      ])
      const first = yield* run(root, listed)
      // The same bytes: the retry reads what the first attempt read.
      expect((yield* run(root, listed, first.entries)).entries).toEqual(first.entries)
      // Rewritten at the same size (each attempt takes sizes and modes from the same listing): bytes tell.
      fs.writeFileSync(nodePath.join(root, "content/b.md"), "TWO")
      const again = yield* Effect.either(run(root, listed, first.entries))
      expect(Either.isLeft(again) && again.left).toMatchObject({
        _tag: "IoError",
        path: nodePath.join(root, "content/b.md"),
        reason: "changed while bundling; run again"
      })
      // An attempt cut short pins nothing less: a third attempt is held to the first's entries through it.
      const cut = streamBundle({
        servicesPath: root,
        files: listed,
        pinned: first.entries,
        prelude: [],
        trailer: () => fileRecord(UPLOAD_HEADER_ENTRY, Buffer.from("{}"))
      })
      expect(cut.entries).toEqual(first.entries)
      const third = yield* Effect.either(run(root, listed, cut.entries))
      expect(Either.isLeft(third) && third.left).toMatchObject({ path: nodePath.join(root, "content/b.md") })
    })
  )

  it.effect("fails where a file grew by one byte, read with its padding byte or (at 512 bytes, none) a probe", () =>
    Effect.gen(function* () {
      for (const size of [1, 100, 511, 512, 1024, 70_000]) {
        const { root, listed } = written([
          { path: "content/a.md", bytes: Buffer.alloc(size, 0x61), executable: false },
          { path: "content/b.md", bytes: Buffer.from("two"), executable: false }
        ])
        // As listed, it is sent whole, its padding zero.
        const { archive } = yield* run(root, listed)
        expect((yield* readAll(archive))[1]?.bytes.equals(Buffer.alloc(size, 0x61))).toBe(true)
        fs.appendFileSync(nodePath.join(root, "content/a.md"), "b")
        const grown = yield* Effect.either(run(root, listed))
        expect([size, Either.isLeft(grown) && grown.left]).toMatchObject([
          size,
          { _tag: "IoError", path: nodePath.join(root, "content/a.md"), reason: "changed while bundling; run again" }
        ])
        fs.truncateSync(nodePath.join(root, "content/a.md"), size - 1)
        const shrunk = yield* Effect.either(run(root, listed))
        expect([size, Either.isLeft(shrunk)]).toEqual([size, true])
      }
    })
  )

  it.effect("fails, naming the file, when a file is not at its listed size (changed since the listing)", () =>
    Effect.gen(function* () {
      const { root, listed } = written([
        { path: "content/a.md", bytes: Buffer.from("one"), executable: false },
        { path: "content/b.md", bytes: Buffer.from("two"), executable: false }
      ])
      fs.writeFileSync(nodePath.join(root, "content/b.md"), "grown")
      const result = yield* Effect.either(run(root, listed))
      expect(Either.isLeft(result) && result.left).toMatchObject({
        _tag: "IoError",
        path: nodePath.join(root, "content/b.md"),
        reason: "changed while bundling; run again"
      })
    })
  )
})
