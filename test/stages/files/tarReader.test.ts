// The tar reader reads back exactly what was written — by our own record writer, by the `tar` package and by GNU tar
// (pax and GNU long names, links, folders, modes with the executable bit, empty files) — however the archive is cut
// into pieces; a header changed in any byte is refused (or, where the change means nothing, read the same), an
// archive cut short never counts as ended, and a pull of a corrupt archive changes nothing on disk.
import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { gzipSync } from "node:zlib"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, FastCheck, Stream } from "effect"
import * as tar from "tar"
import { FileEntry } from "../../../src/domain/model.js"
import { ApiError, TarballUnsafe } from "../../../src/errors.js"
import { Transient } from "../../../src/services/SyncApi.js"
import { apply, type Download } from "../../../src/stages/files/apply.js"
import { END_OF_ARCHIVE, fileRecord, linkHeader, readArchive } from "../../../src/stages/files/archive.js"
import { storedMember } from "../../../src/stages/files/compress.js"
import { type TarHeader, tarReader } from "../../../src/stages/files/tarReader.js"
import { cutAt } from "../../support/bytes.js"
import { sha } from "../../support/hostile.js"
import { tempDirs, treeFiles } from "../../support/tree.js"

const tempDir = tempDirs("tar-reader")

/** A project whose services/ holds one file, a/old.md ("old"), which a refused pull must leave as it is. */
const projectWithOld = () => {
  const root = tempDir("project")
  const services = nodePath.join(root, "services")
  fs.mkdirSync(nodePath.join(services, "a"), { recursive: true })
  fs.writeFileSync(nodePath.join(services, "a/old.md"), "old\n")
  return { root, services }
}

/** A download that answers with `bytes` in one piece, its transient failures as the API's errors. */
const downloadOf =
  (bytes: Uint8Array): Download =>
  (_missing, consume) =>
    consume(Stream.make(bytes)).pipe(
      Effect.catchIf(
        (e) => e instanceof Transient,
        (t) => Effect.fail(new ApiError({ status: 0, reason: t.reason }))
      )
    )

type Item =
  | { readonly kind: "file"; readonly path: string; readonly bytes: Buffer; readonly executable: boolean }
  | { readonly kind: "link"; readonly path: string; readonly target: string }
  | { readonly kind: "dir"; readonly path: string }

/** What a reader saw of an entry: enough to compare with what was written. */
interface Seen {
  readonly type: string
  readonly path: string
  readonly executable: boolean
  readonly content: string
}

const expected = (items: ReadonlyArray<Item>): Array<Seen> =>
  items.map((i) =>
    i.kind === "file"
      ? { type: "File", path: i.path, executable: i.executable, content: i.bytes.toString("base64") }
      : i.kind === "link"
        ? { type: "SymbolicLink", path: i.path, executable: false, content: i.target }
        : { type: "Directory", path: i.path, executable: false, content: "" }
  )

/** Reads `pieces` one after the other; returns the entries and whether the end blocks were read. */
const read = (pieces: ReadonlyArray<Buffer>) => {
  const seen: Array<Seen> = []
  const reader = tarReader((h: TarHeader) => {
    // A folder's path may end in a slash, as tar writes it.
    const path = h.type === "Directory" ? h.path.replace(/\/$/, "") : h.path
    if (h.type === "SymbolicLink") {
      seen.push({ type: h.type, path, executable: false, content: h.linkpath })
      return undefined
    }
    if (h.type === "Directory") {
      seen.push({ type: h.type, path, executable: false, content: "" })
      return undefined
    }
    const chunks: Array<Buffer> = []
    return {
      write: (c) => void chunks.push(Buffer.from(c)),
      end: () =>
        void seen.push({
          type: h.type,
          path,
          executable: (h.mode & 0o100) !== 0,
          content: Buffer.concat(chunks).toString("base64")
        })
    }
  })
  for (const p of pieces) reader.write(p)
  return { seen, ended: reader.ended() }
}

