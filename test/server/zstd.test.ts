// Archives through the real server in the format both ends read: zstd where both have it (Node 22.15, 23.8 on),
// gzip where either does not (Node 20, or an older server or client), whichever Node runs the suite; a server never
// gets a format it did not say it reads.
import * as fs from "node:fs/promises"
import * as nodePath from "node:path"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { expect, layer } from "@effect/vitest"
import { Chunk, Context, Effect, Either, Layer, Redacted, Stream } from "effect"
import { FilesRoutes, SYNC_PREFIX } from "../../src/api/files.js"
import { type ArchiveFormat, FORMATS } from "../../src/domain/caps.js"
import { FileEntry } from "../../src/domain/model.js"
import { TarballUnsafe } from "../../src/errors.js"
import { SyncApiClient } from "../../src/services/SyncApi.js"
import { END_OF_ARCHIVE, fileRecord, rawZstdFrame, readArchive } from "../../src/stages/files/archive.js"
import { upload } from "../../src/stages/files/upload.js"
import { sha } from "../support/hostile.js"
import { scopedDatabase } from "../support/pg.js"
import { tempDirs } from "../support/tree.js"
import { call, callEither, fastRetry, scopedServer, type TestServer } from "./support.js"

/** The content type of every upload each server received, in order. */
const received: Record<"both" | "gzipOnly", Array<string>> = { both: [], gzipOnly: [] }
const recording = (into: Array<string>) =>
  HttpMiddleware.make((app) =>
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
      if (request.method === "POST" && request.url === `${SYNC_PREFIX}${FilesRoutes.upload}`)
        into.push(request.headers["content-type"] ?? "")
      return app
    })
  )

/** Both servers compress on loopback too (`always`), as for a tunnel: the format is then what both ends read. */
class World extends Context.Tag("test/ZstdWorld")<
  World,
  { readonly both: TestServer; readonly gzipOnly: TestServer; readonly root: string }
>() {}

const tempDir = tempDirs("zstd")

const world = Layer.scoped(
  World,
  Effect.gen(function* () {
    const dbUrl = yield* scopedDatabase("zstd")
    const both = yield* scopedServer(dbUrl, {
      middleware: recording(received.both),
      archives: { formats: FORMATS, compress: "always" }
    })
    // A server on a Node without zstd, or from before it: it says it reads gzip, and reads nothing else.
    const gzipOnly = yield* scopedServer(dbUrl, {
      middleware: recording(received.gzipOnly),
      archives: { formats: ["gzip"], compress: "always" }
    })
    return { both, gzipOnly, root: tempDir("tree") }
  }).pipe(Effect.orDie)
)

/** The client compresses on loopback too, as `AGENTSYNC_COMPRESSION=always` sets it. */
const optionsFor = (server: TestServer, token: Tenant["token"]) => ({
  endpoint: { mode: "direct" as const, origin: server.url },
  token,
  retry: fastRetry,
  compress: "always" as const
})
type Tenant = Effect.Effect.Success<ReturnType<TestServer["createTenant"]>>

/** Files written under the tree's services folder, as manifest entries. */
const writeFiles = (root: string, files: Record<string, string>) =>
  Effect.promise(async () => {
    for (const [p, text] of Object.entries(files)) {
      await fs.mkdir(nodePath.dirname(nodePath.join(root, p)), { recursive: true })
      await fs.writeFile(nodePath.join(root, p), text)
    }
    return Object.entries(files).map(([path, text]) => new FileEntry({ path, size: text.length, sha256: sha(text) }))
  })

/** A push through the upload stage (the manifest asked first, as a run does), then the revision downloaded. */
const pushAndPull = (server: TestServer, tenant: Tenant, root: string, files: Record<string, string>) =>
  call(optionsFor(server, tenant.token), (client) =>
    Effect.gen(function* () {
      const remote = yield* client.manifest()
      const set = yield* writeFiles(root, files)
      const pushed = yield* upload({
        servicesPath: root,
        base: remote.revision,
        remote: remote.entries,
        set,
        delete: []
      }).pipe(Effect.provideService(SyncApiClient, client))
      const archive = yield* client.download(
        pushed.result.revision,
        () => undefined,
        (body) => Stream.runCollect(body).pipe(Effect.map((c) => Buffer.concat(Chunk.toReadonlyArray(c))))
      )
      return { serverReads: client.serverFormats(), archive, revision: pushed.result.revision }
    })
  )

const formatOf = (archive: Uint8Array): ArchiveFormat | "other" =>
  archive[0] === 0x1f && archive[1] === 0x8b ? "gzip" : archive[0] === 0x28 && archive[1] === 0xb5 ? "zstd" : "other"

