/** Test support: the tenant server on loopback over a fresh database, with tenants and a client per token. */
import { PgClient } from "@effect/sql-pg"
import { Context, Effect, Layer, ManagedRuntime, Redacted, Stream } from "effect"
import { afterAll, beforeAll } from "vitest"
import { UPLOAD_HEADER_ENTRY, UploadHeader } from "../../src/api/files.js"
import { manifestChecksum } from "../../src/domain/hash.js"
import { FileEntry } from "../../src/domain/model.js"
import * as Server from "../../src/server/http.js"
import { Tenants } from "../../src/server/tenants.js"
import { layer as clientLayer, SyncApiClient, type SyncApiOptions } from "../../src/services/SyncApi.js"
import { fileRecord, gzip, tarOf } from "../../src/stages/files/archive.js"
import { sha } from "../support/hostile.js"
import { dropDatabase, freshDatabase, scopedDatabase } from "../support/pg.js"

export const startServer = async (
  databaseUrl: string,
  options: Pick<Server.ServeOptions, "accessLog" | "middleware" | "archives"> = {}
) => {
  const db = PgClient.layer({ url: Redacted.make(databaseUrl), maxConnections: 10 })
  const runtime = ManagedRuntime.make(
    Layer.provideMerge(Server.layer({ host: "127.0.0.1", port: 0, ...options }), db).pipe(
      Layer.provideMerge(Tenants.Default.pipe(Layer.provide(db)))
    )
  )
  const url = await runtime.runPromise(Server.url)
  const createTenant = (name: string) =>
    runtime.runPromise(
      Effect.map(
        Effect.flatMap(Tenants, (s) => s.createTenant(name)),
        (c) => ({ tenantId: c.tenant.id, name: c.tenant.name, token: c.token.token, tokenId: c.token.info.id })
      )
    )
  return { url, runtime, createTenant, stop: () => runtime.dispose() }
}

/**
 * One server over a fresh database (named `name`) for the tests of a file (or of the `describe` it is called in):
 * started before them, stopped and its database dropped after. Its `url`, `databaseUrl` and `createTenant` are read
 * when a test runs, once the server is up.
 */
export const serverForFile = (
  name: string,
  options: Pick<Server.ServeOptions, "accessLog" | "middleware" | "archives"> = {}
) => {
  let started: Awaited<ReturnType<typeof startServer>> | undefined
  let databaseUrl: string | undefined
  beforeAll(async () => {
    databaseUrl = await freshDatabase(name)
    started = await startServer(databaseUrl, options)
  })
  afterAll(async () => {
    // The database is dropped even when the server fails to stop, else it stays on the shared test server.
    try {
      await started?.stop()
    } finally {
      if (databaseUrl !== undefined) await dropDatabase(databaseUrl)
    }
  })
  const up = () => {
    if (started === undefined) throw new Error(`the server of ${name} is not started: use it inside a test`)
    return started
  }
  return {
    get url() {
      return up().url
    },
    /** The server's database, for a test that reads it or starts another server over it. */
    get databaseUrl() {
      up()
      return databaseUrl!
    },
    createTenant: (tenant: string) => up().createTenant(tenant)
  }
}

/**
 * The tenant server over `databaseUrl` as a resource of the enclosing scope: listening on loopback once acquired,
 * stopped (its connections closed) when the scope closes. For `it.layer` files: one server for every test.
 */
export const scopedServer = (
  databaseUrl: string,
  options: Pick<Server.ServeOptions, "accessLog" | "middleware" | "archives"> = {}
) =>
  Effect.gen(function* () {
    const db = PgClient.layer({ url: Redacted.make(databaseUrl), maxConnections: 10 })
    const context = yield* Layer.build(
      Layer.provideMerge(Server.layer({ host: "127.0.0.1", port: 0, ...options }), db).pipe(
        Layer.provideMerge(Tenants.Default.pipe(Layer.provide(db)))
      )
    )
    const url = yield* Effect.provide(Server.url, context)
    const tenants = Context.get(context, Tenants)
    const createTenant = (name: string) =>
      Effect.map(tenants.createTenant(name), (c) => ({
        tenantId: c.tenant.id,
        name: c.tenant.name,
        token: c.token.token,
        tokenId: c.token.info.id
      })).pipe(Effect.orDie)
    return { url, tenants, createTenant, databaseUrl }
  }).pipe(Effect.orDie)

export type TestServer = Effect.Effect.Success<ReturnType<typeof scopedServer>>

/** A fresh database and one tenant server over it, as a layer for `it.layer` (`TestTenantServer` in the tests). */
export class TestTenantServer extends Context.Tag("test/TestTenantServer")<TestTenantServer, TestServer>() {
  static readonly layer = (prefix: string) =>
    Layer.scoped(
      TestTenantServer,
      Effect.flatMap(scopedDatabase(prefix), (url) => scopedServer(url))
    )
}

/** One call of the API client with `options`, as an Effect. */
export const call = <A, E>(options: SyncApiOptions, f: (c: typeof SyncApiClient.Service) => Effect.Effect<A, E>) =>
  Effect.flatMap(SyncApiClient, f).pipe(Effect.provide(clientLayer(options)))

/** The same, its failure as a `Left`. */
export const callEither = <A, E>(
  options: SyncApiOptions,
  f: (c: typeof SyncApiClient.Service) => Effect.Effect<A, E>
) => Effect.either(call(options, f))

export const clientRuntime = (options: SyncApiOptions) => ManagedRuntime.make(clientLayer(options))

export const run = <A, E>(options: SyncApiOptions, f: (c: typeof SyncApiClient.Service) => Effect.Effect<A, E>) =>
  Effect.runPromise(Effect.flatMap(SyncApiClient, f).pipe(Effect.provide(clientLayer(options))))

export const runEither = <A, E>(options: SyncApiOptions, f: (c: typeof SyncApiClient.Service) => Effect.Effect<A, E>) =>
  Effect.runPromise(Effect.either(Effect.flatMap(SyncApiClient, f).pipe(Effect.provide(clientLayer(options)))))

export const fastRetry = { maxRetries: 2, base: "10 millis", factor: 2, cap: "50 millis" } as const

/** An upload archive setting the given files over the base tree. */
export const uploadArchive = (
  base: string | null,
  baseTree: ReadonlyArray<FileEntry>,
  files: Record<string, string>,
  deleted: ReadonlyArray<string> = [],
  send = true
) => {
  const set = Object.entries(files).map(
    ([path, text]) => new FileEntry({ path, size: Buffer.byteLength(text), sha256: sha(text) })
  )
  const tree = new Map(baseTree.map((e) => [e.path, e]))
  for (const d of deleted) tree.delete(d)
  for (const e of set) tree.set(e.path, e)
  const header = new UploadHeader({
    base,
    author: "test",
    set,
    delete: deleted,
    checksum: manifestChecksum([...tree.values()])
  })
  const records = [fileRecord(UPLOAD_HEADER_ENTRY, Buffer.from(JSON.stringify(header)))]
  if (send) for (const [path, text] of Object.entries(files)) records.push(fileRecord(path, Buffer.from(text)))
  return () => gzip(tarOf(Stream.fromIterable(records as ReadonlyArray<Uint8Array>)))
}
