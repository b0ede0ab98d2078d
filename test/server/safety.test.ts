// The tenant server under refusal and concurrency: a refused upload stores nothing, the server keeps only trees every
// client can pull, and servers started together on a fresh database migrate it once.
import { randomBytes, randomUUID } from "node:crypto"
import { request } from "node:http"
import { PgClient } from "@effect/sql-pg"
import { describe, expect, it, layer } from "@effect/vitest"
import { Chunk, Effect, Either, Exit, Redacted, Schedule, Stream } from "effect"
import { FilesRoutes, IDEMPOTENCY_HEADER, SYNC_PREFIX, UPLOAD_HEADER_ENTRY, UploadHeader } from "../../src/api/files.js"
import { manifestChecksum } from "../../src/domain/hash.js"
import { FileEntry } from "../../src/domain/model.js"
import * as Migrations from "../../src/server/migrations.js"
import { projectMigrationsRecord } from "../../src/services/migrations/index.js"
import { runProjectMigrations } from "../../src/services/ProjectDatabase.js"
import type { SyncApiOptions } from "../../src/services/SyncApi.js"
import { fileRecord, gzip, tarOf } from "../../src/stages/files/archive.js"
import { sha } from "../support/hostile.js"
import { scopedDatabase, sqlRows } from "../support/pg.js"
import { call, callEither, fastRetry, type TestServer, TestTenantServer, uploadArchive } from "./support.js"

const direct = (server: TestServer, token: Redacted.Redacted<string>): SyncApiOptions => ({
  endpoint: { mode: "direct", origin: server.url },
  token,
  retry: fastRetry
})

const stored = (dbUrl: string, tenant: string) =>
  Effect.map(
    sqlRows<{ blobs: number; pending: number; revisions: number }>(
      dbUrl,
      `SELECT (SELECT count(*)::int FROM blobs WHERE tenant_id = $1) AS blobs,
            (SELECT count(*)::int FROM blobs b WHERE tenant_id = $1
              AND (b.upload_id IS NOT NULL OR b.written_by IN (SELECT id FROM uploads))) AS pending,
            (SELECT count(*)::int FROM revisions WHERE tenant_id = $1) AS revisions`,
      [tenant]
    ),
    (rows) => rows[0]!
  )

/** Files with distinct content, `n` of them, under one folder. */
const many = (n: number, prefix = "content/many") =>
  Object.fromEntries(Array.from({ length: n }, (_, i) => [`${prefix}/${i}.md`, `file ${i} ${randomUUID()}\n`]))

/** An upload archive (whole, in memory) of files with the given bytes, over an empty tenant. */
const binaryUpload = (files: ReadonlyArray<readonly [string, Buffer]>) => {
  const set = files.map(([path, data]) => new FileEntry({ path, size: data.length, sha256: sha(data) }))
  const header = new UploadHeader({ base: null, author: "test", set, delete: [], checksum: manifestChecksum(set) })
  const records = [
    fileRecord(UPLOAD_HEADER_ENTRY, Buffer.from(JSON.stringify(header))),
    ...files.map(([p, data]) => fileRecord(p, data))
  ]
  return Effect.map(Stream.runCollect(gzip(tarOf(Stream.fromIterable(records as ReadonlyArray<Uint8Array>)))), (c) =>
    Buffer.concat(Chunk.toArray(c))
  )
}

/** Waits (polling, up to 60 s) until the tenant's stored blobs satisfy `ok`. */
const storedUntil = (
  dbUrl: string,
  tenant: string,
  ok: (s: { blobs: number; pending: number; revisions: number }) => boolean
) =>
  stored(dbUrl, tenant).pipe(
    Effect.filterOrFail(ok, () => "not yet"),
    Effect.retry({ schedule: Schedule.spaced("50 millis"), times: 1200 }),
    Effect.orDie
  )

