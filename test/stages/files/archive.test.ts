import * as fsSync from "node:fs"
import * as fs from "node:fs/promises"
import * as nodePath from "node:path"
import { gunzipSync, gzipSync } from "node:zlib"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, FastCheck, Stream } from "effect"
import { Header } from "tar"
import { CAPS } from "../../../src/domain/caps.js"
import { FileEntry } from "../../../src/domain/model.js"
import { ApiError, TarballUnsafe } from "../../../src/errors.js"
import { Transient } from "../../../src/services/SyncApi.js"
import { apply, type Download } from "../../../src/stages/files/apply.js"
import {
  checkEntryPath,
  fileRecord,
  gzip,
  readArchive,
  storedMember,
  tarOf
} from "../../../src/stages/files/archive.js"
import { bundle } from "../../../src/stages/files/bundle.js"
import {
  claimedEntry,
  hostileCases,
  plainHostileCases,
  plainTar,
  record,
  sha,
  tarGz,
  WELL_FORMED
} from "../../support/hostile.js"
import { tempDirs } from "../../support/tree.js"

const streamOf = (b: Uint8Array) =>
  Stream.fromIterable([b.subarray(0, Math.floor(b.length / 3)), b.subarray(Math.floor(b.length / 3))])
const collect = <E>(s: Stream.Stream<Uint8Array, E>) =>
  Stream.runCollect(s).pipe(Effect.map((c) => Buffer.concat(Chunk.toReadonlyArray(c))))

/** Reads an archive, accepting every entry, and returns the files it held. */
const readAll = (archive: Uint8Array) => {
  const files = new Map<string, Buffer>()
  return readArchive(streamOf(archive), {
    file: (path) => {
      const chunks: Array<Uint8Array> = []
      return { write: (c) => void chunks.push(c), end: () => void files.set(path, Buffer.concat(chunks)) }
    }
  }).pipe(Effect.as(files))
}

const tempDir = tempDirs("archive")

/** A download that hands over the same archive whatever is asked for. */
const serve =
  (archive: Uint8Array): Download =>
  (_missing, consume) =>
    consume(streamOf(archive)).pipe(
      Effect.catchIf(
        (e) => e instanceof Transient,
        (t) => Effect.fail(new ApiError({ status: 0, reason: t.reason }))
      )
    )

const tempTree = async (files: Record<string, string>) => {
  const root = tempDir("tree")
  for (const [p, text] of Object.entries(files)) {
    const full = nodePath.join(root, "services", p)
    await fs.mkdir(nodePath.dirname(full), { recursive: true })
    await fs.writeFile(full, text)
  }
  return root
}

/** Every file under a folder with its bytes: the whole state a failed apply must leave alone. */
const snapshot = async (dir: string): Promise<Record<string, string>> => {
  const out: Record<string, string> = {}
  const walk = async (d: string, rel: string) => {
    for (const e of await fs.readdir(d, { withFileTypes: true })) {
      const r = rel === "" ? e.name : `${rel}/${e.name}`
      if (e.isDirectory()) await walk(nodePath.join(d, e.name), r)
      else out[r] = (await fs.readFile(nodePath.join(d, e.name))).toString("base64")
    }
  }
  await walk(dir, "")
  return out
}

