/** The tenant server's HTTP side: authentication, the files handlers of both URL families, OpenAPI, and serving. */
import { createServer, type Server as NodeServer, type ServerResponse } from "node:http"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServer from "@effect/platform/HttpServer"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as NodeStream from "@effect/platform-node/NodeStream"
import { Context, Duration, Effect, FiberRef, Layer, Option, type Stream } from "effect"
import {
  AgentsyncApi,
  Authentication,
  type Caller,
  etagMatches,
  IDEMPOTENCY_HEADER,
  manifestEtag,
  NotModified,
  OPENAPI_PATH,
  REVISION_HEADER,
  Unavailable
} from "../api/index.js"
import {
  ARCHIVE_FORMATS_HEADER,
  type ArchiveFormat,
  type CompressSetting,
  compressSettingFromEnv,
  type EntryKind,
  FORMATS,
  manifestCapsHeaders,
  parseFormats,
  transferLimitsFromEnv,
  type UploadForm
} from "../domain/caps.js"
import { TarballUnsafe, Unauthorized } from "../errors.js"
import { pace } from "../services/Pace.js"
import { compressionFor } from "../stages/files/archive.js"
import { type AccessLog, currentTenant, type Middleware } from "./accessLog.js"
import { AdminLive } from "./admin.js"
import { DatabaseLive } from "./db/handlers.js"
import { DeployLive } from "./deploy/http.js"
import { bothFamilies } from "./families.js"
import { FileStore } from "./files/FileStore.js"
import * as Migrations from "./migrations.js"
import * as NotModifiedCheck from "./notModified.js"
import { HealthLive } from "./probes.js"
import { Tenants } from "./tenants.js"

export { VERSION } from "./probes.js"

/** The head files revision of the caller's tenant, read by the statement that authenticated this request. */
const authenticatedHead = FiberRef.unsafeMake<{ readonly tenantId: string; readonly head: string | null } | undefined>(
  undefined
)

export const AuthenticationLive = Layer.effect(
  Authentication,
  Effect.map(Tenants, (store) =>
    Authentication.of({
      bearer: (token) =>
        store.authenticate(token).pipe(
          Effect.catchTag("SqlError", (e) => Effect.die(e)),
          Effect.flatMap(
            Option.match({
              onNone: () => Effect.fail(new Unauthorized({ reason: "invalid or revoked token" })),
              // The access log names the tenant a request ran for; a conditional manifest request, its head.
              onSome: ({ head, ...caller }) =>
                Effect.as(
                  Effect.zipRight(
                    FiberRef.set(currentTenant, caller.tenantId),
                    FiberRef.set(authenticatedHead, { tenantId: caller.tenantId, head })
                  ),
                  caller
                )
            })
          )
        )
    })
  )
)

/**
 * The upload body, read straight off Node's request. Not destroyed when reading stops early: a rejected upload
 * still gets its 4xx answer (the rest of the body is discarded), not a reset connection.
 */
const uploadBody = (request: HttpServerRequest.HttpServerRequest) =>
  NodeStream.fromReadable<TarballUnsafe, Uint8Array>(
    () => NodeHttpServerRequest.toIncomingMessage(request),
    (e) =>
      new TarballUnsafe({ reason: `upload body could not be read: ${e instanceof Error ? e.message : String(e)}` }),
    { closeOnDone: false }
  )

const discardRest = (request: HttpServerRequest.HttpServerRequest) =>
  Effect.sync(() => {
    NodeHttpServerRequest.toIncomingMessage(request).resume()
  })

const idempotencyKey = (request: HttpServerRequest.HttpServerRequest) => {
  const key = request.headers[IDEMPOTENCY_HEADER]
  return key === undefined || key === "" ? undefined : key.slice(0, 200)
}

const archiveResponse =
  (format: ArchiveFormat) =>
  (download: { readonly revision: string | null; readonly body: Stream.Stream<Uint8Array, unknown> }) =>
    HttpServerResponse.stream(download.body, {
      contentType: format === "zstd" ? "application/zstd" : format === "tar" ? "application/x-tar" : "application/gzip",
      headers: download.revision === null ? {} : { [REVISION_HEADER]: download.revision }
    })

/**
 * Sends with the manifest answer being built the revision's ETag, when there is one, and the archive formats this
 * server reads (what the client may upload in).
 */
const withManifestHeaders = (revision: string | null, caps: Record<string, string>) =>
  HttpApp.appendPreResponseHandler((_request, response) =>
    Effect.succeed(
      HttpServerResponse.setHeaders(response, {
        ...(revision === null ? {} : { etag: manifestEtag(revision) }),
        ...caps
      })
    )
  )

