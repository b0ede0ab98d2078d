import { randomUUID } from "node:crypto"
import * as OpenApi from "@effect/platform/OpenApi"
import { expect, layer } from "@effect/vitest"
import { Context, Effect, Either, Layer, Redacted, Stream } from "effect"
import { UPLOAD_HEADER_ENTRY, UploadHeader } from "../../src/api/files.js"
import { AgentsyncApi } from "../../src/api/index.js"
import { manifestChecksum } from "../../src/domain/hash.js"
import { FileEntry } from "../../src/domain/model.js"
import type { SyncApiOptions } from "../../src/services/SyncApi.js"
import { readArchive } from "../../src/stages/files/archive.js"
import { hostileCases, record, sha, tarGz, WELL_FORMED } from "../support/hostile.js"
import { scopedDatabase, sqlRows } from "../support/pg.js"
import { call, callEither, fastRetry, scopedServer, type TestServer, uploadArchive } from "./support.js"

const direct = (url: string, token: Redacted.Redacted<string>): SyncApiOptions => ({
  endpoint: { mode: "direct", origin: url },
  token,
  retry: fastRetry
})
const relay = (url: string, tenantId: string, token: Redacted.Redacted<string>): SyncApiOptions => ({
  endpoint: { mode: "relay", api: url, tenantId },
  token,
  retry: fastRetry
})

const readFiles = (stream: Stream.Stream<Uint8Array, unknown>) => {
  const files = new Map<string, string>()
  return readArchive(stream, {
    file: (path) => {
      const chunks: Array<Uint8Array> = []
      return { write: (c) => void chunks.push(c), end: () => void files.set(path, Buffer.concat(chunks).toString()) }
    }
  }).pipe(Effect.as(files))
}

type Tenant = Effect.Effect.Success<ReturnType<TestServer["createTenant"]>>

/** Two server processes on one database (all state is in Postgres), and a tenant made through each. */
class World extends Context.Tag("test/ServerWorld")<
  World,
  {
    readonly dbUrl: string
    readonly a: TestServer
    readonly b: TestServer
    readonly acme: Tenant
    readonly globex: Tenant
  }
>() {}
const world = Layer.scoped(
  World,
  Effect.gen(function* () {
    const dbUrl = yield* scopedDatabase("srv")
    const a = yield* scopedServer(dbUrl)
    const b = yield* scopedServer(dbUrl)
    return { dbUrl, a, b, acme: yield* a.createTenant("Acme Corp"), globex: yield* b.createTenant("Globex") }
  })
)

/** `fetch` as an Effect. */
const get = (url: string, init?: RequestInit) => Effect.promise(() => fetch(url, init))
const text = (r: Response) => Effect.promise(() => r.text())
const json = (r: Response) => Effect.promise(() => r.json() as Promise<unknown>)