describe("archive", () => {
  it.effect("bundles reproducibly: the same files give the same bytes, and read back to the same contents", () =>
    Effect.gen(function* () {
      const root = yield* Effect.promise(() =>
        tempTree({ "agents/a/config.yaml": "id: a\n", "skills/s/SKILL.md": "# s\n".repeat(100) })
      )
      const services = nodePath.join(root, "services")
      const entries = [
        new FileEntry({ path: "agents/a/config.yaml", size: 6, sha256: sha("id: a\n") }),
        new FileEntry({ path: "skills/s/SKILL.md", size: 400, sha256: sha("# s\n".repeat(100)) })
      ]
      const one = yield* collect(bundle({ servicesPath: services, files: entries }))
      const two = yield* collect(bundle({ servicesPath: services, files: entries }))
      expect(one.equals(two)).toBe(true)
      // A later mtime does not change the archive: the header carries a fixed one.
      yield* Effect.promise(() =>
        fs.utimes(nodePath.join(services, "agents/a/config.yaml"), new Date(), new Date(2030, 1, 1))
      )
      const three = yield* collect(bundle({ servicesPath: services, files: entries }))
      expect(three.equals(one)).toBe(true)
      const files = yield* readAll(one)
      expect([...files.keys()]).toEqual(entries.map((e) => e.path))
      expect(files.get("skills/s/SKILL.md")?.toString()).toBe("# s\n".repeat(100))
    })
  )

  it.effect("a bundle of many batches, their buffers used again, reads back to every file's own bytes", () =>
    Effect.gen(function* () {
      // 24 files of 300 KB: about 8 batches through a pool that keeps 4 buffers, each file's bytes its own.
      const texts = Array.from({ length: 24 }, (_, i) => `${String(i).padStart(4, "0")}\n`.repeat(60_000))
      const root = yield* Effect.promise(() =>
        tempTree(Object.fromEntries(texts.map((t, i) => [`content/f${String(i).padStart(2, "0")}.md`, t])))
      )
      const entries = texts.map(
        (t, i) => new FileEntry({ path: `content/f${String(i).padStart(2, "0")}.md`, size: t.length, sha256: sha(t) })
      )
      for (const level of [0, 1]) {
        const archive = yield* collect(
          bundle({
            servicesPath: nodePath.join(root, "services"),
            files: entries,
            compression: { format: "gzip", level }
          })
        )
        const files = yield* readAll(archive)
        expect(entries.map((e) => sha(files.get(e.path)!.toString()))).toEqual(entries.map((e) => e.sha256))
      }
    })
  )

  it.effect("an executable entry travels as 0755 and a plain one as 0644, and reads back as such", () =>
    Effect.gen(function* () {
      const root = yield* Effect.promise(() =>
        tempTree({ "skills/s/run.sh": "#!/bin/sh\n", "skills/s/SKILL.md": "# s\n" })
      )
      const entries = [
        new FileEntry({ path: "skills/s/SKILL.md", size: 4, sha256: sha("# s\n") }),
        new FileEntry({ path: "skills/s/run.sh", size: 10, sha256: sha("#!/bin/sh\n"), executable: true })
      ]
      const archive = yield* collect(bundle({ servicesPath: nodePath.join(root, "services"), files: entries }))
      const tar = gunzipSync(archive)
      expect(new Header(tar.subarray(0, 512)).mode).toBe(0o644)
      expect(new Header(tar.subarray(1024, 1536)).mode).toBe(0o755)
      const seen: Array<[string, boolean]> = []
      yield* readArchive(streamOf(archive), {
        file: (path, _size, executable) => {
          seen.push([path, executable])
          return { write: () => {}, end: () => {} }
        }
      })
      expect(seen).toEqual([
        ["skills/s/SKILL.md", false],
        ["skills/s/run.sh", true]
      ])
    })
  )

  it.effect("refuses to bundle a file that changed after it was hashed", () =>
    Effect.gen(function* () {
      const root = yield* Effect.promise(() => tempTree({ "agents/a/config.yaml": "id: a\n" }))
      const entry = new FileEntry({ path: "agents/a/config.yaml", size: 6, sha256: sha("id: b\n") })
      const result = yield* Effect.either(
        collect(bundle({ servicesPath: nodePath.join(root, "services"), files: [entry] }))
      )
      expect(Either.isLeft(result) && result.left._tag).toBe("IoError")
    })
  )

  it.effect("refuses a file that grew after it was hashed, small or large, even when it starts the same", () =>
    Effect.gen(function* () {
      const large = "x".repeat(5 * 1024 * 1024)
      const root = yield* Effect.promise(() =>
        tempTree({ "agents/a/config.yaml": "id: a\nmore", "content/big.md": `${large}more` })
      )
      const services = nodePath.join(root, "services")
      for (const [path, text] of [
        ["agents/a/config.yaml", "id: a\n"],
        ["content/big.md", large]
      ] as const) {
        const entry = new FileEntry({ path, size: text.length, sha256: sha(text) })
        const result = yield* Effect.either(collect(bundle({ servicesPath: services, files: [entry] })))
        expect([path, Either.isLeft(result) && result.left._tag]).toEqual([path, "IoError"])
      }
      // Read whole, the large file bundles and reads back.
      yield* Effect.promise(() => fs.writeFile(nodePath.join(services, "content/big.md"), large))
      const entry = new FileEntry({ path: "content/big.md", size: large.length, sha256: sha(large) })
      const files = yield* readAll(
        yield* collect(bundle({ servicesPath: services, files: [entry], compression: { format: "gzip", level: 0 } }))
      )
      expect(files.get("content/big.md")?.equals(Buffer.from(large))).toBe(true)
    })
  )

  it.effect("writes a pax header for long paths and reads it back", () =>
    Effect.gen(function* () {
      const long = `content/blog/${"x".repeat(180)}/index.md`
      const root = yield* Effect.promise(() => tempTree({ [long]: "hello" }))
      const archive = yield* collect(
        bundle({
          servicesPath: nodePath.join(root, "services"),
          files: [new FileEntry({ path: long, size: 5, sha256: sha("hello") })]
        })
      )
      const files = yield* readAll(archive)
      expect(files.get(long)?.toString()).toBe("hello")
    })
  )

  for (const c of hostileCases()) {
    if (WELL_FORMED.has(c.name)) continue // a well-formed archive: only apply, which knows the manifest, can reject it
    it.effect(`rejects an archive with ${c.name}`, () =>
      Effect.gen(function* () {
        const result = yield* Effect.either(readAll(c.archive))
        expect(Either.isLeft(result)).toBe(true)
        if (Either.isLeft(result)) expect(result.left).toBeInstanceOf(TarballUnsafe)
      })
    )
  }

  it.effect("names the decompression ratio when that is what was exceeded", () =>
    Effect.gen(function* () {
      const bomb = hostileCases().find((c) => c.name === "huge decompression ratio")!
      const result = yield* Effect.either(readAll(bomb.archive))
      expect(Either.isLeft(result) && result.left.message).toMatch(/ratio/)
    })
  )

  it.effect("rejects duplicate entries, FIFOs and entry counts over the cap", () =>
    Effect.gen(function* () {
      const dup = tarGz(record({ path: "a/x" }, Buffer.from("1")), record({ path: "a/x" }, Buffer.from("2")))
      expect(Either.isLeft(yield* Effect.either(readAll(dup)))).toBe(true)
      const fifo = tarGz(record({ path: "a/x", type: "FIFO" }))
      expect(Either.isLeft(yield* Effect.either(readAll(fifo)))).toBe(true)
      const many = tarGz(...Array.from({ length: 5 }, (_, i) => record({ path: `a/${i}` }, Buffer.from("x"))))
      const capped = readArchive(
        streamOf(many),
        { file: () => ({ write: () => {}, end: () => {} }) },
        { ...CAPS, maxEntries: 3 }
      )
      expect(Either.isLeft(yield* Effect.either(capped))).toBe(true)
    })
  )

  it("checkEntryPath accepts exactly the relative paths that stay inside the root", () => {
    const segment = FastCheck.constantFrom("a", "b.md", "..", ".", "", "c d", "-x")
    FastCheck.assert(
      FastCheck.property(
        FastCheck.array(segment, { minLength: 1, maxLength: 5 }),
        FastCheck.boolean(),
        (segments, absolute) => {
          const raw = `${absolute ? "/" : ""}${segments.join("/")}`
          let accepted: string | undefined
          try {
            accepted = checkEntryPath(raw)
          } catch (e) {
            expect(e).toBeInstanceOf(TarballUnsafe)
          }
          if (accepted !== undefined && accepted !== "") {
            // Whatever is accepted resolves inside the root.
            const resolved = nodePath.posix.resolve("/root", accepted)
            expect(resolved.startsWith("/root/")).toBe(true)
            expect(accepted.split("/")).not.toContain("..")
          }
          if (absolute && segments.some((s) => s !== "" && s !== "."))
            expect(accepted === undefined || accepted === "").toBe(true)
        }
      )
    )
  })
})

