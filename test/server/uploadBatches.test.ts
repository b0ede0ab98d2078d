// An upload's batches: one stored while the next is read, the held-hash lookup skipped only where the tenant is
// expected to hold none of them, and arenas kept across uploads given back only once nothing reads them.
import { createHash, randomBytes } from "node:crypto"
import * as SqlClient from "@effect/sql/SqlClient"
import { PgClient } from "@effect/sql-pg"
import { expect, layer, vi } from "@effect/vitest"
import { Chunk, Deferred, Effect, Fiber, Layer, Option, Redacted, Schedule, Stream } from "effect"
import * as Pg from "pg"
import { UPLOAD_HEADER_ENTRY, UploadHeader } from "../../src/api/files.js"
import { manifestChecksum } from "../../src/domain/hash.js"
import { FileEntry } from "../../src/domain/model.js"
import { type BlobWriter, blobWriter, HELD } from "../../src/server/files/blobWrite.js"
import { revisionQueries } from "../../src/server/files/revisions.js"
import { makeUpload, REGISTER } from "../../src/server/files/upload.js"
import { ARENA_BYTES, arenaPool } from "../../src/server/files/uploadBatches.js"
import * as Migrations from "../../src/server/migrations.js"
import { fileRecord, gzip, tarOf } from "../../src/stages/files/archive.js"
import { scopedDatabase } from "../support/pg.js"

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex")

const Db = Layer.unwrapScoped(
  Effect.map(scopedDatabase("uploadbatches"), (url) =>
    Migrations.layer.pipe(Layer.provideMerge(PgClient.layer({ url: Redacted.make(url), maxConnections: 4 })))
  )
)

type Files = ReadonlyArray<readonly [string, Buffer]>

/** An upload archive of `files` over an empty tenant (the header form), cut into pieces of `piece` bytes. */
const archive = (files: Files, piece: number) =>
  Effect.gen(function* () {
    const set = files.map(([path, data]) => new FileEntry({ path, size: data.length, sha256: sha(data) }))
    const header = new UploadHeader({ base: null, author: "test", set, delete: [], checksum: manifestChecksum(set) })
    const records: ReadonlyArray<Uint8Array> = [
      fileRecord(UPLOAD_HEADER_ENTRY, Buffer.from(JSON.stringify(header))),
      ...files.map(([p, data]) => fileRecord(p, data))
    ]
    const whole = Buffer.concat(Chunk.toArray(yield* Stream.runCollect(gzip(tarOf(Stream.fromIterable(records))))))
    const cut: Array<Uint8Array> = []
    for (let at = 0; at < whole.length; at += piece) cut.push(whole.subarray(at, at + piece))
    return Stream.fromIterable(cut)
  })

/** `n` files of about 1-2 KiB under `dir`: batches of 500 files, each large enough to go by COPY. */
const filesOf = (dir: string, n: number): Files =>
  Array.from({ length: n }, (_, i) => [`content/${dir}/${i}.bin`, randomBytes(1000 + ((i * 37) % 1000))] as const)

const caller = (tenantId: string) => ({ tenantId, tokenId: "k", label: "test" })

/** The tenant's blobs, and those whose bytes are not their hash. */
const blobState = (tenantId: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql<{ blobs: number; wrong: number }>`SELECT count(*)::int AS blobs,
        count(*) FILTER (WHERE encode(sha256(data), 'hex') <> sha256)::int AS wrong
      FROM blobs WHERE tenant_id = ${tenantId}`
  ).pipe(Effect.map((rows) => rows[0]))