/** Our own writer's records (the push side's), a folder through `tar`'s Header as no writer of ours makes one. */
const ours = (items: ReadonlyArray<Item>): Buffer =>
  Buffer.concat([
    ...items.map((i) => {
      if (i.kind === "file") return fileRecord(i.path, i.bytes, i.executable)
      if (i.kind === "link") return linkHeader(i.path, i.target)
      const block = Buffer.alloc(512)
      const fields = { path: `${i.path}/`, type: "Directory" as const, mode: 0o755, size: 0, mtime: new Date(0) }
      const needPax = new tar.Header(fields).encode(block)
      return needPax ? Buffer.concat([new tar.Pax(fields).encode(), block]) : block
    }),
    END_OF_ARCHIVE
  ])

/** The items on disk under a fresh folder, for the other writers. */
const onDisk = (items: ReadonlyArray<Item>) => {
  const root = tempDir("tree")
  for (const i of items) {
    const full = nodePath.join(root, i.path)
    fs.mkdirSync(i.kind === "dir" ? full : nodePath.dirname(full), { recursive: true })
    if (i.kind === "file") {
      fs.writeFileSync(full, i.bytes)
      fs.chmodSync(full, i.executable ? 0o755 : 0o644)
    } else if (i.kind === "link") fs.symlinkSync(i.target, full)
  }
  return root
}

/** The `tar` package's archive of the items, read from disk. */
const byTarPackage = (items: ReadonlyArray<Item>): Buffer => {
  const root = onDisk(items)
  const file = nodePath.join(tempDir("out"), "a.tar")
  tar.create(
    { sync: true, file, cwd: root, portable: true, noDirRecurse: true },
    items.map((i) => i.path)
  )
  return fs.readFileSync(file)
}

const hasGnuTar = spawnSync("tar", ["--version"], { encoding: "utf8" }).stdout?.includes("GNU tar") === true

/** GNU tar's archive of the items, in its own format (long names as `L`/`K` records) or pax. */
const byGnuTar = (items: ReadonlyArray<Item>, format: "gnu" | "pax"): Buffer => {
  const root = onDisk(items)
  return execFileSync(
    "tar",
    [`--format=${format}`, "--no-recursion", "-C", root, "-cf", "-", ...items.map((i) => i.path)],
    {
      maxBuffer: 1 << 28
    }
  )
}

// Paths of short and long segments, ASCII and not: some fit ustar, some need its prefix, some a pax or GNU record.
const segment = FastCheck.oneof(
  FastCheck.stringMatching(/^[a-z0-9._-]{1,12}$/),
  FastCheck.stringMatching(/^[a-z0-9]{60,120}$/),
  FastCheck.constantFrom("é", "日本", "😀", "a b")
).filter((s) => s !== "." && s !== "..")
const pathArb = FastCheck.array(segment, { minLength: 1, maxLength: 4 }).map((s) => s.join("/"))
const bytesArb = FastCheck.oneof(
  FastCheck.uint8Array({ maxLength: 3000 }),
  FastCheck.constantFrom(0, 511, 512, 513, 1024).map((n) => new Uint8Array(n).fill(n % 251))
)
const itemArb = (prefix: string): FastCheck.Arbitrary<Item> =>
  FastCheck.oneof(
    {
      weight: 5,
      arbitrary: FastCheck.record({ path: pathArb, bytes: bytesArb, executable: FastCheck.boolean() }).map((f) => ({
        kind: "file" as const,
        path: `${prefix}/${f.path}`,
        bytes: Buffer.from(f.bytes),
        executable: f.executable
      }))
    },
    {
      weight: 1,
      arbitrary: FastCheck.record({ path: pathArb, target: pathArb }).map((l) => ({
        kind: "link" as const,
        path: `${prefix}/${l.path}`,
        target: l.target
      }))
    },
    { weight: 1, arbitrary: pathArb.map((p) => ({ kind: "dir" as const, path: `${prefix}/${p}` })) }
  )
/** Items whose paths are distinct and never one below another (so each can be made on disk). */
const itemsArb = FastCheck.array(FastCheck.nat(), { minLength: 0, maxLength: 8 }).chain((ids) =>
  FastCheck.tuple(...ids.map((_, n) => itemArb(`e${n}`)))
)
const someItemsArb = itemsArb.filter((i) => i.length > 0)
const cutsArb = FastCheck.array(FastCheck.nat(), { maxLength: 12 })