describe("apply", () => {
  // A pull reads a plain tar too (what a server on loopback sends): the same cases with no frame, and what only a
  // plain tar can get wrong, must cost nothing either.
  const cases = [
    ...hostileCases(),
    ...plainHostileCases().map(({ name, archive }) => ({ name: `${name} (a plain tar)`, archive }))
  ]
  for (const c of cases) {
    it.effect(`leaves the tree byte-identical when the archive has ${c.name}`, () =>
      Effect.gen(function* () {
        const root = yield* Effect.promise(() =>
          tempTree({ "agents/a/config.yaml": "name: good\n", "skills/s/SKILL.md": "keep" })
        )
        const services = nodePath.join(root, "services")
        const before = yield* Effect.promise(() => snapshot(services))
        const result = yield* Effect.either(
          apply({
            projectRoot: root,
            servicesPath: services,
            download: serve(c.archive),
            write: [new FileEntry(claimedEntry)],
            delete: ["skills/s/SKILL.md"]
          })
        )
        expect(Either.isLeft(result)).toBe(true)
        if (Either.isLeft(result)) expect(result.left._tag).toBe("TarballUnsafe")
        expect(yield* Effect.promise(() => snapshot(services))).toEqual(before)
        // Nothing escaped the root and no staging folder is left behind.
        const state = yield* Effect.promise(() => fs.readdir(nodePath.join(root, ".agentsync")).catch(() => []))
        expect(state.filter((n) => n.startsWith("staging-"))).toEqual([])
        expect(
          yield* Effect.promise(() =>
            fs.access(nodePath.join(root, "escape.txt")).then(
              () => true,
              () => false
            )
          )
        ).toBe(false)
      })
    )
  }

  it.effect("takes an honest plain tar (so the plain cases above are refused for what they hold)", () =>
    Effect.gen(function* () {
      const root = yield* Effect.promise(() => tempTree({ "agents/a/config.yaml": "name: old\n" }))
      const services = nodePath.join(root, "services")
      const result = yield* apply({
        projectRoot: root,
        servicesPath: services,
        download: serve(plainTar(record({ path: "agents/a/config.yaml" }, Buffer.from("name: evil\n")))),
        write: [new FileEntry(claimedEntry)],
        delete: []
      })
      expect(result.written).toBe(1)
      expect(yield* Effect.promise(() => fs.readFile(nodePath.join(services, "agents/a/config.yaml"), "utf8"))).toBe(
        "name: evil\n"
      )
    })
  )

  it.effect("swaps verified files in, deletes with a backup, and rejects a missing file", () =>
    Effect.gen(function* () {
      const root = yield* Effect.promise(() =>
        tempTree({ "agents/a/config.yaml": "name: old\n", "skills/s/SKILL.md": "gone" })
      )
      const services = nodePath.join(root, "services")
      const good = tarGz(record({ path: "agents/a/config.yaml" }, Buffer.from("name: evil\n")))
      const result = yield* apply({
        projectRoot: root,
        servicesPath: services,
        download: serve(good),
        write: [new FileEntry(claimedEntry)],
        delete: ["skills/s/SKILL.md"]
      })
      expect(result.written).toBe(1)
      expect(yield* Effect.promise(() => fs.readFile(nodePath.join(services, "agents/a/config.yaml"), "utf8"))).toBe(
        "name: evil\n"
      )
      expect(
        yield* Effect.promise(() =>
          fs.access(nodePath.join(services, "skills")).then(
            () => true,
            () => false
          )
        )
      ).toBe(false)
      expect(
        yield* Effect.promise(() => fs.readFile(nodePath.join(result.backup!, "agents/a/config.yaml"), "utf8"))
      ).toBe("name: old\n")
      expect(yield* Effect.promise(() => fs.readFile(nodePath.join(result.backup!, "skills/s/SKILL.md"), "utf8"))).toBe(
        "gone"
      )
      const missing = yield* Effect.either(
        apply({
          projectRoot: root,
          servicesPath: services,
          download: serve(good),
          write: [
            new FileEntry(claimedEntry),
            new FileEntry({ path: "agents/b/config.yaml", size: 1, sha256: sha("x") })
          ],
          delete: []
        })
      )
      expect(Either.isLeft(missing) && missing.left.message).toMatch(/missing/)
    })
  )

  it.effect(
    "writes each file with its entry's mode: 0755 when executable (a 0777 header masked), else 0644 (a 0666 header too)",
    () =>
      Effect.gen(function* () {
        const root = yield* Effect.promise(() => tempTree({ "skills/s/run.sh": "#!/bin/sh\n" }))
        const services = nodePath.join(root, "services")
        // What the umask leaves of a mode, as git's checkout also respects it.
        const probe = nodePath.join(root, "probe")
        const under = (mode: number) => {
          fsSync.rmSync(probe, { force: true })
          fsSync.writeFileSync(probe, "", { mode })
          return fsSync.statSync(probe).mode & 0o7777
        }
        const body = Buffer.from("#!/bin/sh\necho hi\n")
        const big = Buffer.alloc(1024 * 1024 + 1, "x")
        const archive = tarGz(
          record({ path: "skills/s/run.sh", mode: 0o777 }, body),
          record({ path: "skills/s/data.bin", mode: 0o775 }, big),
          record({ path: "skills/s/notes.md", mode: 0o666 }, Buffer.from("n\n"))
        )
        yield* apply({
          projectRoot: root,
          servicesPath: services,
          download: serve(archive),
          write: [
            new FileEntry({ path: "skills/s/run.sh", size: body.length, sha256: sha(body), executable: true }),
            new FileEntry({ path: "skills/s/data.bin", size: big.length, sha256: sha(big), executable: true }),
            new FileEntry({ path: "skills/s/notes.md", size: 2, sha256: sha("n\n") })
          ],
          delete: []
        })
        const mode = (p: string) => fsSync.statSync(nodePath.join(services, p)).mode & 0o7777
        expect(mode("skills/s/run.sh")).toBe(under(0o755))
        expect(mode("skills/s/data.bin")).toBe(under(0o755))
        expect(mode("skills/s/notes.md")).toBe(under(0o644))
        // A mode-only change: same bytes, the bit dropped.
        yield* apply({
          projectRoot: root,
          servicesPath: services,
          download: serve(tarGz(record({ path: "skills/s/run.sh", mode: 0o644 }, body))),
          write: [new FileEntry({ path: "skills/s/run.sh", size: body.length, sha256: sha(body) })],
          delete: []
        })
        expect(mode("skills/s/run.sh")).toBe(under(0o644))
      })
  )

  it.effect("finishes a swap that a killed pull left half done", () =>
    Effect.gen(function* () {
      const root = yield* Effect.promise(() =>
        tempTree({ "agents/a/config.yaml": "old a", "agents/b/config.yaml": "old b" })
      )
      const services = nodePath.join(root, "services")
      const state = nodePath.join(root, ".agentsync")
      const staging = nodePath.join(state, "staging-x")
      const backup = nodePath.join(state, "backups", "x")
      // The state a kill between the two renames leaves: a moved in, b still staged.
      yield* Effect.promise(async () => {
        await fs.mkdir(nodePath.join(staging, "agents/b"), { recursive: true })
        await fs.writeFile(nodePath.join(staging, "agents/b/config.yaml"), "new b")
        await fs.mkdir(nodePath.join(backup, "agents/a"), { recursive: true })
        await fs.rename(nodePath.join(services, "agents/a/config.yaml"), nodePath.join(backup, "agents/a/config.yaml"))
        await fs.writeFile(nodePath.join(services, "agents/a/config.yaml"), "new a")
        await fs.writeFile(
          nodePath.join(state, "pull-journal.json"),
          JSON.stringify({
            staging,
            backup,
            servicesPath: services,
            write: ["agents/a/config.yaml", "agents/b/config.yaml"],
            delete: []
          })
        )
      })
      const { recoverPull } = yield* Effect.promise(() => import("../../../src/stages/files/apply.js"))
      expect(yield* recoverPull(root)).toBe(true)
      const tree = yield* Effect.promise(() => snapshot(services))
      expect(
        Object.fromEntries(Object.entries(tree).map(([k, v]) => [k, Buffer.from(v, "base64").toString()]))
      ).toEqual({
        "agents/a/config.yaml": "new a",
        "agents/b/config.yaml": "new b"
      })
      expect(yield* Effect.promise(() => fs.readFile(nodePath.join(backup, "agents/b/config.yaml"), "utf8"))).toBe(
        "old b"
      )
      expect(yield* recoverPull(root)).toBe(false)
    })
  )
})

