// What one pending batch of an upload holds in memory: its files may be views of the input's pieces, which live on
// with them, so a batch counts those pieces, not only its files' bytes.
import { createHash, randomBytes } from "node:crypto"
import * as zlib from "node:zlib"
import * as SqlClient from "@effect/sql/SqlClient"
import { PgClient } from "@effect/sql-pg"
import { expect, layer } from "@effect/vitest"
import { Chunk, Effect, Either, Layer, Redacted, Stream } from "effect"
import { UPLOAD_HEADER_ENTRY, UPLOAD_LEAD_ENTRY, UploadHeader } from "../../src/api/files.js"
import { manifestChecksum } from "../../src/domain/hash.js"
import { fileEntry } from "../../src/domain/model.js"
import { type BlobWriter, blobWriter } from "../../src/server/files/blobWrite.js"
import { revisionQueries } from "../../src/server/files/revisions.js"
import { makeUpload } from "../../src/server/files/upload.js"
import * as Migrations from "../../src/server/migrations.js"
import { fileRecord, tarOf } from "../../src/stages/files/archive.js"
import { scopedDatabase } from "../support/pg.js"

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex")
const Db = Layer.unwrapScoped(
  Effect.map(scopedDatabase("uploadheld"), (url) =>
    Migrations.layer.pipe(Layer.provideMerge(PgClient.layer({ url: Redacted.make(url), maxConnections: 3 })))
  )
)

/** A pax extended header of about `n` bytes of `comment=` records, which a reader ignores. */
const paxComments = (n: number) => {
  const line = (value: string) => {
    const body = ` comment=${value}\n`
    // The record's length counts its own digits.
    let len = body.length + 1
    while (String(len).length + body.length !== len) len++
    return `${len}${body}`
  }
  const records: Array<string> = []
  for (let total = 0; total < n; total += 1000)
    records.push(line(`${"a".repeat(60)}${randomBytes(4).toString("hex")}`.repeat(14)))
  const data = Buffer.from(records.join(""))
  const h = Buffer.alloc(512)
  h.write("PaxHeaders/comments", 0)
  h.write("0000644\0", 100)
  h.write("0000000\0", 108)
  h.write("0000000\0", 116)
  h.write(`${data.length.toString(8).padStart(11, "0")}\0`, 124)
  h.write("00000000000\0", 136)
  h.write("        ", 148)
  h.write("x", 156)
  h.write("ustar\u000000", 257, "latin1")
  let sum = 0
  for (const b of h) sum += b
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148)
  return Buffer.concat([h, data, Buffer.alloc((512 - (data.length % 512)) % 512)])
}

layer(Db, { excludeTestServices: true })("an upload's pending batch", (it) => {
  it.effect(
    "holds about its byte budget however the input is cut: small files each alone in a large inflated piece",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql`INSERT INTO tenants (id, name) VALUES ('h1', 'held')`
        const writer = yield* blobWriter(sql)
        // The distinct buffers each batch's blobs keep alive, in bytes.
        const held: Array<number> = []
        const spied: BlobWriter = (tenant, upload, blobs) => {
          const buffers = new Set(blobs.map((b) => b.data.buffer))
          held.push([...buffers].reduce((n, b) => n + b.byteLength, 0))
          return writer(tenant, upload, blobs)
        }
        const upload = makeUpload(sql, revisionQueries(sql), spied)
        const comments = paxComments(250_000)
        const sent = Array.from({ length: 120 }, (_, i) => ({
          path: `content/h/${String(i).padStart(4, "0")}.bin`,
          data: randomBytes(16)
        }))
        const records: Array<Uint8Array> = [
          fileRecord(UPLOAD_LEAD_ENTRY, Buffer.from(JSON.stringify({ manifest: "trailer" })))
        ]
        for (const f of sent) records.push(comments, fileRecord(f.path, f.data))
        const set = sent.map((f) => fileEntry(f.path, f.data.length, sha(f.data), false))
        const header = new UploadHeader({ base: null, author: "t", set, delete: [], checksum: manifestChecksum(set) })
        records.push(fileRecord(UPLOAD_HEADER_ENTRY, Buffer.from(JSON.stringify(header))))
        const tar = Buffer.concat(Chunk.toReadonlyArray(yield* Stream.runCollect(tarOf(Stream.fromIterable(records)))))
        const body = zlib.gzipSync(tar)
        const pieces = Array.from({ length: Math.ceil(body.length / 16384) }, (_, i) =>
          body.subarray(i * 16384, (i + 1) * 16384)
        )
        const result = yield* Effect.either(
          upload({ tenantId: "h1", tokenId: "k", label: "t" }, Stream.fromIterable(pieces), {
            idempotencyKey: undefined
          })
        )
        expect(Either.isRight(result)).toBe(true)
        expect(held.length).toBeGreaterThan(1)
        // 120 files of 16 bytes, each alone in an inflated piece of 256 KiB: 30 MiB held in one batch when only the
        // files' bytes were counted.
        expect(Math.max(...held)).toBeLessThanOrEqual(10 * 1024 * 1024)
      }),
    120_000
  )
})