const filesIn = (archive: Uint8Array) => {
  const files: Record<string, string> = {}
  return readArchive(Stream.make(archive), {
    file: (path) => {
      const chunks: Array<Uint8Array> = []
      return {
        write: (c) => void chunks.push(c),
        end: () => {
          files[path] = Buffer.concat(chunks).toString()
        }
      }
    }
  }).pipe(Effect.as(files))
}

layer(world, { excludeTestServices: true })("archives in the format both ends read", (it) => {
  it.effect("a push and a pull in zstd where both ends have it (gzip on a Node without it)", () =>
    Effect.gen(function* () {
      const { both, root } = yield* World
      const t = yield* both.createTenant("both")
      const files = { "content/a.md": "# a\n".repeat(2000), "config/b.yaml": "b: 1\n" }
      const r = yield* pushAndPull(both, t, nodePath.join(root, "both"), files)
      const best = FORMATS[0]!
      expect(r.serverReads).toEqual(FORMATS)
      expect(received.both.at(-1)).toBe(`application/${best}`)
      expect(formatOf(r.archive)).toBe(best)
      expect(yield* filesIn(r.archive)).toEqual(files)
    })
  )

  it.effect("a server that reads gzip only gets gzip, and refuses a zstd archive sent anyway", () =>
    Effect.gen(function* () {
      const { gzipOnly, root } = yield* World
      const t = yield* gzipOnly.createTenant("gzip-only")
      const files = { "content/c.md": "# c\n".repeat(2000) }
      const r = yield* pushAndPull(gzipOnly, t, nodePath.join(root, "gzip-only"), files)
      expect(r.serverReads).toEqual(["gzip"])
      expect(received.gzipOnly.at(-1)).toBe("application/gzip")
      expect(formatOf(r.archive)).toBe("gzip")
      expect(yield* filesIn(r.archive)).toEqual(files)
      // A zstd archive (raw frames: any Node writes them) that no client of ours sends to this server.
      const zstdArchive = rawZstdFrame(Buffer.concat([fileRecord("content/d.md", Buffer.from("d")), END_OF_ARCHIVE]))
      const refused = yield* callEither(optionsFor(gzipOnly, t.token), (c) =>
        c.upload(() => Stream.make(zstdArchive), "zstd-to-gzip-only", "zstd")
      )
      expect(Either.isLeft(refused) && refused.left instanceof TarballUnsafe && refused.left.reason).toBe(
        "rejected by the server: a zstd archive, which this end does not read (it reads gzip)"
      )
    })
  )

  it.effect("a push planned from a kept manifest, without a manifest answer, uploads in zstd where both have it", () =>
    Effect.gen(function* () {
      const { both, root } = yield* World
      const t = yield* both.createTenant("kept-manifest")
      const dir = nodePath.join(root, "kept")
      const first = yield* pushAndPull(both, t, dir, { "content/f.md": "# f\n".repeat(2000) })
      const remote = yield* call(optionsFor(both, t.token), (c) => c.manifest())
      // A fresh client that asks no manifest first, as a run planning from the kept manifest of a confirmed head.
      const set = yield* writeFiles(dir, { "content/g.md": "# g\n".repeat(2000) })
      const pushed = yield* call(optionsFor(both, t.token), (client) =>
        upload({ servicesPath: dir, base: first.revision, remote: remote.entries, set, delete: [] }).pipe(
          Effect.provideService(SyncApiClient, client)
        )
      )
      expect(pushed.result.created).toBe(true)
      expect(received.both.at(-1)).toBe(`application/${FORMATS[0]}`)
    })
  )

  it.effect("a client that names no format (an older one) downloads gzip", () =>
    Effect.gen(function* () {
      const { both, root } = yield* World
      const t = yield* both.createTenant("older-client")
      const files = { "content/e.md": "# e\n".repeat(2000) }
      const r = yield* pushAndPull(both, t, nodePath.join(root, "older"), files)
      expect(formatOf(r.archive)).toBe(FORMATS[0])
      const url = `${both.url}${SYNC_PREFIX}${FilesRoutes.download}?revision=${r.revision}`
      const older = yield* Effect.promise(async () => {
        const answer = await fetch(url, { headers: { authorization: `Bearer ${Redacted.value(t.token)}` } })
        return { status: answer.status, body: Buffer.from(await answer.arrayBuffer()) }
      })
      expect([older.status, formatOf(older.body)]).toEqual([200, "gzip"])
      expect(yield* filesIn(older.body)).toEqual(files)
    })
  )
})