/** Every stored blob of the tenant holds the bytes its hash names. */
const intact = (dbUrl: string, tenant: string) =>
  Effect.map(
    sqlRows<{ wrong: number }>(
      dbUrl,
      "SELECT count(*)::int AS wrong FROM blobs WHERE tenant_id = $1 AND encode(sha256(data), 'hex') <> sha256",
      [tenant]
    ),
    (rows) => rows[0]?.wrong
  )

layer(TestTenantServer.layer("srvsafe"), { excludeTestServices: true })("a refused upload stores nothing", (it) => {
  it.effect(
    "a lying checksum (400), a stale base (409) and a tree with a path both file and folder (400) leave the blob count as it was",
    () =>
      Effect.gen(function* () {
        const server = yield* TestTenantServer
        const t = yield* server.createTenant("refused")
        const base = yield* call(direct(server, t.token), (c) =>
          c.upload(uploadArchive(null, [], { "web/theme.json": "{}" }), randomUUID())
        )
        const head = yield* call(direct(server, t.token), (c) => c.manifest())
        const before = yield* stored(server.databaseUrl, t.tenantId)
        expect(before).toEqual({ blobs: 1, pending: 0, revisions: 1 })

        // 400 files whose resulting tree does not match the checksum the header claims.
        const files = many(400)
        const set = Object.entries(files).map(
          ([path, text]) => new FileEntry({ path, size: Buffer.byteLength(text), sha256: sha(text) })
        )
        const header = new UploadHeader({
          base: base.revision,
          author: "liar",
          set,
          delete: [],
          checksum: manifestChecksum([])
        })
        const records = [
          fileRecord(UPLOAD_HEADER_ENTRY, Buffer.from(JSON.stringify(header))),
          ...Object.entries(files).map(([p, text]) => fileRecord(p, Buffer.from(text)))
        ]
        const liar = yield* callEither(direct(server, t.token), (c) =>
          c.upload(() => gzip(tarOf(Stream.fromIterable(records as ReadonlyArray<Uint8Array>))), randomUUID())
        )
        expect(Either.isLeft(liar) && liar.left.message).toMatch(/checksum/)
        expect(yield* stored(server.databaseUrl, t.tenantId)).toEqual(before)

        // A stale base: the head moved since.
        const moved = yield* call(direct(server, t.token), (c) =>
          c.upload(uploadArchive(base.revision, head.entries, { "config/a.yaml": "a" }), randomUUID())
        )
        const after = yield* stored(server.databaseUrl, t.tenantId)
        const stale = yield* callEither(direct(server, t.token), (c) =>
          c.upload(uploadArchive(base.revision, head.entries, { "config/b.yaml": "b" }), randomUUID())
        )
        expect(Either.isLeft(stale) && stale.left._tag).toBe("Conflict")
        expect(yield* stored(server.databaseUrl, t.tenantId)).toEqual(after)

        // A file that became a folder without the file's deletion: no client could write that tree.
        const current = yield* call(direct(server, t.token), (c) => c.manifest())
        expect(current.revision).toBe(moved.revision)
        const both = yield* callEither(direct(server, t.token), (c) =>
          c.upload(uploadArchive(moved.revision, current.entries, { "web/theme.json/x.json": "{}" }), randomUUID())
        )
        expect(Either.isLeft(both) && both.left.message).toMatch(/web\/theme\.json would be both a file and a folder/)
        expect(yield* stored(server.databaseUrl, t.tenantId)).toEqual(after)
        // With the file deleted in the same upload, the same change goes through.
        const fixed = yield* call(direct(server, t.token), (c) =>
          c.upload(
            uploadArchive(moved.revision, current.entries, { "web/theme.json/x.json": "{}" }, ["web/theme.json"]),
            randomUUID()
          )
        )
        expect(fixed.files).toBe(2)
        expect((yield* stored(server.databaseUrl, t.tenantId)).pending).toBe(0)
      })
  )

  it.effect(
    "refuses a tree over the shared caps before reading its content: 300,000 paths that reuse one blob",
    () =>
      Effect.gen(function* () {
        const server = yield* TestTenantServer
        const t = yield* server.createTenant("overcaps")
        const one = yield* call(direct(server, t.token), (c) =>
          c.upload(uploadArchive(null, [], { "config/blob.yaml": "x" }), randomUUID())
        )
        const before = yield* stored(server.databaseUrl, t.tenantId)
        const entry = (i: number) =>
          new FileEntry({ path: `content/c/${i}.md`, size: 1, sha256: sha("x") }, { disableValidation: true })
        const set = Array.from({ length: 300_000 }, (_, i) => entry(i))
        const tree = [new FileEntry({ path: "config/blob.yaml", size: 1, sha256: sha("x") }), ...set]
        const header = new UploadHeader(
          { base: one.revision, author: "bomb", set, delete: [], checksum: manifestChecksum(tree) },
          { disableValidation: true }
        )
        const body = () =>
          gzip(tarOf(Stream.make(fileRecord(UPLOAD_HEADER_ENTRY, Buffer.from(JSON.stringify(header))) as Uint8Array)))
        const refused = yield* callEither(direct(server, t.token), (c) => c.upload(body, randomUUID()))
        expect(Either.isLeft(refused) && refused.left._tag).toBe("TarballUnsafe")
        expect(Either.isLeft(refused) && refused.left.message).toMatch(/more than 200000 files/)
        expect(yield* stored(server.databaseUrl, t.tenantId)).toEqual(before)
      }),
    60_000
  )

  it.effect("collects pending blobs older than any upload can run (a server that died mid-upload)", () =>
    Effect.gen(function* () {
      const server = yield* TestTenantServer
      const t = yield* server.createTenant("orphans")
      yield* sqlRows(
        server.databaseUrl,
        "INSERT INTO blobs (tenant_id, sha256, size, data, upload_id, created_at) VALUES ($1, 'dead', 1, 'x', 'gone', now() - interval '2 days')",
        [t.tenantId]
      )
      yield* sqlRows(
        server.databaseUrl,
        "INSERT INTO blobs (tenant_id, sha256, size, data, upload_id) VALUES ($1, 'young', 1, 'x', 'running')",
        [t.tenantId]
      )
      // The same as this server marks them: an upload's row in `uploads` while it runs, its blobs `written_by` it.
      // One stale (its server died two days ago), one running, and blobs of an upload that committed (no row).
      yield* sqlRows(
        server.databaseUrl,
        `INSERT INTO uploads (id, tenant_id, created_at) VALUES ('stale', $1, now() - interval '2 days'), ('now', $1, now())`,
        [t.tenantId]
      )
      yield* sqlRows(
        server.databaseUrl,
        `INSERT INTO blobs (tenant_id, sha256, size, data, written_by, created_at) VALUES
          ($1, 'stale1', 1, 'x', 'stale', now() - interval '2 days'), ($1, 'stale2', 1, 'x', 'stale', now()),
          ($1, 'now1', 1, 'x', 'now', now() - interval '2 days'), ($1, 'kept1', 1, 'x', 'done', now() - interval '2 days')`,
        [t.tenantId]
      )
      yield* call(direct(server, t.token), (c) =>
        c.upload(uploadArchive(null, [], { "config/a.yaml": "a" }), randomUUID())
      )
      const rows = yield* sqlRows<{ sha256: string }>(
        server.databaseUrl,
        "SELECT sha256 FROM blobs WHERE tenant_id = $1 ORDER BY sha256",
        [t.tenantId]
      )
      expect(rows.map((r) => r.sha256)).toEqual([sha("a"), "young", "now1", "kept1"].sort())
      const uploads = yield* sqlRows<{ id: string }>(
        server.databaseUrl,
        "SELECT id FROM uploads WHERE tenant_id = $1",
        [t.tenantId]
      )
      expect(uploads.map((r) => r.id)).toEqual(["now"])
    })
  )

  it.effect(
    "an upload of many batches stores every file's own bytes (a batch's buffers are used again only once it is stored)",
    () =>
      Effect.gen(function* () {
        const server = yield* TestTenantServer
        const t = yield* server.createTenant("batches")
        // Batches cut by count (500 files) and by bytes (8 MiB), files of every size up to past what is left of a
        // batch's buffer, and the same bytes twice.
        const files: Array<readonly [string, Buffer]> = Array.from(
          { length: 1400 },
          (_, i) => [`content/b/${i}.bin`, randomBytes(i % 97 === 0 ? 900 * 1024 + i : (i * 7919) % 12_000)] as const
        )
        files.push(["content/b/again.bin", files[3]![1]])
        const body = yield* binaryUpload(files)
        const result = yield* call(direct(server, t.token), (c) =>
          c.upload(() => Stream.make(body as Uint8Array), randomUUID())
        )
        expect(result).toMatchObject({ created: true, files: files.length, received: files.length })
        const distinct = new Set(files.map(([, d]) => sha(d))).size
        expect(yield* stored(server.databaseUrl, t.tenantId)).toEqual({ blobs: distinct, pending: 0, revisions: 1 })
        expect(yield* intact(server.databaseUrl, t.tenantId)).toBe(0)
      }),
    90_000
  )

  it.effect(
    "an upload whose client goes away after its first batches were stored leaves none of them, and the next one goes through",
    () =>
      Effect.gen(function* () {
        const server = yield* TestTenantServer
        const t = yield* server.createTenant("gone")
        // Bytes of every value, not compressible: more than one 8 MiB batch on the wire.
        const files = Array.from({ length: 12 }, (_, i) => [`content/bin/${i}.bin`, randomBytes(1024 * 1024)] as const)
        const body = yield* binaryUpload(files)
        const req = request(`${server.url}${SYNC_PREFIX}${FilesRoutes.upload}`, {
          method: "POST",
          headers: {
            authorization: `Bearer ${Redacted.value(t.token)}`,
            "content-type": "application/gzip",
            [IDEMPOTENCY_HEADER]: randomUUID()
          }
        })
        req.on("error", () => undefined)
        req.write(body.subarray(0, body.length - 1024 * 1024))
        // Once the server has stored a batch as pending, the client goes away without finishing the body.
        yield* storedUntil(server.databaseUrl, t.tenantId, (s) => s.pending > 0)
        req.destroy()
        expect(yield* storedUntil(server.databaseUrl, t.tenantId, (s) => s.blobs === 0)).toEqual({
          blobs: 0,
          pending: 0,
          revisions: 0
        })
        const left = yield* sqlRows<{ n: number }>(
          server.databaseUrl,
          "SELECT count(*)::int AS n FROM uploads WHERE tenant_id = $1",
          [t.tenantId]
        )
        expect(left).toEqual([{ n: 0 }])
        const again = yield* call(direct(server, t.token), (c) =>
          c.upload(() => Stream.make(body as Uint8Array), randomUUID())
        )
        expect(again).toMatchObject({ created: true, files: 12, received: 12 })
        expect(yield* stored(server.databaseUrl, t.tenantId)).toEqual({ blobs: 12, pending: 0, revisions: 1 })
        expect(yield* intact(server.databaseUrl, t.tenantId)).toBe(0)
      }),
    90_000
  )

  it.effect(
    "two uploads of the same blobs at once (a retry while the first still runs) both succeed, with one revision",
    () =>
      Effect.gen(function* () {
        const server = yield* TestTenantServer
        const t = yield* server.createTenant("twice")
        const files = Array.from({ length: 6 }, (_, i) => [`content/twice/${i}.bin`, randomBytes(700_000)] as const)
        const body = yield* binaryUpload([...files, ["content/twice/same.bin", files[0]![1]]])
        const key = randomUUID()
        const both = yield* Effect.all(
          [0, 1].map(() => call(direct(server, t.token), (c) => c.upload(() => Stream.make(body as Uint8Array), key))),
          { concurrency: "unbounded" }
        )
        expect(both[0]?.revision).toBe(both[1]?.revision)
        expect(both.map((r) => r.created).sort()).toEqual([false, true])
        expect(yield* stored(server.databaseUrl, t.tenantId)).toEqual({ blobs: 6, pending: 0, revisions: 1 })
        expect(yield* intact(server.databaseUrl, t.tenantId)).toBe(0)
        // Neither left its row: the one replayed removed its own, and what it wrote the other had made permanent.
        const uploads = yield* sqlRows<{ n: number }>(
          server.databaseUrl,
          "SELECT count(*)::int AS n FROM uploads WHERE tenant_id = $1",
          [t.tenantId]
        )
        expect(uploads).toEqual([{ n: 0 }])
      }),
    60_000
  )
})