/**
 * The archive formats the server reads and writes, and when it compresses. Default: what this Node has, and the
 * environment's `AGENTSYNC_COMPRESSION`.
 */
export interface ArchivePolicy {
  readonly formats: ReadonlyArray<ArchiveFormat>
  /**
   * The kinds of entries it says it keeps (default all). None answers as a build before executable bits, links
   * and the archive negotiation: manifest answers without `x-agentsync-archive` and `x-agentsync-entries`.
   */
  readonly entries?: ReadonlyArray<EntryKind>
  /**
   * The upload forms it announces and reads beyond the header form (default all; none answers as an older build).
   * No kinds of `entries` means none of these either, as the builds before both.
   */
  readonly uploads?: ReadonlyArray<UploadForm>
  readonly compress: CompressSetting
}

export class CurrentArchivePolicy extends Context.Tag("agentsync/server/ArchivePolicy")<
  CurrentArchivePolicy,
  ArchivePolicy
>() {}

const archivePolicy = Effect.flatMap(Effect.serviceOption(CurrentArchivePolicy), (set) =>
  Option.isSome(set)
    ? Effect.succeed(set.value)
    : Effect.map(compressSettingFromEnv, (compress): ArchivePolicy => ({ formats: FORMATS, compress }))
)

/**
 * The operations both families share, given the tenant the call resolved to; the same deadlines and minimum rate
 * as the clients', from the same variables.
 */
const filesOps = Effect.map(
  Effect.all([FileStore, transferLimitsFromEnv, archivePolicy]),
  ([store, limits, policy]) => {
    const advertised = manifestCapsHeaders(policy.formats, policy.entries, policy.uploads)
    // A server keeping no kinds of entries answers as a build before them, which announced no upload form and read
    // none: it does not read one it no longer announces.
    const uploads = policy.entries?.length === 0 ? [] : policy.uploads
    return {
      /** A revision's manifest; for the head with a matching If-None-Match, 304 without loading the manifest. */
      manifest: (caller: Caller, revision: string | undefined, ifNoneMatch: string | undefined) =>
        Effect.gen(function* () {
          if (revision === undefined && ifNoneMatch !== undefined) {
            const known = yield* FiberRef.get(authenticatedHead)
            const head = known?.tenantId === caller.tenantId ? known.head : yield* store.head(caller.tenantId)
            if (head !== null && etagMatches(ifNoneMatch, head)) {
              yield* withManifestHeaders(head, advertised)
              return new NotModified()
            }
          }
          const manifest = yield* store.manifest(caller.tenantId, revision)
          yield* withManifestHeaders(manifest.revision, advertised)
          return manifest
        }),
      // Cut when its body trickles below the minimum rate, or when it runs past the deadline.
      upload: (caller: Caller, request: HttpServerRequest.HttpServerRequest) =>
        Effect.suspend(() => {
          const p = pace(limits, (why) => new Unavailable({ reason: `upload too slow: ${why}` }))
          return p.guard(
            store.upload(caller, p.count(uploadBody(request)), {
              idempotencyKey: idempotencyKey(request),
              formats: policy.formats,
              ...(uploads === undefined ? {} : { uploads })
            })
          )
        }).pipe(
          Effect.timeoutFail({
            duration: Duration.millis(limits.deadlineMs),
            onTimeout: () => new Unavailable({ reason: `upload not finished within ${limits.deadlineMs / 1000} s` })
          }),
          Effect.onError(() => discardRest(request))
        ),
      // Compressed for the link it goes over (not at all to a client on this machine: a plain tar when it reads one), in
      // zstd when the client reads it.
      download: (
        caller: Caller,
        request: HttpServerRequest.HttpServerRequest,
        revision: string | undefined,
        paths?: ReadonlyArray<string>
      ) => {
        const compression = compressionFor(
          Option.getOrElse(request.remoteAddress, () => ""),
          parseFormats(request.headers[ARCHIVE_FORMATS_HEADER], true),
          policy.compress,
          policy.formats
        )
        // Nothing handed to the response is still pending on its socket: the download's buffers go back then. Safe
        // only while nothing between the download's stream and the platform's response writer reads the stream ahead
        // (a middleware that buffers the body would see buffers filled again: see `ServeOptions.middleware`). A
        // request that is not Node's has no response to ask: then no probe, and nothing goes back. (The cast: the
        // platform types it as always there, but reads a field only its Node request sets.)
        const response = NodeHttpServerRequest.toServerResponse(request) as ServerResponse | undefined
        const written = response === undefined ? undefined : () => response.writableLength === 0
        return Effect.map(
          store.download(caller.tenantId, revision, paths, compression, written),
          archiveResponse(compression.format)
        )
      },
      revisions: (caller: Caller, limit: number | undefined) => store.revisions(caller.tenantId, limit)
    }
  }
)

