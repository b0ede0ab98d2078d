// The tenant server under refusal and concurrency: a refused upload stores nothing, the server keeps only trees every
// client can pull, and servers started together on a fresh database migrate it once.
import { randomUUID } from "node:crypto"
import { PgClient } from "@effect/sql-pg"
import { Effect, Either, Exit, Redacted, Stream } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { UPLOAD_HEADER_ENTRY, UploadHeader } from "../../src/api/files.js"
import { manifestChecksum } from "../../src/domain/hash.js"
import { FileEntry } from "../../src/domain/model.js"
import * as Migrations from "../../src/server/migrations.js"
import type { SyncApiOptions } from "../../src/services/SyncApi.js"
import { fileRecord, gzip, tarOf } from "../../src/stages/files/archive.js"
import { sha } from "../support/hostile.js"
import { freshDatabase, query } from "../support/pg.js"
import { fastRetry, run, runEither, startServer, uploadArchive } from "./support.js"

let dbUrl: string
let server: Awaited<ReturnType<typeof startServer>>

beforeAll(async () => {
  dbUrl = await freshDatabase("srvsafe")
  server = await startServer(dbUrl)
})
afterAll(() => server?.stop())

const direct = (token: Redacted.Redacted<string>): SyncApiOptions => ({
  endpoint: { mode: "direct", origin: server.url },
  token,
  retry: fastRetry
})

const stored = async (tenant: string) => {
  const [row] = await query<{ blobs: number; pending: number; revisions: number }>(
    dbUrl,
    `SELECT (SELECT count(*)::int FROM blobs WHERE tenant_id = $1) AS blobs,
            (SELECT count(*)::int FROM blobs b WHERE tenant_id = $1 AND to_jsonb(b) ->> 'upload_id' IS NOT NULL) AS pending,
            (SELECT count(*)::int FROM revisions WHERE tenant_id = $1) AS revisions`,
    [tenant]
  )
  return row!
}

/** Files with distinct content, `n` of them, under one folder. */
const many = (n: number, prefix = "content/many") =>
  Object.fromEntries(Array.from({ length: n }, (_, i) => [`${prefix}/${i}.md`, `file ${i} ${randomUUID()}\n`]))

describe("a refused upload stores nothing", () => {
  it("a lying checksum (400), a stale base (409) and a tree with a path both file and folder (400) leave the blob count as it was", async () => {
    const t = await server.createTenant("refused")
    const base = await run(direct(t.token), (c) =>
      c.upload(uploadArchive(null, [], { "web/theme.json": "{}" }), randomUUID())
    )
    const head = await run(direct(t.token), (c) => c.manifest())
    const before = await stored(t.tenantId)
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
    const liar = await runEither(direct(t.token), (c) =>
      c.upload(() => gzip(tarOf(Stream.fromIterable(records as ReadonlyArray<Uint8Array>))), randomUUID())
    )
    expect(Either.isLeft(liar) && liar.left.message).toMatch(/checksum/)
    expect(await stored(t.tenantId)).toEqual(before)

    // A stale base: the head moved since.
    const moved = await run(direct(t.token), (c) =>
      c.upload(uploadArchive(base.revision, head.entries, { "config/a.yaml": "a" }), randomUUID())
    )
    const after = await stored(t.tenantId)
    const stale = await runEither(direct(t.token), (c) =>
      c.upload(uploadArchive(base.revision, head.entries, { "config/b.yaml": "b" }), randomUUID())
    )
    expect(Either.isLeft(stale) && stale.left._tag).toBe("Conflict")
    expect(await stored(t.tenantId)).toEqual(after)

    // A file that became a folder without the file's deletion: no client could write that tree.
    const current = await run(direct(t.token), (c) => c.manifest())
    expect(current.revision).toBe(moved.revision)
    const both = await runEither(direct(t.token), (c) =>
      c.upload(uploadArchive(moved.revision, current.entries, { "web/theme.json/x.json": "{}" }), randomUUID())
    )
    expect(Either.isLeft(both) && both.left.message).toMatch(/web\/theme\.json would be both a file and a folder/)
    expect(await stored(t.tenantId)).toEqual(after)
    // With the file deleted in the same upload, the same change goes through.
    const fixed = await run(direct(t.token), (c) =>
      c.upload(
        uploadArchive(moved.revision, current.entries, { "web/theme.json/x.json": "{}" }, ["web/theme.json"]),
        randomUUID()
      )
    )
    expect(fixed.files).toBe(2)
    expect((await stored(t.tenantId)).pending).toBe(0)
  })

  it("refuses a tree over the shared caps before reading its content: 300,000 paths that reuse one blob", async () => {
    const t = await server.createTenant("overcaps")
    const one = await run(direct(t.token), (c) =>
      c.upload(uploadArchive(null, [], { "config/blob.yaml": "x" }), randomUUID())
    )
    const before = await stored(t.tenantId)
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
    const refused = await runEither(direct(t.token), (c) => c.upload(body, randomUUID()))
    expect(Either.isLeft(refused) && refused.left._tag).toBe("TarballUnsafe")
    expect(Either.isLeft(refused) && refused.left.message).toMatch(/more than 200000 files/)
    expect(await stored(t.tenantId)).toEqual(before)
  }, 60_000)

  it("collects pending blobs older than any upload can run (a server that died mid-upload)", async () => {
    const t = await server.createTenant("orphans")
    await query(
      dbUrl,
      "INSERT INTO blobs (tenant_id, sha256, size, data, upload_id, created_at) VALUES ($1, 'dead', 1, 'x', 'gone', now() - interval '2 days')",
      [t.tenantId]
    )
    await query(
      dbUrl,
      "INSERT INTO blobs (tenant_id, sha256, size, data, upload_id) VALUES ($1, 'young', 1, 'x', 'running')",
      [t.tenantId]
    )
    await run(direct(t.token), (c) => c.upload(uploadArchive(null, [], { "config/a.yaml": "a" }), randomUUID()))
    const rows = await query<{ sha256: string }>(
      dbUrl,
      "SELECT sha256 FROM blobs WHERE tenant_id = $1 ORDER BY sha256",
      [t.tenantId]
    )
    expect(rows.map((r) => r.sha256)).toEqual([sha("a"), "young"].sort())
  })
})

describe("server migrations", () => {
  it("servers started together on a fresh database all migrate it, once", async () => {
    for (let round = 0; round < 3; round++) {
      const url = await freshDatabase("migrace")
      const exits = await Promise.all(
        Array.from({ length: 6 }, () =>
          Effect.runPromiseExit(
            Migrations.migrate.pipe(Effect.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 2 })))
          )
        )
      )
      for (const exit of exits) expect(Exit.isSuccess(exit) ? "ok" : String(exit.cause)).toBe("ok")
      const applied = await query<{ migration_id: number }>(
        url,
        `SELECT migration_id FROM ${Migrations.MIGRATIONS_TABLE} ORDER BY migration_id`
      )
      const all = Object.keys(Migrations.migrations).map((name) => Number.parseInt(name, 10))
      expect(all.length).toBeGreaterThanOrEqual(6)
      expect(applied.map((r) => r.migration_id)).toEqual(all)
    }
  }, 60_000)
})