describe("ratio and strictness", () => {
  const chunked = (b: Uint8Array, size: number) =>
    Stream.fromIterable(
      Array.from({ length: Math.ceil(b.length / size) }, (_, i) => b.subarray(i * size, (i + 1) * size))
    )
  const readChunks = (archive: Uint8Array, size: number) =>
    readArchive(chunked(archive, size), { file: () => ({ write: () => {}, end: () => {} }) })

  it.effect(
    "an archive agentsync writes passes every reader's ratio check, whatever it holds and however the network cuts it",
    () =>
      Effect.gen(function* () {
        const files: Record<string, Buffer> = {
          "config/zeros.bin": Buffer.alloc(5 * 1024 * 1024),
          "config/noise.bin": Buffer.from(Array.from({ length: 200_000 }, () => Math.floor(Math.random() * 256))),
          "config/lines.txt": Buffer.from("the same line again\n".repeat(150_000))
        }
        const records = Object.entries(files).map(([p, b]) => fileRecord(p, b))
        for (const order of [records, [...records].reverse()]) {
          const archive = yield* collect(gzip(tarOf(Stream.fromIterable(order as ReadonlyArray<Uint8Array>))))
          const stats = yield* readChunks(archive, 512)
          expect(stats.files).toBe(3)
        }
      })
  )

  it.effect("refuses data after the end-of-archive blocks, and an archive that stops before them", () =>
    Effect.gen(function* () {
      const tar = record({ path: "a/x" }, Buffer.from("1"))
      // More than fits beside the end blocks in one inflated piece: the parser would buffer it all.
      const hidden = gzipSync(
        Buffer.concat([
          tar,
          Buffer.alloc(1024),
          Buffer.from(Array.from({ length: 100_000 }, (_, i) => (i * 7919) % 251))
        ])
      )
      expect(yield* Effect.flip(readChunks(hidden, 64))).toMatchObject({ reason: "data after the end of the archive" })
      const cut = gzipSync(tar)
      expect((yield* Effect.flip(readChunks(cut, 64))).reason).toMatch(/end-of-archive|truncated/i)
      // Zero padding after the end, as tar pads to whole records, is fine.
      expect((yield* readChunks(gzipSync(Buffer.concat([tar, Buffer.alloc(10240)])), 64)).files).toBe(1)
    })
  )
})

