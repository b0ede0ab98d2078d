// An upload's files read into batch buffers used again: a file whose bytes arrive across a batch's end, while the
// batch before is still being stored, is stored with its own bytes.
import { createHash, randomBytes } from "node:crypto"
import * as SqlClient from "@effect/sql/SqlClient"
import { PgClient } from "@effect/sql-pg"
import { expect, layer } from "@effect/vitest"
import { Chunk, Effect, Layer, Redacted, Stream } from "effect"
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
    const pieces: Array<Uint8Array> = []
    for (let at = 0; at < whole.length; at += piece) pieces.push(whole.subarray(at, at + piece))
    return Stream.fromIterable(pieces)
  })

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
})