describe("server migrations", () => {
  // `job_runs` is in both migration sets: a `jobs run` on the project database and a `serve --jobs` on the same
  // database, started together, each create it, and the two migrators must not race on it.
  it.live(
    "a server and project runs started together on one fresh database all migrate it",
    () =>
      Effect.gen(function* () {
        for (let attempt = 0; attempt < 5; attempt++) {
          const url = yield* scopedDatabase("bothrace")
          const pool = PgClient.layer({ url: Redacted.make(url), maxConnections: 2 })
          const exits = yield* Effect.all(
            Array.from({ length: 6 }, (_, i) =>
              Effect.exit(
                (i % 2 === 0 ? Migrations.migrate : runProjectMigrations()).pipe(Effect.asVoid, Effect.provide(pool))
              )
            ),
            { concurrency: "unbounded" }
          )
          for (const exit of exits) expect(Exit.isSuccess(exit) ? "ok" : String(exit.cause)).toBe("ok")
          const applied = yield* sqlRows<{ n: number }>(
            url,
            `SELECT (SELECT count(*)::int FROM ${Migrations.MIGRATIONS_TABLE}) + (SELECT count(*)::int FROM agentsync_migrations) AS n`
          )
          expect(applied).toEqual([
            { n: Object.keys(Migrations.migrations).length + Object.keys(projectMigrationsRecord).length }
          ])
        }
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "servers started together on a fresh database all migrate it, once",
    () =>
      Effect.gen(function* () {
        for (let round = 0; round < 3; round++) {
          const url = yield* scopedDatabase("migrace")
          const exits = yield* Effect.all(
            Array.from({ length: 6 }, () =>
              Effect.exit(
                Migrations.migrate.pipe(Effect.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 2 })))
              )
            ),
            { concurrency: "unbounded" }
          )
          for (const exit of exits) expect(Exit.isSuccess(exit) ? "ok" : String(exit.cause)).toBe("ok")
          const applied = yield* sqlRows<{ migration_id: number }>(
            url,
            `SELECT migration_id FROM ${Migrations.MIGRATIONS_TABLE} ORDER BY migration_id`
          )
          const all = Object.keys(Migrations.migrations).map((name) => Number.parseInt(name, 10))
          expect(all.length).toBeGreaterThanOrEqual(6)
          expect(applied.map((r) => r.migration_id)).toEqual(all)
          // Blob bytes compress with lz4 where the server has it (this one does), not pglz.
          const [lz4] = yield* sqlRows<{ has: boolean }>(
            url,
            "SELECT 'lz4' = ANY(enumvals) AS has FROM pg_settings WHERE name = 'default_toast_compression'"
          )
          const [column] = yield* sqlRows<{ c: string }>(
            url,
            "SELECT attcompression AS c FROM pg_attribute WHERE attrelid = 'blobs'::regclass AND attname = 'data'"
          )
          expect(column?.c).toBe(lz4?.has ? "l" : "")
        }
      }).pipe(Effect.scoped),
    60_000
  )
})