describe("tar reader", () => {
  it.prop("reads back our writer's records however the archive is cut", [itemsArb, cutsArb], ([items, cuts]) => {
    const { seen, ended } = read(cutAt(ours(items), cuts))
    expect(ended).toBe(true)
    expect(seen).toEqual(expected(items))
  })

  it.prop(
    "reads back the tar package's archives (pax headers, links, folders, modes) however they are cut",
    [someItemsArb, cutsArb],
    ([items, cuts]) => {
      const { seen, ended } = read(cutAt(byTarPackage(items), cuts))
      expect(ended).toBe(true)
      expect(seen).toEqual(expected(items))
    },
    { fastCheck: { numRuns: 25 } }
  )

  it.prop(
    "reads back GNU tar's archives, in its own format (L/K long names) and pax",
    [someItemsArb, cutsArb, FastCheck.constantFrom("gnu" as const, "pax" as const)],
    ([items, cuts, format]) => {
      if (!hasGnuTar) return
      const { seen, ended } = read(cutAt(byGnuTar(items, format), cuts))
      expect(ended).toBe(true)
      expect(seen).toEqual(expected(items))
    },
    { fastCheck: { numRuns: 25 } }
  )

  it.prop(
    "a header block changed in any one byte is refused as corrupt, or reads the same where the change means nothing",
    [someItemsArb, FastCheck.nat(511), FastCheck.integer({ min: 1, max: 255 }), cutsArb],
    ([items, at, flip, cuts]) => {
      const archive = Buffer.from(ours(items))
      archive[at] = (archive[at] ?? 0) ^ flip
      try {
        const { seen } = read(cutAt(archive, cuts))
        expect(seen).toEqual(expected(items))
      } catch (e) {
        expect(e).toBeInstanceOf(TarballUnsafe)
        expect(e instanceof TarballUnsafe && e.reason).toMatch(/^corrupt archive: /)
      }
    }
  )

  it.prop("an archive cut short is never ended", [itemsArb, FastCheck.nat()], ([items, n]) => {
    const archive = ours(items)
    const cut = n % (archive.length - 511)
    const { ended } = read([archive.subarray(0, cut)])
    expect(ended).toBe(false)
  })

  it("refuses what is not ours, naming it", () => {
    const block = (fields: ConstructorParameters<typeof tar.Header>[0], body = Buffer.alloc(0)) => {
      const b = Buffer.alloc(512)
      new tar.Header({ mode: 0o644, mtime: new Date(0), size: body.length, ...fields }).encode(b)
      return Buffer.concat([b, body, Buffer.alloc((512 - (body.length % 512)) % 512)])
    }
    const refused = (archive: Buffer) => {
      try {
        read([archive])
        return "accepted"
      } catch (e) {
        expect(e).toBeInstanceOf(TarballUnsafe)
        return e instanceof TarballUnsafe ? e.reason : String(e)
      }
    }
    const file = block({ path: "a/x", type: "File" }, Buffer.from("x"))
    expect(refused(Buffer.concat([file, Buffer.alloc(512), file, END_OF_ARCHIVE]))).toMatch(/zero block inside/)
    expect(refused(Buffer.concat([file, END_OF_ARCHIVE, Buffer.from([1])]))).toMatch(/data after the end/)
    // A record's padding of zeros after the end reads, in any pieces; a zero more is refused (a server that sends
    // zeros without end must not be read to its end).
    const padded = Buffer.concat([file, END_OF_ARCHIVE, Buffer.alloc(10240)])
    expect(refused(padded)).toBe("accepted")
    expect(read(cutAt(padded, [file.length + 1030, file.length + 5000])).ended).toBe(true)
    const tooMany = Buffer.concat([padded, Buffer.alloc(1)])
    expect(refused(tooMany)).toBe("data after the end of the archive: more than 10240 bytes of zeros")
    expect(() => read(cutAt(tooMany, [file.length + 1024, file.length + 6000]))).toThrow(/more than 10240 bytes/)
    const bad = Buffer.from(file)
    bad.write("9", 124) // an octal size that is not one
    expect(refused(bad)).toMatch(/checksum|size/)
    expect(
      refused(Buffer.concat([block({ path: "a/d/", type: "Directory", size: 1 }, Buffer.from("x")), END_OF_ARCHIVE]))
    ).toMatch(/folder with data/)
    const pax = new tar.Pax({ path: "a/x" }).encode()
    pax.write("99", 512) // the record's length no longer matches it
    expect(refused(Buffer.concat([pax, file]))).toMatch(/pax header record/)
    const global = Buffer.from(new tar.Pax({ size: 10 }, true).encode())
    expect(refused(Buffer.concat([global, file]))).toMatch(/global pax header setting a size/)
  })

  it.effect("through readArchive: a corrupt header fails the read as an unsafe archive, naming the checksum", () =>
    Effect.gen(function* () {
      const archive = Buffer.from(ours([{ kind: "file", path: "a/x", bytes: Buffer.from("hello"), executable: false }]))
      archive[10] = (archive[10] ?? 0) ^ 1
      const result = yield* Effect.either(
        readArchive(Stream.make(gzipSync(archive)), { file: () => ({ write: () => {}, end: () => {} }) })
      )
      expect(Either.isLeft(result) && result.left.reason).toMatch(/checksum/)
    })
  )

  it.effect("a pull of an archive whose second header is corrupt changes nothing and leaves no staging folder", () =>
    Effect.gen(function* () {
      const { root, services } = projectWithOld()
      const one = Buffer.from("one\n")
      const two = Buffer.from("two\n")
      const archive = Buffer.from(
        ours([
          { kind: "file", path: "a/one.md", bytes: one, executable: false },
          { kind: "file", path: "a/two.md", bytes: two, executable: false }
        ])
      )
      archive[1024 + 20] = (archive[1024 + 20] ?? 0) ^ 0x40
      const download = downloadOf(gzipSync(archive))
      const result = yield* Effect.either(
        apply({
          projectRoot: root,
          servicesPath: services,
          download,
          write: [
            new FileEntry({ path: "a/one.md", size: one.length, sha256: sha(one) }),
            new FileEntry({ path: "a/two.md", size: two.length, sha256: sha(two) })
          ],
          delete: ["a/old.md"]
        })
      )
      expect(Either.isLeft(result) && result.left._tag).toBe("TarballUnsafe")
      expect(treeFiles(services)).toEqual({ "a/old.md": "old\n" })
      expect(fs.readdirSync(nodePath.join(root, ".agentsync")).filter((n) => n.startsWith("staging-"))).toEqual([])
    })
  )

  // A pull reads stored members without their CRC (every kept byte is checked by its file's SHA-256): a changed
  // byte of a file is refused by that hash, and the tree is left as it was.
  it.effect("a pull of a stored archive with a changed byte in a file is refused by the file's hash", () =>
    Effect.gen(function* () {
      const { root, services } = projectWithOld()
      const one = Buffer.alloc(3000, "one\n")
      const archive = Buffer.from(ours([{ kind: "file", path: "a/one.md", bytes: one, executable: false }]))
      const member = Buffer.from(storedMember(archive) ?? Buffer.alloc(0))
      // Inside the file's bytes: past the gzip header (10), the block header (5) and the tar header (512).
      member[10 + 5 + 512 + 100] = (member[10 + 5 + 512 + 100] ?? 0) ^ 1
      const download = downloadOf(member)
      const result = yield* Effect.either(
        apply({
          projectRoot: root,
          servicesPath: services,
          download,
          write: [new FileEntry({ path: "a/one.md", size: one.length, sha256: sha(one) })],
          delete: ["a/old.md"]
        })
      )
      expect(Either.isLeft(result) && result.left._tag).toBe("TarballUnsafe")
      expect(Either.isLeft(result) && "reason" in result.left && result.left.reason).toMatch(/manifest hash/)
      expect(treeFiles(services)).toEqual({ "a/old.md": "old\n" })
      expect(fs.readdirSync(nodePath.join(root, ".agentsync")).filter((n) => n.startsWith("staging-"))).toEqual([])
    })
  )
})
