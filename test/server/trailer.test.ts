// An upload in the trailer form (the manifest after the files): taken when the trailer names exactly what arrived,
// refused otherwise (each way a trailer can disagree, be missing or come too late), leaving no revision, no blob
// and no upload row, pending blobs stored before the refusal included.
import { createHash, randomBytes } from "node:crypto"
import * as SqlClient from "@effect/sql/SqlClient"
import { PgClient } from "@effect/sql-pg"
import { expect, layer } from "@effect/vitest"
import { Chunk, Deferred, Effect, Either, Fiber, Layer, Redacted, Stream } from "effect"
import { UPLOAD_HEADER_ENTRY, UPLOAD_LEAD_ENTRY, UploadHeader } from "../../src/api/files.js"
import { CAPS, type Caps } from "../../src/domain/caps.js"
import { manifestChecksum } from "../../src/domain/hash.js"
import { type FileEntry, fileEntry, linkEntry } from "../../src/domain/model.js"
import type { TarballUnsafe } from "../../src/errors.js"
import { blobWriter } from "../../src/server/files/blobWrite.js"
import { revisionQueries } from "../../src/server/files/revisions.js"
import { makeUpload } from "../../src/server/files/upload.js"
import * as Migrations from "../../src/server/migrations.js"
import { fileRecord, gzip, linkHeader, tarOf } from "../../src/stages/files/archive.js"
import { scopedDatabase } from "../support/pg.js"

const sha = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex")

const Db = Layer.unwrapScoped(
  Effect.map(scopedDatabase("trailer"), (url) =>
    Migrations.layer.pipe(Layer.provideMerge(PgClient.layer({ url: Redacted.make(url), maxConnections: 3 })))
  )
)

type File = { readonly path: string; readonly data: Buffer; readonly executable?: boolean; readonly link?: string }

/** More files than a batch of pending blobs (500 rows): some are stored, pending, before any trailer is read. */
const files = (tag: string, n = 620): Array<File> =>
  Array.from({ length: n }, (_, i) => ({
    path: `content/${tag}/${String(i).padStart(4, "0")}.bin`,
    data: randomBytes(300 + i)
  }))

const entryOf = (f: File): FileEntry =>
  f.link !== undefined
    ? linkEntry(f.path, Buffer.byteLength(f.link), sha(f.link))
    : fileEntry(f.path, f.data.length, sha(f.data), f.executable === true)

const recordOf = (f: File): Uint8Array =>
  f.link !== undefined ? linkHeader(f.path, f.link) : fileRecord(f.path, f.data, f.executable === true)

const LEAD = fileRecord(UPLOAD_LEAD_ENTRY, Buffer.from(JSON.stringify({ manifest: "trailer" })))

/** The trailer naming `set` over `base`, its checksum that of `tree` (default: `set`, an upload over an empty tree). */
const trailer = (set: ReadonlyArray<FileEntry>, base: string | null = null, tree: ReadonlyArray<FileEntry> = set) =>
  fileRecord(
    UPLOAD_HEADER_ENTRY,
    Buffer.from(
      JSON.stringify(new UploadHeader({ base, author: "test", set, delete: [], checksum: manifestChecksum([...tree]) }))
    )
  )

const archive = (records: ReadonlyArray<Uint8Array>) => gzip(tarOf(Stream.fromIterable(records)))

/** The archive in stored members (level 0, what a push on loopback sends), as one buffer. */
const storedArchive = (records: ReadonlyArray<Uint8Array>) =>
  Stream.runCollect(gzip(tarOf(Stream.fromIterable(records)), 0)).pipe(
    Effect.map((c) => Buffer.concat(Chunk.toReadonlyArray(c)))
  )

/** `bytes` as a body arriving in pieces of `n` bytes. */
const inPieces = (bytes: Buffer, n: number) =>
  Stream.fromIterable(Array.from({ length: Math.ceil(bytes.length / n) }, (_, i) => bytes.subarray(i * n, (i + 1) * n)))