/** The files handlers, once for both URL families. */
export const FilesLive = bothFamilies({ sync: "files", cloud: "cloudFiles" }, (handlers, callerOf) =>
  Effect.map(filesOps, (ops) =>
    handlers
      .handle("manifest", (r) =>
        Effect.flatMap(callerOf(r), (c) => ops.manifest(c, r.urlParams.revision, r.headers["if-none-match"]))
      )
      .handleRaw("upload", (r) => Effect.flatMap(callerOf(r), (c) => ops.upload(c, r.request)))
      .handle("download", (r) => Effect.flatMap(callerOf(r), (c) => ops.download(c, r.request, r.urlParams.revision)))
      .handle("select", (r) =>
        Effect.flatMap(callerOf(r), (c) => ops.download(c, r.request, r.payload.revision, r.payload.paths))
      )
      .handle("revisions", (r) => Effect.flatMap(callerOf(r), (c) => ops.revisions(c, r.urlParams.limit)))
  )
)

/** The API with every group and the authentication, over a FileStore (and so over a SqlClient). */
export const ApiLive = HttpApiBuilder.api(AgentsyncApi).pipe(
  Layer.provide([FilesLive, HealthLive, DatabaseLive, DeployLive, AdminLive]),
  Layer.provide(AuthenticationLive),
  Layer.provide([FileStore.Default, Tenants.Default])
)

export type { Middleware } from "./accessLog.js"

/** The HTTP app on an HttpServer: the API plus its OpenAPI document, under an optional middleware (the access log). */
export const httpLive = (middleware?: Middleware) =>
  (middleware === undefined ? HttpApiBuilder.serve() : HttpApiBuilder.serve(middleware)).pipe(
    Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: OPENAPI_PATH })),
    Layer.provide(ApiLive)
  )

export const HttpLive = httpLive()

export interface ServeOptions {
  readonly host: string
  readonly port: number
  /** The Node server to listen with (default: a new one); the caller keeps it to shut it down gracefully. */
  readonly server?: NodeServer
  /** The access log: its middleware wraps the app, and the no-change check answered before it logs through it. */
  readonly accessLog?: AccessLog
  /**
   * A middleware of the caller's around every request. It must see every request, so the no-change check is then
   * left to the framework too. It must not read a response body ahead of the platform's writer (buffer it, tee it,
   * prefetch it): a download's stored members are filled again once the socket has written them
   * (`server/files/download.ts`, `givenBackWhenWritten`), so a body read ahead would hold bytes overwritten later.
   */
  readonly middleware?: Middleware
  /** The archive formats it reads and when it compresses (default: this Node's, and `AGENTSYNC_COMPRESSION`). */
  readonly archives?: ArchivePolicy
}

/**
 * The tenant server on Node's HTTP server: migrations first, then the API, with the no-change check answered in
 * front of it (`notModified.ts`). Its only state is Postgres, so any number of these can serve one database.
 */
export const layer = (options: ServeOptions) =>
  Layer.unwrapEffect(
    Effect.sync(() => {
      const node = options.server ?? createServer()
      const formats = manifestCapsHeaders(
        options.archives?.formats ?? FORMATS,
        options.archives?.entries,
        options.archives?.uploads
      )
      const fast =
        options.middleware === undefined
          ? Layer.scopedDiscard(NotModifiedCheck.install(node, options.accessLog, formats))
          : Layer.empty
      const policy =
        options.archives === undefined ? Layer.empty : Layer.succeed(CurrentArchivePolicy, options.archives)
      return httpLive(options.middleware ?? options.accessLog?.middleware).pipe(
        Layer.provide(policy),
        Layer.provideMerge(NodeHttpServer.layer(() => node, { host: options.host, port: options.port })),
        Layer.provideMerge(fast)
      )
    })
  ).pipe(Layer.provide(Migrations.layer))

/** `http://host:port` of a running server. */
export const url = Effect.map(HttpServer.HttpServer, (server) =>
  server.address._tag === "TcpAddress"
    ? `http://${server.address.hostname.includes(":") ? `[${server.address.hostname}]` : server.address.hostname}:${server.address.port}`
    : `unix:${server.address.path}`
)
