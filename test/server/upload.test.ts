// An upload's files read into batch buffers used again: a file whose bytes arrive across a batch's end, while the
// batch before is still being stored, is stored with its own bytes.
import { createHash, randomBytes } from "node:crypto"
import * as SqlClient from "@effect/sql/SqlClient"
import { PgClient } from "@effect/sql-pg"
import { expect, layer } from "@effect/vitest"
import { Chunk, Deferred, Effect, Either, Fiber, Layer, Redacted, Schedule, Stream } from "effect"
import { UPLOAD_HEADER_ENTRY, UploadHeader } from "../../src/api/files.js"
import { manifestChecksum } from "../../src/domain/hash.js"
import { FileEntry } from "../../src/domain/model.js"
import { blobWriter } from "../../src/server/files/blobWrite.js"
import { revisionQueries } from "../../src/server/files/revisions.js"
import { makeUpload } from "../../src/server/files/upload.js"
import * as Migrations from "../../src/server/migrations.js"
import { fileRecord, gzip, tarOf } from "../../src/stages/files/archive.js"
import { scopedDatabase } from "../support/pg.js"

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex")

const Db = Layer.unwrapScoped(
  Effect.map(scopedDatabase("upload"), (url) =>
    Migrations.layer.pipe(Layer.provideMerge(PgClient.layer({ url: Redacted.make(url), maxConnections: 3 })))
  )
)

/** An upload archive of `files` over an empty tenant, cut into pieces of `piece` bytes as a slow socket gives them. */
const archive = (files: ReadonlyArray<readonly [string, Buffer]>, piece: number) =>
  Effect.map(pieces(files, piece), (all) => Stream.fromIterable(all))

/** The pieces of `archive`'s stream. */
const pieces = (files: ReadonlyArray<readonly [string, Buffer]>, piece: number) =>
  Effect.gen(function* () {
    const set = files.map(([path, data]) => new FileEntry({ path, size: data.length, sha256: sha(data) }))
    const header = new UploadHeader({ base: null, author: "test", set, delete: [], checksum: manifestChecksum(set) })
    const records = [
      fileRecord(UPLOAD_HEADER_ENTRY, Buffer.from(JSON.stringify(header))),
      ...files.map(([p, data]) => fileRecord(p, data))
    ]
    const whole = Buffer.concat(
      Chunk.toArray(yield* Stream.runCollect(gzip(tarOf(Stream.fromIterable(records as ReadonlyArray<Uint8Array>)))))
    )
    const cut: Array<Uint8Array> = []
    for (let at = 0; at < whole.length; at += piece) cut.push(whole.subarray(at, at + piece))
    return cut
  })

/**
 * The archive of `files`, all but its last `tail` pieces sent, then held until `release` (once the upload's first
 * batch is stored, as pending).
 */
const held = (files: ReadonlyArray<readonly [string, Buffer]>, release: Deferred.Deferred<void>) =>
  Effect.map(pieces(files, 16 * 1024), (all) => {
    const tail = 2
    return Stream.fromIterable(all.slice(0, -tail)).pipe(
      Stream.concat(Stream.fromEffect(Deferred.await(release)).pipe(Stream.drain)),
      Stream.concat(Stream.fromIterable(all.slice(-tail)))
    )
  })

const caller = (tenantId: string) => ({ tenantId, tokenId: "k", label: "test" })

/** The tenant's blobs by state: all, pending (their upload's row still there), and whose bytes are not their hash. */
const blobState = (tenantId: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql<{ blobs: number; pending: number; wrong: number; uploads: number }>`SELECT
        count(*)::int AS blobs,
        count(*) FILTER (WHERE written_by IN (SELECT id FROM uploads))::int AS pending,
        count(*) FILTER (WHERE encode(sha256(data), 'hex') <> sha256)::int AS wrong,
        (SELECT count(*)::int FROM uploads WHERE tenant_id = ${tenantId}) AS uploads
      FROM blobs WHERE tenant_id = ${tenantId}`
  ).pipe(Effect.map((rows) => rows[0]))

/** Until the tenant holds at least `n` blobs pending. */
const pendingAtLeast = (tenantId: string, n: number) =>
  blobState(tenantId).pipe(
    Effect.repeat({ schedule: Schedule.spaced("20 millis"), until: (s) => (s?.pending ?? 0) >= n }),
    Effect.timeoutFail({ duration: "30 seconds", onTimeout: () => new Error(`fewer than ${n} blobs pending`) })
  )