describe("gzip output", () => {
  it.prop(
    "a stored member is a gzip member that inflates to its bytes, across block boundaries",
    [FastCheck.integer({ min: 0, max: 3 * 0xffff + 2 }), FastCheck.integer({ min: 0, max: 255 })],
    ([length, seed]) => {
      const bytes = Buffer.allocUnsafe(length)
      for (let i = 0; i < length; i++) bytes[i] = (i * 31 + seed) % 256
      const member = storedMember(bytes)!
      expect(gunzipSync(member).equals(bytes)).toBe(true)
      // Two members one after the other are one gzip stream.
      expect(gunzipSync(Buffer.concat([member, member])).equals(Buffer.concat([bytes, bytes]))).toBe(true)
    },
    {
      fastCheck: {
        numRuns: 40,
        examples: [
          [0, 0],
          [0xffff, 1],
          [2 * 0xffff, 2],
          [0xffff + 1, 3]
        ]
      }
    }
  )

  it.effect("at level 0 is stored members that every reader reads back", () =>
    Effect.gen(function* () {
      const records = [fileRecord("a/x.txt", Buffer.from("x".repeat(200_000))), fileRecord("a/y.txt", Buffer.alloc(0))]
      const archive = yield* collect(gzip(tarOf(Stream.fromIterable(records as ReadonlyArray<Uint8Array>)), 0))
      expect(archive.length).toBeGreaterThan(200_000)
      const files = yield* readAll(archive)
      expect(files.get("a/x.txt")?.toString()).toBe("x".repeat(200_000))
      expect(files.get("a/y.txt")?.length).toBe(0)
    })
  )

  it.effect("is a valid gzip stream ending in two zero blocks", () =>
    Effect.gen(function* () {
      const root = yield* Effect.promise(() => tempTree({ "agents/a/config.yaml": "id: a\n" }))
      const archive = yield* collect(
        bundle({
          servicesPath: nodePath.join(root, "services"),
          files: [new FileEntry({ path: "agents/a/config.yaml", size: 6, sha256: sha("id: a\n") })]
        })
      )
      const raw = gunzipSync(archive)
      expect(raw.length % 512).toBe(0)
      expect(raw.subarray(raw.length - 1024).every((b) => b === 0)).toBe(true)
    })
  )
})