/** A well-formed trailer-form upload of `sent`, its trailer naming `named` (default: what was sent). */
const trailerForm = (sent: ReadonlyArray<File>, named: ReadonlyArray<FileEntry> = sent.map(entryOf)) =>
  archive([LEAD, ...sent.map(recordOf), trailer(named)])

const caller = (tenantId: string) => ({ tenantId, tokenId: "k", label: "test" })

/** What the tenant holds: revisions, blobs (and those pending) and upload rows. */
const holds = (tenantId: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql<{ revisions: number; blobs: number; pending: number; uploads: number }>`SELECT
        (SELECT count(*)::int FROM revisions WHERE tenant_id = ${tenantId}) AS revisions,
        (SELECT count(*)::int FROM blobs WHERE tenant_id = ${tenantId}) AS blobs,
        (SELECT count(*)::int FROM blobs WHERE tenant_id = ${tenantId}
           AND written_by IN (SELECT id FROM uploads)) AS pending,
        (SELECT count(*)::int FROM uploads WHERE tenant_id = ${tenantId}) AS uploads`
  ).pipe(Effect.map((rows) => rows[0]))

let tenants = 0
const tenant = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const id = `tt${++tenants}`
  yield* sql`INSERT INTO tenants (id, name) VALUES (${id}, ${id})`
  return id
})

const uploader = (caps?: Caps) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const upload = makeUpload(sql, revisionQueries(sql), yield* blobWriter(sql))
    return (tenantId: string, body: Stream.Stream<Uint8Array, TarballUnsafe>, uploads?: ReadonlyArray<"trailer">) =>
      Effect.either(
        upload(caller(tenantId), body, {
          idempotencyKey: undefined,
          ...(caps === undefined ? {} : { caps }),
          ...(uploads === undefined ? {} : { uploads })
        })
      )
  })

/** The refusal of `body` over a fresh tenant, which then holds nothing: its tag, reason and entry. */
const refused = (body: Stream.Stream<Uint8Array, TarballUnsafe>, caps?: Caps) =>
  Effect.gen(function* () {
    const t = yield* tenant
    const upload = yield* uploader(caps)
    const result = yield* upload(t, body)
    if (Either.isRight(result)) return expect.fail(`taken: ${JSON.stringify(result.right)}`)
    expect(yield* holds(t)).toEqual({ revisions: 0, blobs: 0, pending: 0, uploads: 0 })
    const e = result.left as { _tag: string; reason: string; entry?: string }
    return { tag: e._tag, reason: e.reason, entry: e.entry }
  })