layer(Db, { excludeTestServices: true })("an upload's batches", (it) => {
  it.effect(
    "store every file's own bytes when files straddle the batches and each batch is stored slowly",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql`INSERT INTO tenants (id, name) VALUES ('t1', 'one')`
        const write = yield* blobWriter(sql)
        // Each batch is stored only after the next has been read whole: a buffer used again too early shows.
        const slow: typeof write = (tenantId, uploadId, blobs) =>
          Effect.zipRight(Effect.sleep("150 millis"), write(tenantId, uploadId, blobs))
        const upload = makeUpload(sql, revisionQueries(sql), slow)
        // Batches of 500 files; pieces of 3 KiB, so most files arrive in two or three.
        const files = Array.from({ length: 1600 }, (_, i) => [`content/f/${i}.bin`, randomBytes(5000 + i)] as const)
        const result = yield* upload({ tenantId: "t1", tokenId: "k", label: "test" }, yield* archive(files, 3 * 1024), {
          idempotencyKey: undefined
        })
        expect(result).toMatchObject({ created: true, files: files.length, received: files.length })
        const wrong = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM blobs
          WHERE tenant_id = 't1' AND encode(sha256(data), 'hex') <> sha256`
        expect(wrong).toEqual([{ n: 0 }])
        const count = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM blobs WHERE tenant_id = 't1'`
        expect(count).toEqual([{ n: files.length }])
      }),
    90_000
  )

  it.effect(
    "an upload's blobs another upload found pending survive the first one's refusal once the other committed them",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql`INSERT INTO tenants (id, name) VALUES ('t2', 'two')`
        const upload = makeUpload(sql, revisionQueries(sql), yield* blobWriter(sql))
        // More than a batch (500 files), so that the first upload has stored one, pending, when it is held.
        const files = Array.from({ length: 640 }, (_, i) => [`content/s/${i}.bin`, randomBytes(900 + i)] as const)
        const release = yield* Deferred.make<void>()
        const first = yield* Effect.fork(
          Effect.either(upload(caller("t2"), yield* held(files, release), { idempotencyKey: undefined }))
        )
        yield* pendingAtLeast("t2", 500)
        // The same bytes, whole, over the same empty tenant: most found pending for the first upload, left alone.
        const second = yield* upload(caller("t2"), yield* archive(files, 64 * 1024), { idempotencyKey: undefined })
        expect(second).toMatchObject({ created: true, files: files.length, received: files.length })
        expect(yield* blobState("t2")).toEqual({ blobs: files.length, pending: 0, wrong: 0, uploads: 1 })
        // The first, released, finds the head moved: refused, it removes what it wrote and nothing the second holds.
        yield* Deferred.succeed(release, undefined)
        const refused = yield* Fiber.join(first)
        expect(Either.isLeft(refused) && refused.left._tag).toBe("Conflict")
        expect(yield* blobState("t2")).toEqual({ blobs: files.length, pending: 0, wrong: 0, uploads: 0 })
        const tree = yield* revisionQueries(sql).tree("t2", second.revision)
        const shas = new Set(files.map(([, d]) => sha(d)))
        expect(new Set(tree.entries.map((e) => e[2]))).toEqual(shas)
        const stored = yield* sql<{ sha256: string }>`SELECT sha256 FROM blobs WHERE tenant_id = 't2'`
        expect(new Set(stored.map((r) => r.sha256))).toEqual(shas)
      }),
    90_000
  )

  it.effect(
    "an upload interrupted after a batch was stored leaves no blob and no row; one whose row was collected commits nothing",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql`INSERT INTO tenants (id, name) VALUES ('t3', 'three'), ('t3b', 'other')`
        const upload = makeUpload(sql, revisionQueries(sql), yield* blobWriter(sql))
        const files = Array.from({ length: 620 }, (_, i) => [`content/i/${i}.bin`, randomBytes(700 + i)] as const)
        const never = yield* Deferred.make<void>()
        const cut = yield* Effect.fork(upload(caller("t3"), yield* held(files, never), { idempotencyKey: undefined }))
        yield* pendingAtLeast("t3", 500)
        yield* Fiber.interrupt(cut)
        expect(yield* blobState("t3")).toEqual({ blobs: 0, pending: 0, wrong: 0, uploads: 0 })

        // An upload that outlives every deadline: its row is collected (with the blobs stored so far) by the next
        // upload's start; its commit then refuses, and what it wrote after is removed too.
        const release = yield* Deferred.make<void>()
        const late = yield* Effect.fork(
          Effect.either(upload(caller("t3"), yield* held(files, release), { idempotencyKey: undefined }))
        )
        yield* pendingAtLeast("t3", 500)
        yield* sql`UPDATE uploads SET created_at = now() - interval '2 days' WHERE tenant_id = 't3'`
        yield* upload(caller("t3b"), yield* archive(files.slice(0, 3), 64 * 1024), { idempotencyKey: undefined })
        expect(yield* blobState("t3")).toEqual({ blobs: 0, pending: 0, wrong: 0, uploads: 0 })
        yield* Deferred.succeed(release, undefined)
        const refused = yield* Fiber.join(late)
        expect(Either.isLeft(refused) && refused.left._tag).toBe("Unavailable")
        expect(yield* blobState("t3")).toEqual({ blobs: 0, pending: 0, wrong: 0, uploads: 0 })
        const revisions = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM revisions WHERE tenant_id = 't3'`
        expect(revisions).toEqual([{ n: 0 }])
      }),
    90_000
  )
})