layer(world, { excludeTestServices: true })("tenant server", (it) => {
  it.effect("serves health and its OpenAPI document with both URL families", () =>
    Effect.gen(function* () {
      const { a } = yield* World
      const health = yield* json(yield* get(`${a.url}/api/v1/health`))
      expect(health).toMatchObject({ ok: true })
      const doc = (yield* json(yield* get(`${a.url}/api/v1/openapi.json`))) as {
        paths: Record<string, unknown>
      }
      expect(Object.keys(doc.paths)).toEqual(
        expect.arrayContaining([
          "/api/v1/sync/files/manifest",
          "/api/v1/sync/files",
          "/api/v1/cloud/tenants/{tenantId}/files/manifest"
        ])
      )
      // What it serves is the document the API definition produces (the one `test/api/openapi.test.ts` lints).
      expect(doc).toEqual(JSON.parse(JSON.stringify(OpenApi.fromApi(AgentsyncApi))))
    })
  )

  it.effect("keeps only a hash of each token", () =>
    Effect.gen(function* () {
      const { dbUrl, acme } = yield* World
      const rows = yield* sqlRows<{ h: string }>(dbUrl, "select encode(secret_sha256, 'hex') as h, id from tokens")
      expect(rows.length).toBeGreaterThanOrEqual(2)
      const raw = Redacted.value(acme.token)
      for (const r of rows) expect(raw.includes(r.h)).toBe(false)
    })
  )

  it.effect("answers 401 to a missing or wrong token and 403 to another tenant's token, with no data", () =>
    Effect.gen(function* () {
      const { a, acme, globex } = yield* World
      const none = yield* get(`${a.url}/api/v1/sync/files/manifest`)
      expect(none.status).toBe(401)
      const wrong = yield* callEither(
        direct(a.url, Redacted.make(`${Redacted.value(acme.token).slice(0, -4)}AAAA`)),
        (c) => c.manifest()
      )
      expect(Either.isLeft(wrong) && wrong.left._tag).toBe("Unauthorized")
      const other = yield* get(`${a.url}/api/v1/cloud/tenants/${acme.tenantId}/files/manifest`, {
        headers: { authorization: `Bearer ${Redacted.value(globex.token)}` }
      })
      expect(other.status).toBe(403)
      expect(JSON.stringify(yield* json(other))).not.toContain("entries")
      const viaClient = yield* callEither(relay(a.url, acme.tenantId, globex.token), (c) => c.manifest())
      expect(Either.isLeft(viaClient) && viaClient.left._tag).toBe("Unauthorized")
      expect(Either.isLeft(viaClient) && viaClient.left.message).toContain("403")
    })
  )

  it.effect(
    "serves every area's handlers on both URL families alike, and the relay one only for the token's tenant",
    () =>
      Effect.gen(function* () {
        const { a, b, acme } = yield* World
        const t = yield* a.createTenant("families")
        const auth = { authorization: `Bearer ${Redacted.value(t.token)}` }
        const routes = [
          "/files/revisions",
          "/database",
          "/database/export?table=users",
          "/deploy/lock",
          "/releases",
          "/releases/7",
          "/registry-token"
        ]
        for (const route of routes) {
          const viaDirect = yield* get(`${a.url}/api/v1/sync${route}`, { headers: auth })
          const viaRelay = yield* get(`${b.url}/api/v1/cloud/tenants/${t.tenantId}${route}`, { headers: auth })
          // An export's header names the time it was made.
          const body = (r: Response) =>
            Effect.map(text(r), (t) => t.replace(/"exported_at":"[^"]*"/, '"exported_at":"…"'))
          const [direct, relayed] = [yield* body(viaDirect), yield* body(viaRelay)]
          expect([route, viaRelay.status, relayed]).toEqual([route, viaDirect.status, direct])
          const other = yield* get(`${a.url}/api/v1/cloud/tenants/${acme.tenantId}${route}`, { headers: auth })
          expect([route, other.status, yield* json(other)]).toEqual([
            route,
            403,
            { _tag: "Forbidden", reason: "this token belongs to another tenant" }
          ])
        }
      })
  )

  it.effect(
    "commits revisions, serves them by both URL families and both servers, and downloads full or selected",
    () =>
      Effect.gen(function* () {
        const { a, b, acme, globex } = yield* World
        const empty = yield* call(direct(a.url, acme.token), (c) => c.manifest())
        expect(empty.revision).toBeNull()
        const r1 = yield* call(direct(a.url, acme.token), (c) =>
          c.upload(
            uploadArchive(null, [], { "agents/a/config.yaml": "id: a\n", "skills/s/SKILL.md": "# s\n" }),
            randomUUID()
          )
        )
        expect(r1).toMatchObject({ parent: null, created: true, files: 2, received: 2 })
        const viaB = yield* call(relay(b.url, acme.tenantId, acme.token), (c) => c.manifest())
        expect(viaB.revision).toBe(r1.revision)
        expect(viaB.entries.map((e) => e.path)).toEqual(["agents/a/config.yaml", "skills/s/SKILL.md"])
        const r2 = yield* call(relay(b.url, acme.tenantId, acme.token), (c) =>
          c.upload(
            uploadArchive(r1.revision, viaB.entries, { "agents/a/config.yaml": "id: a2\n" }, ["skills/s/SKILL.md"]),
            randomUUID()
          )
        )
        expect(r2).toMatchObject({ parent: r1.revision, files: 1 })
        const all = yield* call(direct(a.url, acme.token), (c) => c.download(r1.revision, () => undefined, readFiles))
        expect(Object.fromEntries(all)).toEqual({ "agents/a/config.yaml": "id: a\n", "skills/s/SKILL.md": "# s\n" })
        const some = yield* call(direct(b.url, acme.token), (c) =>
          c.download(r2.revision, () => ["agents/a/config.yaml"], readFiles)
        )
        expect(Object.fromEntries(some)).toEqual({ "agents/a/config.yaml": "id: a2\n" })
        const revisions = yield* call(direct(a.url, acme.token), (c) => c.revisions())
        expect(revisions.map((r) => r.id)).toEqual([r2.revision, r1.revision])
        expect(revisions[0]).toMatchObject({ parent: r1.revision, author: "test" })
        // What each changed against its parent, and the name of the token that pushed it.
        expect(revisions.map((r) => [r.added, r.changed, r.deleted])).toEqual([
          [0, 1, 1],
          [2, 0, 0]
        ])
        expect(revisions.map((r) => typeof r.token_name)).toEqual(["string", "string"])
        // The other tenant sees none of it.
        expect((yield* call(direct(a.url, globex.token), (c) => c.manifest())).revision).toBeNull()
      })
  )

  it.effect(
    "moves the head only from the current base: of two pushes from one base, one wins and one is a Conflict",
    () =>
      Effect.gen(function* () {
        const { a, b } = yield* World
        const t = yield* a.createTenant("race")
        const base = yield* call(direct(a.url, t.token), (c) =>
          c.upload(uploadArchive(null, [], { "config/x.yaml": "0" }), randomUUID())
        )
        const head = yield* call(direct(a.url, t.token), (c) => c.manifest())
        const results = yield* Effect.all(
          [a, b].map((s, i) =>
            callEither(direct(s.url, t.token), (c) =>
              c.upload(uploadArchive(base.revision, head.entries, { "config/x.yaml": `from ${i}` }), randomUUID())
            )
          ),
          { concurrency: "unbounded" }
        )
        const wins = results.filter(Either.isRight)
        const losses = results.filter(Either.isLeft)
        expect(wins.length).toBe(1)
        expect(losses.map((l) => l.left._tag)).toEqual(["Conflict"])
        const after = yield* call(direct(b.url, t.token), (c) => c.manifest())
        expect(after.revision).toBe(wins[0]!.right.revision)
      })
  )

  it.effect(
    "answers a conditional manifest request with 304 while the head is the revision named, in both URL families",
    () =>
      Effect.gen(function* () {
        const { a, b } = yield* World
        const t = yield* a.createTenant("conditional")
        const headers = (etag?: string) => ({
          authorization: `Bearer ${Redacted.value(t.token)}`,
          ...(etag === undefined ? {} : { "if-none-match": etag })
        })
        const directUrl = `${a.url}/api/v1/sync/files/manifest`
        const relayUrl = `${b.url}/api/v1/cloud/tenants/${t.tenantId}/files/manifest`
        // An empty tenant has no revision to name: always the whole (empty) manifest, no ETag.
        const empty = yield* get(directUrl, { headers: headers('"anything"') })
        expect(empty.status).toBe(200)
        expect(empty.headers.get("etag")).toBeNull()
        const r1 = yield* call(direct(a.url, t.token), (c) =>
          c.upload(uploadArchive(null, [], { "config/x.yaml": "1" }), randomUUID())
        )
        for (const url of [directUrl, relayUrl]) {
          const full = yield* get(url, { headers: headers() })
          expect(full.status).toBe(200)
          expect(full.headers.get("etag")).toBe(`"${r1.revision}"`)
          expect(((yield* json(full)) as { revision: string }).revision).toBe(r1.revision)
          for (const etag of [`"${r1.revision}"`, `W/"${r1.revision}"`, `"other", "${r1.revision}"`, "*"]) {
            const same = yield* get(url, { headers: headers(etag) })
            expect([etag, same.status, same.headers.get("etag"), yield* text(same)]).toEqual([
              etag,
              304,
              `"${r1.revision}"`,
              ""
            ])
          }
          // A stale tag gets the whole manifest; so does a request for a named revision, whatever the tag.
          expect((yield* get(url, { headers: headers('"stale"') })).status).toBe(200)
          expect((yield* get(`${url}?revision=${r1.revision}`, { headers: headers(`"${r1.revision}"`) })).status).toBe(
            200
          )
        }
        // The client hands back the copy it holds on a 304, and the new head once the head moves.
        const known = yield* call(direct(a.url, t.token), (c) => c.manifest())
        expect(yield* call(direct(b.url, t.token), (c) => c.manifest({ known }))).toBe(known)
        const r2 = yield* call(direct(a.url, t.token), (c) =>
          c.upload(uploadArchive(r1.revision, known.entries, { "config/y.yaml": "2" }), randomUUID())
        )
        const moved = yield* call(relay(b.url, t.tenantId, t.token), (c) => c.manifest({ known }))
        expect(moved).not.toBe(known)
        expect([moved.revision, moved.entries.map((e) => e.path)]).toEqual([
          r2.revision,
          ["config/x.yaml", "config/y.yaml"]
        ])
      })
  )

  it.effect("takes an upload of many files, stored in several batches while it streams", () =>
    Effect.gen(function* () {
      const { a, b } = yield* World
      const t = yield* a.createTenant("many")
      const many = Object.fromEntries(
        Array.from({ length: 1200 }, (_, i) => [`content/many/${i}.md`, `file ${i}\n`.repeat(50)])
      )
      const r = yield* call(direct(a.url, t.token), (c) => c.upload(uploadArchive(null, [], many), randomUUID()))
      expect(r).toMatchObject({ files: 1200, received: 1200 })
      const back = yield* call(direct(b.url, t.token), (c) => c.download(r.revision, () => undefined, readFiles))
      expect(back.size).toBe(1200)
      expect(back.get("content/many/77.md")).toBe(many["content/many/77.md"])
    })
  )

  it.effect("creates one revision for a retried upload with the same idempotency key", () =>
    Effect.gen(function* () {
      const { a, b } = yield* World
      const t = yield* a.createTenant("idem")
      const key = randomUUID()
      const first = yield* call(direct(a.url, t.token), (c) =>
        c.upload(uploadArchive(null, [], { "config/x.yaml": "1" }), key)
      )
      const again = yield* call(direct(b.url, t.token), (c) =>
        c.upload(uploadArchive(null, [], { "config/x.yaml": "1" }), key)
      )
      expect(again.revision).toBe(first.revision)
      expect(again.created).toBe(false)
      expect((yield* call(direct(a.url, t.token), (c) => c.revisions())).length).toBe(1)
    })
  )

  it.effect("rejects hostile uploads whole (422) and leaves the head where it was", () =>
    Effect.gen(function* () {
      const { a } = yield* World
      const t = yield* a.createTenant("hostile")
      const r = yield* call(direct(a.url, t.token), (c) =>
        c.upload(uploadArchive(null, [], { "config/x.yaml": "1" }), randomUUID())
      )
      for (const h of hostileCases()) {
        if (WELL_FORMED.has(h.name)) continue
        const res = yield* callEither(direct(a.url, t.token), (c) =>
          c.upload(() => Stream.make(h.archive), randomUUID())
        )
        expect(Either.isLeft(res) && res.left._tag, `${h.name}: ${Either.isLeft(res) ? res.left.message : ""}`).toBe(
          "TarballUnsafe"
        )
      }
      // A file whose bytes do not match the header's hash (same size, other content).
      const manifest = yield* call(direct(a.url, t.token), (c) => c.manifest())
      const declared = new FileEntry({ path: "config/y.yaml", size: 1, sha256: sha("2") })
      const header = new UploadHeader({
        base: r.revision,
        author: "liar",
        set: [declared],
        delete: [],
        checksum: manifestChecksum([...manifest.entries, declared])
      })
      const liar = tarGz(
        record({ path: UPLOAD_HEADER_ENTRY }, Buffer.from(JSON.stringify(header))),
        record({ path: "config/y.yaml" }, Buffer.from("3"))
      )
      const res = yield* callEither(direct(a.url, t.token), (c) => c.upload(() => Stream.make(liar), randomUUID()))
      expect(Either.isLeft(res) && res.left.message).toMatch(
        /content does not match the sha256 of its upload header entry/
      )
      // Without the lie the same upload goes through: the rejection was the hash, nothing else.
      const honest = tarGz(
        record({ path: UPLOAD_HEADER_ENTRY }, Buffer.from(JSON.stringify(header))),
        record({ path: "config/y.yaml" }, Buffer.from("2"))
      )
      const ok = yield* call(direct(a.url, t.token), (c) => c.upload(() => Stream.make(honest), randomUUID()))
      expect(ok.parent).toBe(r.revision)
      yield* call(direct(a.url, t.token), (c) =>
        c.upload(
          uploadArchive(ok.revision, [...manifest.entries, declared], { "config/x.yaml": "1" }, ["config/y.yaml"]),
          randomUUID()
        )
      )
      const revisions = yield* call(direct(a.url, t.token), (c) => c.revisions())
      // Only the honest uploads made revisions: r, ok and the last one.
      expect(revisions.length).toBe(3)
    })
  )

  it.effect("accepts only paths of the one membership list, the same the client bundles", () =>
    Effect.gen(function* () {
      const { a } = yield* World
      const t = yield* a.createTenant("members")
      const outside = yield* callEither(direct(a.url, t.token), (c) =>
        c.upload(uploadArchive(null, [], { "node_modules/x.js": "1" }), randomUUID())
      )
      expect(Either.isLeft(outside) && outside.left._tag).toBe("TarballUnsafe")
      expect(Either.isLeft(outside) && outside.left.message).toMatch(
        /node_modules\/x\.js.*outside the bundle membership/
      )
      const inside = yield* call(direct(a.url, t.token), (c) =>
        c.upload(uploadArchive(null, [], { ".agentsyncignore": "*.tmp\n", "mcp/a.yaml": "1" }), randomUUID())
      )
      expect(inside.files).toBe(2)
    })
  )

  it.effect("never lets a tenant reference content it has not uploaded", () =>
    Effect.gen(function* () {
      const { a } = yield* World
      const owner = yield* a.createTenant("owner")
      yield* call(direct(a.url, owner.token), (c) =>
        c.upload(uploadArchive(null, [], { "config/secret.yaml": "s3cret" }), randomUUID())
      )
      const thief = yield* a.createTenant("thief")
      // Claims the owner's file by hash without sending its bytes.
      const res = yield* callEither(direct(a.url, thief.token), (c) =>
        c.upload(uploadArchive(null, [], { "config/secret.yaml": "s3cret" }, [], false), randomUUID())
      )
      expect(Either.isLeft(res) && res.left._tag).toBe("InvalidInput")
      expect(Either.isLeft(res) && res.left.message).toMatch(/no content received/)
    })
  )
})