layer(Db, { excludeTestServices: true })("an upload in the trailer form", (it) => {
  it.effect(
    "is taken when its trailer names every file sent, executable bits and links included; the tree is what was sent",
    () =>
      Effect.gen(function* () {
        const t = yield* tenant
        const upload = yield* uploader()
        const sent: Array<File> = [
          ...files("ok"),
          { path: "content/run.sh", data: Buffer.from("#!/bin/sh\n"), executable: true },
          { path: "content/same.bin", data: Buffer.from("twice") },
          { path: "content/same2.bin", data: Buffer.from("twice") },
          { path: "content/to-run", data: Buffer.alloc(0), link: "run.sh" }
        ].sort((a, b) => (a.path < b.path ? -1 : 1))
        const result = yield* upload(t, trailerForm(sent))
        expect(Either.isRight(result) && result.right).toMatchObject({ created: true, files: sent.length })
        // Same content under two paths is stored once (a link's target is stored as its content).
        expect(yield* holds(t)).toEqual({ revisions: 1, blobs: sent.length - 1, pending: 0, uploads: 0 })
        const sql = yield* SqlClient.SqlClient
        const revision = Either.isRight(result) ? result.right.revision : ""
        // Each blob holds its own bytes: the arenas the files were read into grew under them (from 64 KiB).
        const wrong = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM blobs
          WHERE tenant_id = ${t} AND encode(sha256(data), 'hex') <> sha256`
        expect(wrong).toEqual([{ n: 0 }])
        const tree = yield* revisionQueries(sql).tree(t, revision)
        expect(tree.entries.length).toBe(sent.length)
        expect(new Set(tree.entries.map((e) => e[2]))).toEqual(new Set(sent.map((f) => entryOf(f).sha256)))

        // Over that head, a trailer may name content the tenant holds without sending it.
        const more = { path: "content/again.bin", data: sent[0]!.data }
        const next = [...sent.map(entryOf), entryOf(more)].sort((a, b) => (a.path < b.path ? -1 : 1))
        const again = yield* upload(t, archive([LEAD, trailer([entryOf(more)], revision, next)]))
        expect(Either.isRight(again) && again.right).toMatchObject({
          created: true,
          files: sent.length + 1,
          received: 0
        })
      }),
    90_000
  )

  it.effect("is refused when a file sent is not named by the trailer", () =>
    Effect.gen(function* () {
      const sent = files("unnamed")
      const named = sent.slice(0, -1).map(entryOf)
      expect(yield* refused(trailerForm(sent, named))).toEqual({
        tag: "TarballUnsafe",
        reason: `file not named by the upload trailer (${UPLOAD_HEADER_ENTRY})`,
        entry: sent[sent.length - 1]!.path
      })
    })
  )

  it.effect("is refused when the trailer (or a header) gives a file sent another hash, size, mode or kind", () =>
    Effect.gen(function* () {
      const sent = files("differ")
      const at = 510
      const f = sent[at]!
      const e = entryOf(f)
      const other = (change: Partial<FileEntry>) => sent.map((s, i) => (i === at ? { ...e, ...change } : entryOf(s)))
      const cases: ReadonlyArray<readonly [Partial<FileEntry>, string]> = [
        [{ sha256: sha("something else") }, "content does not match the sha256 of its upload trailer entry"],
        [{ size: e.size + 1 }, "size does not match its upload trailer entry"],
        [{ executable: true }, "mode does not match its upload trailer entry"],
        [{ link: true, size: 6 }, "a file the upload trailer lists as a link"]
      ]
      for (const [change, reason] of cases)
        expect(yield* refused(trailerForm(sent, other(change)))).toEqual({
          tag: "TarballUnsafe",
          reason,
          entry: f.path
        })
      // The header form makes the same check, in the same words.
      for (const [change, reason] of cases)
        expect(yield* refused(archive([trailer(other(change)), ...sent.map(recordOf)]))).toEqual({
          tag: "TarballUnsafe",
          reason: reason.replace("trailer", "header"),
          entry: f.path
        })
    })
  )

  it.effect("is refused when the trailer names content neither sent nor held", () =>
    Effect.gen(function* () {
      const sent = files("missing")
      const ghost = fileEntry("content/missing/ghost.bin", 5, sha("ghost"), false)
      const named = [...sent.map(entryOf), ghost].sort((a, b) => (a.path < b.path ? -1 : 1))
      expect(yield* refused(trailerForm(sent, named))).toEqual({
        tag: "InvalidInput",
        reason: `no content received for 1 file(s), e.g. ${ghost.path}`,
        entry: undefined
      })
    })
  )

  it.effect("is refused when the trailer's checksum is not the resulting tree's", () =>
    Effect.gen(function* () {
      const sent = files("checksum")
      const wrongTree = sent.slice(1).map(entryOf)
      const body = archive([LEAD, ...sent.map(recordOf), trailer(sent.map(entryOf), null, wrongTree)])
      expect(yield* refused(body)).toMatchObject({
        tag: "InvalidInput",
        reason: "the resulting tree does not match the client's checksum"
      })
    })
  )

  it.effect("is refused without its trailer, with a malformed one, and with anything after it", () =>
    Effect.gen(function* () {
      const sent = files("missing-trailer")
      expect(yield* refused(archive([LEAD, ...sent.map(recordOf)]))).toEqual({
        tag: "TarballUnsafe",
        reason: "the upload ended without its trailer",
        entry: UPLOAD_HEADER_ENTRY
      })
      const bad = fileRecord(UPLOAD_HEADER_ENTRY, Buffer.from('{"base":null,"set":[]'))
      expect(yield* refused(archive([LEAD, ...sent.map(recordOf), bad]))).toMatchObject({
        tag: "TarballUnsafe",
        entry: UPLOAD_HEADER_ENTRY
      })
      const late = { path: "content/late.bin", data: Buffer.from("late") }
      expect(
        yield* refused(archive([LEAD, ...sent.map(recordOf), trailer(sent.map(entryOf)), recordOf(late)]))
      ).toEqual({
        tag: "TarballUnsafe",
        reason: `nothing may follow the upload trailer (${UPLOAD_HEADER_ENTRY})`,
        entry: late.path
      })
      // Cut inside the trailer: the archive ends early.
      const whole = Buffer.concat(Chunk.toReadonlyArray(yield* Stream.runCollect(trailerForm(sent))))
      expect(yield* refused(Stream.make(whole.subarray(0, whole.length - 700)))).toMatchObject({ tag: "TarballUnsafe" })
      const longLead = fileRecord(
        UPLOAD_LEAD_ENTRY,
        Buffer.from(JSON.stringify({ manifest: "trailer", pad: "x".repeat(1100) }))
      )
      expect(yield* refused(archive([longLead, ...sent.map(recordOf), trailer(sent.map(entryOf))]))).toEqual({
        tag: "TarballUnsafe",
        reason: "an upload lead over 1024 bytes",
        entry: UPLOAD_LEAD_ENTRY
      })
      const badLead = fileRecord(UPLOAD_LEAD_ENTRY, Buffer.from(JSON.stringify({ manifest: "first" })))
      expect(yield* refused(archive([badLead, ...sent.map(recordOf), trailer(sent.map(entryOf))]))).toMatchObject({
        tag: "TarballUnsafe",
        entry: UPLOAD_LEAD_ENTRY
      })
    })
  )

  it.effect(
    "is refused with a folder after its trailer or before its lead, and with a path the trailer names twice",
    () =>
      Effect.gen(function* () {
        const sent = files("folders", 3)
        // A name ending in a slash: a folder to every tar reader (ours included).
        const folder = fileRecord("content/folder/", Buffer.alloc(0))
        expect(yield* refused(archive([LEAD, ...sent.map(recordOf), trailer(sent.map(entryOf)), folder]))).toEqual({
          tag: "TarballUnsafe",
          reason: `nothing may follow the upload trailer (${UPLOAD_HEADER_ENTRY})`,
          entry: "content/folder"
        })
        expect(yield* refused(archive([folder, LEAD, ...sent.map(recordOf), trailer(sent.map(entryOf))]))).toEqual({
          tag: "TarballUnsafe",
          reason: `an upload starts with ${UPLOAD_HEADER_ENTRY} or ${UPLOAD_LEAD_ENTRY}`,
          entry: "content/folder"
        })
        const twice = [...sent.map(entryOf), entryOf(sent[1]!)].sort((a, b) => (a.path < b.path ? -1 : 1))
        expect(yield* refused(trailerForm(sent, twice))).toEqual({
          tag: "TarballUnsafe",
          reason: `named twice in the upload trailer (${UPLOAD_HEADER_ENTRY})`,
          entry: sent[1]!.path
        })
      })
  )

  it.effect("is refused with a lead or a trailer sent as a symbolic link, saying so", () =>
    Effect.gen(function* () {
      const sent = files("linked", 3)
      const linkedLead = linkHeader(UPLOAD_LEAD_ENTRY, "content/linked/0000.bin")
      expect(yield* refused(archive([linkedLead, ...sent.map(recordOf), trailer(sent.map(entryOf))]))).toEqual({
        tag: "TarballUnsafe",
        reason: "the upload lead sent as a symbolic link; it must be a file",
        entry: UPLOAD_LEAD_ENTRY
      })
      const linkedTrailer = linkHeader(UPLOAD_HEADER_ENTRY, "content/linked/0000.bin")
      expect(yield* refused(archive([LEAD, ...sent.map(recordOf), linkedTrailer]))).toEqual({
        tag: "TarballUnsafe",
        reason: "the upload trailer sent as a symbolic link; it must be a file",
        entry: UPLOAD_HEADER_ENTRY
      })
    })
  )

  it.effect(
    "is refused on each record over the caps or outside the membership as it arrives, before any trailer",
    () =>
      Effect.gen(function* () {
        const sent = files("caps", 40)
        // No trailer at all: the refusal must come from the record itself.
        const noTrailer = (extra: File) => archive([LEAD, ...sent.map(recordOf), recordOf(extra)])
        const big = { path: "content/caps/zz-big.bin", data: randomBytes(5000) }
        expect(yield* refused(noTrailer(big), { ...CAPS, maxFileBytes: 4096 })).toEqual({
          tag: "TarballUnsafe",
          reason: "file larger than 4096 bytes",
          entry: big.path
        })
        const total = sent.reduce((n, f) => n + f.data.length, 0)
        expect(yield* refused(noTrailer(big), { ...CAPS, maxTotalBytes: total + 100 })).toEqual({
          tag: "TarballUnsafe",
          reason: `archive larger than ${total + 100} bytes`,
          entry: big.path
        })
        expect(yield* refused(noTrailer(big), { ...CAPS, maxEntries: 30 })).toMatchObject({
          tag: "TarballUnsafe",
          reason: "more than 30 entries"
        })
        const outside = { path: ".git/config", data: Buffer.from("[core]\n") }
        expect(yield* refused(noTrailer(outside))).toMatchObject({ tag: "TarballUnsafe", entry: outside.path })
        // The trailer's own cap: refused on its record's header, before its bytes are read.
        const named = sent.map(entryOf)
        const size = trailer(named).length
        expect(yield* refused(trailerForm(sent), { ...CAPS, maxManifestBytes: size - 1024 })).toMatchObject({
          tag: "TarballUnsafe",
          entry: UPLOAD_HEADER_ENTRY
        })
      }),
    60_000
  )

  it.effect("in either form, is refused when it names content sent or held with another size than that content's", () =>
    Effect.gen(function* () {
      const a = { path: "content/a.bin", data: Buffer.from("hello") }
      // The hash of a.bin's bytes, another size: a revision naming it could never be served.
      const b = fileEntry("content/b.bin", 999, sha("hello"), false)
      const named = [entryOf(a), b]
      const reason = `${b.path} names content of another size than its entry gives`
      const headerForm = (set: ReadonlyArray<FileEntry>, sent: ReadonlyArray<File>, base: string | null = null) =>
        archive([trailer(set, base, base === null ? set : [entryOf(a), ...set]), ...sent.map(recordOf)])
      const wrong = { tag: "InvalidInput", reason, entry: undefined }
      // Received under another path in the same upload.
      expect(yield* refused(trailerForm([a], named))).toEqual(wrong)
      expect(yield* refused(headerForm(named, [a]))).toEqual(wrong)
      // Held by the tenant from an earlier revision, named over it without being sent.
      for (const form of ["trailer", "header"] as const) {
        const t = yield* tenant
        const upload = yield* uploader()
        const first = yield* upload(t, trailerForm([a]))
        const base = Either.isRight(first) ? first.right.revision : expect.fail("the first upload was refused")
        const over =
          form === "trailer" ? archive([LEAD, trailer([b], base, [entryOf(a), b])]) : headerForm([b], [], base)
        const result = yield* upload(t, over)
        expect(Either.isLeft(result) && result.left).toMatchObject({ _tag: "InvalidInput", field: "set", reason })
        expect(yield* holds(t)).toEqual({ revisions: 1, blobs: 1, pending: 0, uploads: 0 })
      }
    })
  )

  it.effect("is taken when it names a second path of content sent under another, without its record", () =>
    Effect.gen(function* () {
      const t = yield* tenant
      const upload = yield* uploader()
      const sent = files("copies", 3)
      // What a client sends once: the same bytes at a second path, executable there, named by the trailer only.
      const copy: File = { path: "content/copies/zz-copy.bin", data: sent[1]!.data, executable: true }
      const named = [...sent, copy].map(entryOf)
      const result = yield* upload(t, trailerForm(sent, named))
      expect(Either.isRight(result) && result.right).toMatchObject({ created: true, files: 4, received: 3 })
      const sql = yield* SqlClient.SqlClient
      const revision = Either.isRight(result) ? result.right.revision : ""
      const tree = yield* revisionQueries(sql).tree(t, revision)
      expect(tree.entries.map((e) => e[0])).toEqual(named.map((e) => e.path))
      expect(yield* holds(t)).toEqual({ revisions: 1, blobs: 3, pending: 0, uploads: 0 })
    })
  )

  it.effect(
    "over stored members, stores each file's own bytes however the body is cut (one piece or several a file)",
    () =>
      Effect.gen(function* () {
        const sent = Array.from({ length: 700 }, (_, i) => ({
          path: `content/cut/${String(i).padStart(4, "0")}.bin`,
          data: randomBytes(300 + ((i * 7919) % 40_000))
        }))
        const bytes = yield* storedArchive([LEAD, ...sent.map(recordOf), trailer(sent.map(entryOf))])
        // Pieces smaller than most files (each gathered from several) and larger (most whole in one, kept as it is).
        for (const piece of [5_000, 70_000]) {
          const t = yield* tenant
          const upload = yield* uploader()
          const result = yield* upload(t, inPieces(bytes, piece))
          expect(Either.isRight(result) && result.right).toMatchObject({ created: true, files: sent.length })
          const sql = yield* SqlClient.SqlClient
          const wrong = yield* sql<{ n: number; all: number }>`SELECT
              count(*) FILTER (WHERE encode(sha256(data), 'hex') <> sha256)::int AS n, count(*)::int AS "all"
            FROM blobs WHERE tenant_id = ${t}`
          expect(wrong).toEqual([{ n: 0, all: sent.length }])
        }
      }),
    90_000
  )

  it.effect(
    "over stored members, is refused by the file's hash where a byte of it changed, whatever the CRC says",
    () =>
      Effect.gen(function* () {
        const marked = { path: "content/crc/marked.bin", data: Buffer.from(`${"x".repeat(50)}MARKER${"y".repeat(44)}`) }
        const sent = [...files("crc", 5), marked]
        const bytes = yield* storedArchive([LEAD, ...sent.map(recordOf), trailer(sent.map(entryOf))])
        const at = bytes.indexOf("MARKER")
        // A byte of the file: its SHA-256 against the trailer's refuses it, naming the file (the member's CRC, stale
        // now, is not what refuses it: the server checks every byte it keeps by its hash).
        const changed = Buffer.from(bytes)
        changed[at] = "N".charCodeAt(0)
        expect(yield* refused(Stream.make(changed))).toEqual({
          tag: "TarballUnsafe",
          reason: "content does not match the sha256 of its upload trailer entry",
          entry: marked.path
        })
        // A byte of its record's padding (never kept): the upload is taken, the file's bytes as sent.
        const padded = Buffer.from(bytes)
        padded[at + 44 + 6 + 10] = 1
        const t = yield* tenant
        const upload = yield* uploader()
        const result = yield* upload(t, Stream.make(padded))
        expect(Either.isRight(result) && result.right).toMatchObject({ created: true, files: sent.length })
      })
  )

  it.effect(
    "stores the last batch while its trailer is received: before the trailer's end, which may still refuse",
    () =>
      Effect.gen(function* () {
        const t = yield* tenant
        const sql = yield* SqlClient.SqlClient
        const writer = yield* blobWriter(sql)
        // Each batch the writer was given (its number of blobs).
        const batches: Array<number> = []
        const spied: typeof writer = (tenantId, uploadId, blobs) => {
          batches.push(blobs.length)
          return writer(tenantId, uploadId, blobs)
        }
        const upload = makeUpload(sql, revisionQueries(sql), spied)
        const sent = files("last", 40)
        // A malformed trailer of 300 KB, arriving over several pieces of the body after its record's header.
        const bad = fileRecord(UPLOAD_HEADER_ENTRY, Buffer.from(`{"set":"${"x".repeat(300_000)}`))
        const bytes = yield* storedArchive([LEAD, ...sent.map(recordOf), bad])
        const result = yield* Effect.either(
          upload(caller(t), inPieces(bytes, 64 * 1024), { idempotencyKey: undefined })
        )
        expect(Either.isLeft(result) && result.left).toMatchObject({
          _tag: "TarballUnsafe",
          entry: UPLOAD_HEADER_ENTRY
        })
        // The 40 files (one batch, under its 500 rows) went to the writer once the trailer had begun, before its end
        // refused the upload; the refusal left nothing of them.
        expect(batches).toEqual([40])
        expect(yield* holds(t)).toEqual({ revisions: 0, blobs: 0, pending: 0, uploads: 0 })
      })
  )

  it.effect("made over an empty tenant, is a conflict where another upload made the first revision meanwhile", () =>
    Effect.gen(function* () {
      const t = yield* tenant
      const sql = yield* SqlClient.SqlClient
      const writer = yield* blobWriter(sql)
      // A's batch waits at the writer until B has committed: A's trailer (in the same piece) was decoded before.
      const entered = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const gated: typeof writer = (tenantId, uploadId, blobs) =>
        Deferred.succeed(entered, undefined).pipe(
          Effect.zipRight(Deferred.await(release)),
          Effect.zipRight(writer(tenantId, uploadId, blobs))
        )
      const a = makeUpload(sql, revisionQueries(sql), gated)
      const b = yield* uploader()
      const sentA = files("race-a", 30)
      const bytes = yield* storedArchive([LEAD, ...sentA.map(recordOf), trailer(sentA.map(entryOf))])
      const first = yield* Effect.fork(Effect.either(a(caller(t), Stream.make(bytes), { idempotencyKey: undefined })))
      yield* Deferred.await(entered)
      const sentB = files("race-b", 5)
      const second = yield* b(t, trailerForm(sentB))
      expect(Either.isRight(second) && second.right).toMatchObject({ created: true, files: 5 })
      yield* Deferred.succeed(release, undefined)
      const result = yield* Fiber.join(first)
      expect(Either.isLeft(result) && result.left).toMatchObject({ _tag: "Conflict" })
      expect(yield* holds(t)).toEqual({ revisions: 1, blobs: 5, pending: 0, uploads: 0 })
    })
  )

  it.effect("is refused by a server that does not read it, as a build before it would", () =>
    Effect.gen(function* () {
      const t = yield* tenant
      const upload = yield* uploader()
      const sent = files("old", 3)
      const result = yield* upload(t, trailerForm(sent), [])
      expect(Either.isLeft(result) && result.left).toMatchObject({
        _tag: "TarballUnsafe",
        reason: `an upload starts with ${UPLOAD_HEADER_ENTRY}`,
        entry: UPLOAD_LEAD_ENTRY
      })
      expect(yield* holds(t)).toEqual({ revisions: 0, blobs: 0, pending: 0, uploads: 0 })
    })
  )
})