layer(Db, { excludeTestServices: true })("an upload's batches", (it) => {
  it.effect(
    "are stored one at a time while the next is read, each file's own bytes",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql`INSERT INTO tenants (id, name) VALUES ('b1', 'one')`
        const write = yield* blobWriter(sql)
        let running = 0
        let most = 0
        let writes = 0
        // The body's pieces as the upload pulls them, one at a time.
        let pulled = 0
        let pulledAtFirstWrite = 0
        const firstWrite = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        // The first batch's write is held open until the test lets it go; every write is counted while it runs.
        const latched: BlobWriter = (tenant, upload, blobs, options) =>
          Effect.acquireUseRelease(
            Effect.sync(() => {
              running++
              most = Math.max(most, running)
              writes++
              return writes
            }),
            (n) =>
              n === 1
                ? Effect.sync(() => {
                    pulledAtFirstWrite = pulled
                  }).pipe(
                    Effect.zipRight(Deferred.succeed(firstWrite, undefined)),
                    Effect.zipRight(Deferred.await(release)),
                    Effect.zipRight(write(tenant, upload, blobs, options))
                  )
                : write(tenant, upload, blobs, options),
            () =>
              Effect.sync(() => {
                running--
              })
          )
        const upload = makeUpload(sql, revisionQueries(sql), latched)
        const files = filesOf("a", 2600)
        const pieces = Chunk.toArray(yield* Stream.runCollect(yield* archive(files, 3 * 1024)))
        const body = Stream.unfold(0, (at) => {
          const piece = pieces[at]
          if (piece === undefined) return Option.none()
          pulled++
          return Option.some([piece, at + 1] as const)
        })
        const running$ = yield* Effect.fork(upload(caller("b1"), body, { idempotencyKey: undefined }))
        yield* Deferred.await(firstWrite)
        // While the first batch's write is held, the upload reads on into the next batch (its 500 files of 1-2 KiB
        // are some 250 pieces of 3 KiB): a flush that read nothing while it stored would stop here. It stops once
        // that batch is full, the body's rest left unread until the write ends.
        yield* Effect.repeat(
          Effect.sync(() => pulled - pulledAtFirstWrite),
          { schedule: Schedule.spaced("20 millis"), until: (read) => read >= 100 }
        ).pipe(
          Effect.timeoutFail({
            duration: "20 seconds",
            onTimeout: () => new Error(`${pulled - pulledAtFirstWrite} pieces read during the write`)
          })
        )
        yield* Effect.sleep("300 millis")
        expect(pulled).toBeLessThan(pieces.length)
        // Only one write at a time: the second batch waits for the first.
        expect(writes).toBe(1)
        yield* Deferred.succeed(release, undefined)
        const result = yield* Fiber.join(running$)
        expect(result).toMatchObject({ created: true, files: files.length, received: files.length })
        expect(writes).toBeGreaterThanOrEqual(5)
        expect(most).toBe(1)
        expect(yield* blobState("b1")).toEqual({ blobs: files.length, wrong: 0 })
      }),
    90_000
  )

  it.scoped(
    "skip the lookup of held hashes only while the tenant is expected to hold none: a first upload, until a batch finds one",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql`INSERT INTO tenants (id, name) VALUES ('e1', 'empty'), ('e2', 'holds'), ('e3', 'raced')`
        const write = yield* blobWriter(sql)
        const asked: Record<string, Array<boolean>> = { e1: [], e2: [], e3: [] }
        let raced = false
        const spied: BlobWriter = (tenant, upload, blobs, options) =>
          Effect.gen(function* () {
            asked[tenant]?.push(options?.noneHeld === true)
            // Into e3, another writer stores one of the first batch's blobs after the upload began: the batch's
            // COPY finds it there and the batch is stored the staged way, that blob left alone.
            const [first] = blobs
            if (tenant === "e3" && !raced && first !== undefined) {
              raced = true
              yield* sql`INSERT INTO blobs (tenant_id, sha256, size, data)
                VALUES ('e3', ${first.sha256}, ${first.data.length}, ${Buffer.from(first.data)})`
            }
            return yield* write(tenant, upload, blobs, options)
          })
        const upload = makeUpload(sql, revisionQueries(sql), spied)
        // A blob e2 holds before its upload (permanent, of no revision): every batch asks.
        const own = randomBytes(64)
        yield* sql`INSERT INTO blobs (tenant_id, sha256, size, data) VALUES ('e2', ${sha(own)}, 64, ${own})`
        const files = filesOf("e", 1600)
        // What PostgreSQL is sent (the spy calls through): the lookups the writer made of what it was told.
        const queries = yield* Effect.acquireRelease(
          Effect.sync(() => vi.spyOn(Pg.Client.prototype, "query")),
          (spy) => Effect.sync(() => spy.mockRestore())
        )
        for (const tenant of ["e1", "e2", "e3"]) {
          const result = yield* upload(caller(tenant), yield* archive(files, 64 * 1024), { idempotencyKey: undefined })
          expect(result).toMatchObject({ created: true, files: files.length, received: files.length })
          const tree = yield* revisionQueries(sql).tree(tenant, result.revision)
          expect(tree.entries.map((e) => e[2]).sort()).toEqual(files.map(([, d]) => sha(d)).sort())
        }
        // Several batches (of at most 500 files) each.
        const batches = asked.e1?.length ?? 0
        const lookups = (tenant: string) =>
          queries.mock.calls.filter(([text, values]) => text === HELD && Array.isArray(values) && values[0] === tenant)
            .length
        // Told none is held, the writer sends no lookup; told otherwise, its COPY batches each send one (the last,
        // small batch goes by the plain insert, which skips held rows itself).
        expect(lookups("e1")).toBe(0)
        expect(lookups("e2")).toBeGreaterThanOrEqual(batches - 1)
        expect(lookups("e3")).toBeGreaterThanOrEqual(1)
        expect(batches).toBeGreaterThanOrEqual(3)
        expect(asked.e1).toEqual(Array.from({ length: batches }, () => true))
        expect(asked.e2).toEqual(Array.from({ length: batches }, () => false))
        // The first batch found a blob held; the batches after it ask.
        expect(asked.e3).toEqual([true, ...Array.from({ length: batches - 1 }, () => false)])
        expect(yield* blobState("e1")).toEqual({ blobs: files.length, wrong: 0 })
        expect(yield* blobState("e2")).toEqual({ blobs: files.length + 1, wrong: 0 })
        expect(yield* blobState("e3")).toEqual({ blobs: files.length, wrong: 0 })
        // Nothing of the three left pending.
        expect(yield* sql`SELECT id FROM uploads`).toEqual([])
      }),
    120_000
  )

  it.effect(
    "register an upload with one index probe for the tenant's blobs, however many rows other tenants stored before",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql`INSERT INTO tenants (id, name) VALUES ('r1', 'rows before'), ('r2', 'rows after')`
        // Two big tenants, the checked one's rows after the other's in the heap, and statistics that know both big:
        // a scan for "any row of r2" reads all of r1's first.
        for (const tenant of ["r1", "r2"])
          yield* sql.unsafe(
            `INSERT INTO blobs (tenant_id, sha256, size, data)
              SELECT $1, md5(i::text || $1), 200, convert_to(repeat(md5(i::text), 6), 'UTF8')
              FROM generate_series(1, 60000) AS i`,
            [tenant]
          )
        yield* sql`ANALYZE blobs`
        type Plan = { readonly [key: string]: unknown; readonly Plans?: ReadonlyArray<Plan> }
        const rows = yield* sql.unsafe<{ "QUERY PLAN": ReadonlyArray<{ Plan: Plan }> }>(
          `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${REGISTER}`,
          ["plan-upload", "r2"]
        )
        const plan = rows[0]?.["QUERY PLAN"][0]?.Plan
        expect(plan).toBeDefined()
        const nodes: Array<Plan> = []
        const walk = (node: Plan) => {
          nodes.push(node)
          for (const p of node.Plans ?? []) walk(p)
        }
        if (plan !== undefined) walk(plan)
        // A node's buffers include its children's: the whole statement touches a handful of pages (the upload's row
        // and its index, the probe's index path), where the scan read thousands.
        const buffers = Number(plan?.["Shared Hit Blocks"] ?? 0) + Number(plan?.["Shared Read Blocks"] ?? 0)
        expect(buffers).toBeLessThanOrEqual(40)
        const overBlobs = nodes.filter((n) => n["Relation Name"] === "blobs")
        expect(overBlobs.length).toBeGreaterThan(0)
        for (const n of overBlobs) {
          expect(Number(n["Actual Rows"]) * Number(n["Actual Loops"])).toBeLessThanOrEqual(1)
          expect(n["Rows Removed by Filter"] ?? 0).toBe(0)
        }
        // The answer itself: r2 holds blobs, a tenant of none holds none.
        yield* sql`INSERT INTO tenants (id, name) VALUES ('r3', 'none yet')`
        expect(yield* sql.unsafe(REGISTER, ["plan-r2", "r2"])).toEqual([{ none: false }])
        expect(yield* sql.unsafe(REGISTER, ["plan-r3", "r3"])).toEqual([{ none: true }])
        yield* sql`DELETE FROM uploads WHERE id LIKE 'plan-%'`
        yield* sql`DELETE FROM blobs WHERE tenant_id IN ('r1', 'r2')`
      }),
    120_000
  )

  it.effect(
    "interrupted while the last batch is stored, the upload stops that write too: nothing of it lands afterwards",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql`INSERT INTO tenants (id, name) VALUES ('i1', 'interrupted')`
        const write = yield* blobWriter(sql)
        const called = yield* Deferred.make<void>()
        // The write starts, then takes its time: the upload has read its whole body and waits for it.
        const slow: BlobWriter = (tenant, upload, blobs, options) =>
          Deferred.succeed(called, undefined).pipe(
            Effect.zipRight(Effect.sleep("1500 millis")),
            Effect.zipRight(write(tenant, upload, blobs, options))
          )
        const upload = makeUpload(sql, revisionQueries(sql), slow)
        const files = filesOf("i", 300)
        const body = yield* archive(files, 64 * 1024)
        const running = yield* Effect.fork(upload(caller("i1"), body, { idempotencyKey: undefined }))
        yield* Deferred.await(called)
        yield* Effect.sleep("200 millis")
        yield* Fiber.interrupt(running)
        // Past the time the write would have stored its batch.
        yield* Effect.sleep("2500 millis")
        expect(yield* blobState("i1")).toEqual({ blobs: 0, wrong: 0 })
        expect(yield* sql`SELECT id FROM uploads WHERE tenant_id = 'i1'`).toEqual([])
      }),
    60_000
  )

  it.effect(
    "keep their arenas across uploads, given back only once nothing reads them: uploads sharing them store their own bytes",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql`INSERT INTO tenants (id, name) VALUES ('p1', 'pool one'), ('p2', 'pool two'), ('p3', 'pool three')`
        const write = yield* blobWriter(sql)
        const slow: BlobWriter = (tenant, upload, blobs, options) =>
          Effect.zipRight(Effect.sleep("100 millis"), write(tenant, upload, blobs, options))
        const kept = arenaPool()
        let given = 0
        // An arena given back is written over at once: one given back while a write still reads it stores those bytes.
        const arenas = {
          ...kept,
          give: (arena: Buffer) => {
            given++
            arena.fill(0xee)
            kept.give(arena)
          }
        }
        const upload = makeUpload(sql, revisionQueries(sql), slow, arenas)
        // Pieces of 3 KiB: most files arrive in two or more and are gathered into the arenas. Files of 5-15 KiB, so
        // a batch's 500 files fill most of an arena.
        const big = (dir: string) =>
          Array.from(
            { length: 1200 },
            (_, i) => [`content/${dir}/${i}.bin`, randomBytes(5000 + ((i * 7919) % 10_000))] as const
          )
        const [a, b] = [big("a"), big("b")]
        yield* Effect.all(
          [
            upload(caller("p1"), yield* archive(a, 3 * 1024), { idempotencyKey: undefined }),
            upload(caller("p2"), yield* archive(b, 3 * 1024), { idempotencyKey: undefined })
          ],
          { concurrency: 2 }
        )
        expect(given).toBeGreaterThan(0)
        expect(kept.held()).toBeGreaterThan(0)
        // A third upload takes the arenas kept (written over) and stores its own bytes.
        const c = big("c")
        yield* upload(caller("p3"), yield* archive(c, 3 * 1024), { idempotencyKey: undefined })
        for (const [tenant, files] of [
          ["p1", a],
          ["p2", b],
          ["p3", c]
        ] as const)
          expect(yield* blobState(tenant)).toEqual({ blobs: files.length, wrong: 0 })
        const probe = kept.take()
        expect(probe?.length).toBe(ARENA_BYTES)
      }),
    120_000
  )
})
