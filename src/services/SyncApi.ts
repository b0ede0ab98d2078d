/** SyncApiClient: the tenant API client, direct-sync or cloud-relay, with bearer auth, timeouts and a bounded retry. */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiClient from "@effect/platform/HttpApiClient"
import type * as HttpApiError from "@effect/platform/HttpApiError"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import {
  type Cause,
  Context,
  Deferred,
  Duration,
  Effect,
  Layer,
  type ParseResult,
  Redacted,
  Schema,
  Stream
} from "effect"
import type { Forbidden, NotFound } from "../api/common.js"
import {
  CLOUD_PREFIX,
  CloudFilesGroup,
  FilesRoutes,
  IDEMPOTENCY_HEADER,
  isEntry,
  manifestEtag,
  RemoteManifest,
  type RevisionInfo,
  SYNC_PREFIX,
  SyncFilesGroup,
  UploadResult
} from "../api/files.js"
import { CurrentConfig, type SyncConfig } from "../config.js"
import {
  ARCHIVE_FORMATS_HEADER,
  type ArchiveFormat,
  CAPS,
  type CompressSetting,
  compressSettingFromEnv,
  ENTRY_KINDS_HEADER,
  type EntryKind,
  entryKindsOf,
  FORMATS,
  parseFormats,
  TRANSFER,
  type TransferLimits,
  transferLimitsFromEnv
} from "../domain/caps.js"
import { manifestChecksum } from "../domain/hash.js"
import { ManifestRefused, makeManifestDecoder } from "../domain/manifestDecoder.js"
import type { FileEntry } from "../domain/model.js"
import { ApiError, InvalidInput, MissingConfig, Unauthorized, UnsafeRemote } from "../errors.js"
import { pace } from "./Pace.js"
import type { ManifestAnswer } from "./state.js"
import {
  answerText,
  defaultRetry,
  describe,
  fromStatus,
  type Retry,
  readAnswer,
  retryFromEnv,
  retrying,
  type SyncApiError,
  type Transient,
  transient
} from "./Transport.js"

export {
  defaultRetry,
  parseRetryAfter,
  type Retry,
  type RetryPolicy,
  retrySchedule,
  type SyncApiError,
  Transient
} from "./Transport.js"

/**
 * The files part of the tenant API, all this client calls: building the client from it leaves the other
 * areas' definitions (database, deploy, health) unloaded on the path every file sync run takes.
 */
class FilesApi extends HttpApi.make("agentsync").add(SyncFilesGroup).add(CloudFilesGroup) {}

/** What one attempt can fail with before it is classified: the HTTP client's, the typed client's, and ours. */
type AttemptFailure =
  | HttpClientError.HttpClientError
  | ParseResult.ParseError
  | Cause.TimeoutException
  | Forbidden
  | NotFound
  | HttpApiError.HttpApiDecodeError
  | SyncApiError
  | Transient

/** Where the tenant lives: its own origin (direct) or a shared API naming the tenant (relay). */
export type SyncEndpoint =
  | { readonly mode: "direct"; readonly origin: string }
  | { readonly mode: "relay"; readonly api: string; readonly tenantId: string }

export interface SyncApiOptions {
  readonly endpoint: SyncEndpoint
  readonly token: Redacted.Redacted<string>
  /** Four numbers or an Effect `Schedule` (default `defaultRetry`, or the environment through `optionsFromConfig`). */
  readonly retry?: Retry
  /** Deadlines and the minimum rate of bodies (default: `TRANSFER`, or the environment through `optionsFromConfig`). */
  readonly limits?: Partial<TransferLimits>
  /** When uploads are compressed (default `auto`, or `AGENTSYNC_COMPRESSION` through `optionsFromConfig`). */
  readonly compress?: CompressSetting
}

export interface ManifestOptions {
  readonly revision?: string
  readonly known?: RemoteManifest
}

export interface SyncApiClientShape {
  readonly endpoint: SyncEndpoint
  /** The base URL the calls go to, for messages (never holds the token). */
  readonly baseUrl: string
  /**
   * A revision's manifest, the head by default, decoded as it arrives within the caps and checked against its
   * checksum. Given `known`, a head manifest held from an earlier call, the request is conditional
   * (If-None-Match): while the head is still `known.revision` the answer is `known` itself and no manifest
   * crosses the network.
   */
  readonly manifest: (options?: ManifestOptions) => Effect.Effect<RemoteManifest, SyncApiError>
  readonly revisions: (limit?: number) => Effect.Effect<ReadonlyArray<RevisionInfo>, SyncApiError>
  /**
   * Uploads an archive; `body` is re-created for each attempt. The idempotency key makes a retried upload
   * that had in fact committed (its answer lost) answer with the same revision instead of a second one.
   */
  readonly upload: <E>(
    body: () => Stream.Stream<Uint8Array, E>,
    idempotencyKey: string,
    format?: ArchiveFormat
  ) => Effect.Effect<UploadResult, SyncApiError | E>
  /**
   * Downloads a revision (all of it when `paths()` is undefined, else those paths) as a tar.gz stream handed
   * to `consume`. A transport failure (a body cut short, too slow) fails the stream with `Transient`, which
   * `consume` lets through: the call is then retried, asking `paths()` again, so a consumer that keeps what
   * it has verified resumes with the rest.
   */
  readonly download: <A, E>(
    revision: string,
    paths: () => ReadonlyArray<string> | undefined,
    consume: (body: Stream.Stream<Uint8Array, Transient>) => Effect.Effect<A, E | Transient>
  ) => Effect.Effect<A, SyncApiError | E>
  /**
   * The archive formats the server said it reads, on its last manifest answer (none from a server that does not
   * say: then it reads gzip only); undefined before any manifest answer. An upload is compressed in one of them.
   */
  readonly serverFormats: () => ReadonlyArray<ArchiveFormat> | undefined
  /** When an upload is compressed, as the client was configured (read once, where it was built). */
  readonly compress: CompressSetting
  /**
   * The kinds of entries (executable bits, symbolic links) the server said it keeps, on its last manifest answer
   * (none before one, or from a server that predates them). A push carrying another kind is refused before sending.
   */
  readonly serverEntryKinds: () => ReadonlyArray<EntryKind>
  /** Takes what a manifest answer had elsewhere in this process said (the settled check's 304), as if it were its own. */
  readonly heard: (answer: ManifestAnswer) => void
}

export class SyncApiClient extends Context.Tag("agentsync/SyncApiClient")<SyncApiClient, SyncApiClientShape>() {}

const trimSlash = (s: string) => s.replace(/\/+$/, "")

const checkUrl = (key: string, value: string): Effect.Effect<string, MissingConfig> => {
  const ok = /^https?:\/\/[^\s]+$/.test(value)
  return ok
    ? Effect.succeed(trimSlash(value))
    : Effect.fail(
        new MissingConfig({ key, reason: `must be an http(s) URL, got ${JSON.stringify(value.slice(0, 80))}` })
      )
}

/**
 * The token as sent: surrounding whitespace (a newline from `$(cat token)`) trimmed; a character no HTTP
 * header may carry is a configuration error that names the variable, never the token.
 */
export const checkToken = (
  token: Redacted.Redacted<string>
): Effect.Effect<Redacted.Redacted<string>, MissingConfig> => {
  const value = Redacted.value(token).trim()
  if (value === "") return Effect.fail(new MissingConfig({ key: "AGENTSYNC_TOKEN", reason: "is empty" }))
  // Visible ASCII only (RFC 9110 field values; bearer tokens are a subset).
  return /^[\x21-\x7e]+$/.test(value)
    ? Effect.succeed(Redacted.make(value))
    : Effect.fail(
        new MissingConfig({
          key: "AGENTSYNC_TOKEN",
          reason: "holds a space, a line break or another character a token cannot have"
        })
      )
}

/** The endpoint and token from a SyncConfig: direct origin first, else API URL + tenant id. */
export const optionsFromConfig = (config: SyncConfig): Effect.Effect<SyncApiOptions, MissingConfig> =>
  Effect.gen(function* () {
    if (config.token === undefined)
      return yield* new MissingConfig({
        key: "AGENTSYNC_TOKEN",
        reason: "set it to a token from `agentsync tenant create`"
      })
    const token = yield* checkToken(config.token)
    let endpoint: SyncEndpoint
    if (config.directUrl !== undefined) {
      endpoint = { mode: "direct", origin: yield* checkUrl("AGENTSYNC_DIRECT_URL", config.directUrl) }
    } else if (config.apiUrl !== undefined) {
      if (config.tenantId === undefined) {
        return yield* new MissingConfig({
          key: "AGENTSYNC_TENANT_ID",
          reason: "cloud-relay mode (AGENTSYNC_API_URL) needs the tenant id"
        })
      }
      if (!/^[a-z0-9][a-z0-9-]{0,63}$/.test(config.tenantId)) {
        return yield* new MissingConfig({
          key: "AGENTSYNC_TENANT_ID",
          reason: "not a tenant id (lowercase letters, digits, '-')"
        })
      }
      endpoint = { mode: "relay", api: yield* checkUrl("AGENTSYNC_API_URL", config.apiUrl), tenantId: config.tenantId }
    } else {
      return yield* new MissingConfig({
        key: "AGENTSYNC_DIRECT_URL",
        reason: "set AGENTSYNC_DIRECT_URL (direct sync), or AGENTSYNC_API_URL and AGENTSYNC_TENANT_ID (cloud relay)"
      })
    }
    // Read here, once, where a client is built: a malformed value fails naming it (exit 2).
    const retry: Retry = config.retry ?? (yield* retryFromEnv)
    const limits = yield* transferLimitsFromEnv
    const compress = yield* compressSettingFromEnv
    return { endpoint, token, retry, limits, compress }
  })

/** The manifest of a response body, decoded as it arrives: refused past the caps, retried when cut short. */
const decodeManifest = (
  body: Stream.Stream<Uint8Array, Transient>,
  url: string
): Effect.Effect<RemoteManifest, Transient | UnsafeRemote> =>
  Effect.suspend(() => {
    const decoder = makeManifestDecoder<FileEntry>({
      arrayKey: "entries",
      maxBytes: CAPS.maxManifestBytes,
      maxEntries: CAPS.maxEntries,
      element: (u, i) => (isEntry(u) ? u : `entry ${i} of the manifest is not a file entry (path, size, sha256)`)
    })
    const refused = (e: unknown) =>
      e instanceof ManifestRefused && e.kind === "truncated"
        ? transient(200, `manifest ${e.message}`)
        : new UnsafeRemote({ reason: e instanceof Error ? e.message : String(e), url })
    return Stream.runForEach(body, (chunk) => Effect.try({ try: () => decoder.push(chunk), catch: refused })).pipe(
      Effect.zipRight(Effect.try({ try: () => decoder.end(), catch: refused })),
      Effect.flatMap(({ fields, elements }) =>
        Schema.decodeUnknown(RemoteManifest)({ ...fields, entries: [] }).pipe(
          Effect.mapError((e) => new UnsafeRemote({ reason: `not a manifest: ${e.message.slice(0, 300)}`, url })),
          Effect.map((m) => new RemoteManifest({ ...m, entries: elements }, { disableValidation: true }))
        )
      ),
      Effect.filterOrFail(
        (m) => manifestChecksum(m.entries) === m.checksum,
        () => new UnsafeRemote({ reason: "the manifest's entries do not add up to its checksum", url })
      )
    )
  })

export const make = Effect.fn("SyncApiClient.make")(function* (options: SyncApiOptions) {
  const http = yield* HttpClient.HttpClient
  const policy = options.retry ?? defaultRetry
  const limits: TransferLimits = { ...TRANSFER, ...options.limits }
  const exchange = Duration.millis(limits.exchangeMs)
  const endpoint = options.endpoint
  const origin = endpoint.mode === "direct" ? endpoint.origin : endpoint.api
  const prefix = endpoint.mode === "direct" ? SYNC_PREFIX : `${CLOUD_PREFIX}/${endpoint.tenantId}`
  const baseUrl = `${origin}${prefix}`
  const token = yield* checkToken(options.token).pipe(Effect.orDie)
  const bearer = HttpClient.mapRequest(HttpClientRequest.bearerToken(Redacted.value(token)))
  const authed = http.pipe(bearer)
  // Uploads go through fetch: it pulls the body stream as the socket drains, so a slow server never makes
  // the client buffer the archive (Node's client writes a streamed body without waiting for 'drain').
  const uploader = (yield* Effect.provide(HttpClient.HttpClient, FetchHttpClient.layer)).pipe(bearer)
  // Failure statuses are classified here from status and body (a proxy's 502 page has no schema), so the
  // typed client only ever decodes successes. It is built on first use, for the one URL family in use.
  const typedOptions = { httpClient: HttpClient.filterStatusOk(authed), baseUrl: origin }
  const filesApi = yield* Effect.cached(HttpApiClient.group(FilesApi, { group: "files", ...typedOptions }))
  const cloudFilesApi = yield* Effect.cached(HttpApiClient.group(FilesApi, { group: "cloudFiles", ...typedOptions }))

  /** The HTTP part of an attempt with its failures classified (the consumer of a body keeps its own). */
  const httpPart = <A, R>(
    url: string,
    effect: Effect.Effect<A, AttemptFailure, R>
  ): Effect.Effect<A, SyncApiError | Transient, R> =>
    Effect.catchTags(effect, {
      RequestError: (e) => Effect.fail(transient(0, describe(e), true)),
      ResponseError: (e) =>
        // A success whose body could not be read was cut short: the call is idempotent, so try again.
        e.response.status >= 200 && e.response.status < 300
          ? Effect.fail(transient(e.response.status, `answer cut short: ${describe(e)}`))
          : Effect.flatMap(answerText(e.response), (body) =>
              Effect.fail(fromStatus(e.response.status, body, url, e.response.headers["retry-after"]))
            ),
      TimeoutException: () => Effect.fail(transient(408, "timed out")),
      ParseError: (e) =>
        Effect.fail(new ApiError({ kind: "Decode", status: 200, reason: e.message.slice(0, 300), url })),
      // The typed client decodes successes only (failure statuses are read above); these are the group's own.
      Forbidden: (e) => Effect.fail(new Unauthorized({ reason: `${e.reason} (403 from ${url})` })),
      NotFound: (e) => Effect.fail(new ApiError({ status: 404, reason: e.reason, url })),
      HttpApiDecodeError: (e) => Effect.fail(new InvalidInput({ reason: `rejected by the server: ${e.message}` }))
    })

  /** One logical call: attempts retried on Transient failures, the whole within the transfer deadline. */
  const withRetry = <A, E>(url: string, attempt: Effect.Effect<A, E | Transient>) =>
    retrying(url, attempt, policy, { deadlineMs: limits.deadlineMs })

  /** The response headers of a request, within the exchange deadline. */
  const headersOf = <E, R>(request: Effect.Effect<HttpClientResponse.HttpClientResponse, E, R>) =>
    request.pipe(
      Effect.timeoutFail({
        duration: exchange,
        onTimeout: () => transient(408, `no answer within ${limits.exchangeMs / 1000} s`)
      })
    )

  /** A raw call whose failure statuses are read from the body. */
  const checked =
    (url: string) =>
    (
      response: HttpClientResponse.HttpClientResponse
    ): Effect.Effect<HttpClientResponse.HttpClientResponse, SyncApiError | Transient> =>
      response.status >= 200 && response.status < 300
        ? Effect.succeed(response)
        : answerText(response).pipe(
            Effect.flatMap((body) =>
              Effect.fail(fromStatus(response.status, body, url, response.headers["retry-after"]))
            )
          )

  /** A response body that fails with Transient when it breaks off. */
  const bodyOf = (response: HttpClientResponse.HttpClientResponse): Stream.Stream<Uint8Array, Transient> =>
    Stream.mapError(response.stream, (e) => transient(0, `connection lost during the answer: ${describe(e)}`))

  /** The pace of one answer's body: slower than the minimum rate is Transient. */
  const answerPace = () => pace(limits, (why) => transient(408, `answer too slow: ${why}`))

  let serverReads: ReadonlyArray<ArchiveFormat> | undefined
  let serverKeeps: ReadonlyArray<EntryKind> = []
  const heard = (answer: ManifestAnswer) => {
    serverReads = parseFormats(answer.formats)
    serverKeeps = entryKindsOf(answer.entries, answer.formats)
  }
  // The manifest is fetched raw: it is on every run's path, and the typed client's request builder touches
  // the global FormData, which makes Node load its whole fetch implementation.
  const manifest = (options: ManifestOptions = {}) => {
    const url = `${baseUrl}${FilesRoutes.manifest}`
    const known = options.revision === undefined && options.known?.revision != null ? options.known : undefined
    let request = HttpClientRequest.get(url)
    if (options.revision !== undefined) request = HttpClientRequest.setUrlParam(request, "revision", options.revision)
    if (known !== undefined)
      request = HttpClientRequest.setHeader(request, "if-none-match", manifestEtag(known.revision!))
    const attempt = Effect.suspend(() => {
      const p = answerPace()
      return httpPart(
        url,
        headersOf(authed.execute(request)).pipe(
          Effect.tap((response) => {
            if (response.status === 200 || response.status === 304)
              heard({
                formats: response.headers[ARCHIVE_FORMATS_HEADER],
                entries: response.headers[ENTRY_KINDS_HEADER]
              })
          }),
          Effect.flatMap((response) =>
            response.status === 304 && known !== undefined
              ? Effect.succeed(known)
              : checked(url)(response).pipe(Effect.flatMap((ok) => p.guard(decodeManifest(p.count(bodyOf(ok)), url))))
          ),
          Effect.scoped
        )
      )
    })
    return withRetry(url, attempt).pipe(Effect.withSpan("SyncApiClient.manifest"))
  }

  const revisions = (limit?: number) => {
    const urlParams = limit === undefined ? {} : { limit }
    const call =
      endpoint.mode === "direct"
        ? Effect.flatMap(filesApi, (api) => api.revisions({ urlParams }))
        : Effect.flatMap(cloudFilesApi, (api) => api.revisions({ path: { tenantId: endpoint.tenantId }, urlParams }))
    const url = `${baseUrl}${FilesRoutes.revisions}`
    return withRetry(url, httpPart(url, Effect.timeout(call, exchange))).pipe(
      Effect.withSpan("SyncApiClient.revisions")
    )
  }

  const upload = <E>(body: () => Stream.Stream<Uint8Array, E>, idempotencyKey: string, format?: ArchiveFormat) => {
    const url = `${baseUrl}${FilesRoutes.upload}`
    const attempt = Effect.gen(function* () {
      // Once the whole body has gone, the answer must come within the exchange deadline.
      const sent = yield* Deferred.make<void>()
      const p = pace(limits, (why) => transient(408, `upload too slow: ${why}`))
      const stream = p.count(body()).pipe(Stream.ensuring(Deferred.succeed(sent, undefined)))
      const answer = httpPart(
        url,
        uploader
          .execute(
            HttpClientRequest.post(url).pipe(
              HttpClientRequest.setHeader(IDEMPOTENCY_HEADER, idempotencyKey),
              HttpClientRequest.bodyStream(stream, {
                contentType: format === "zstd" ? "application/zstd" : "application/gzip"
              })
            )
          )
          .pipe(
            Effect.flatMap(checked(url)),
            // The answer is small: a body cut short is Transient (the idempotency key makes the retry safe).
            Effect.flatMap((r) =>
              Effect.flatMap(readAnswer(bodyOf(r)), Schema.decodeUnknown(Schema.parseJson(UploadResult)))
            )
          )
      )
      const silence = Deferred.await(sent).pipe(
        Effect.zipRight(Effect.sleep(exchange)),
        Effect.zipRight(
          Effect.fail(transient(408, `no answer within ${limits.exchangeMs / 1000} s of the upload's end`))
        )
      )
      return yield* p.guard(Effect.raceFirst(answer, silence))
    }).pipe(Effect.scoped)
    return withRetry(url, attempt).pipe(Effect.withSpan("SyncApiClient.upload"))
  }

  const download = <A, E>(
    revision: string,
    paths: () => ReadonlyArray<string> | undefined,
    consume: (body: Stream.Stream<Uint8Array, Transient>) => Effect.Effect<A, E | Transient>
  ) => {
    const whole = `${baseUrl}${FilesRoutes.download}?revision=${encodeURIComponent(revision)}`
    const attempt = Effect.suspend(() => {
      const wanted = paths()
      const request = HttpClientRequest.setHeader(
        wanted === undefined
          ? HttpClientRequest.get(whole)
          : HttpClientRequest.post(`${baseUrl}${FilesRoutes.select}`).pipe(
              HttpClientRequest.bodyUnsafeJson({ revision, paths: wanted })
            ),
        // What this Node reads: the server answers in one of them.
        ARCHIVE_FORMATS_HEADER,
        FORMATS.join(", ")
      )
      const p = answerPace()
      return httpPart(request.url, Effect.flatMap(headersOf(authed.execute(request)), checked(request.url))).pipe(
        Effect.flatMap((response) => p.guard(consume(p.count(bodyOf(response))))),
        Effect.scoped
      )
    })
    return withRetry(whole, attempt).pipe(Effect.withSpan("SyncApiClient.download"))
  }

  return SyncApiClient.of({
    endpoint,
    baseUrl,
    manifest,
    revisions,
    upload,
    download,
    serverFormats: () => serverReads,
    compress: options.compress ?? "auto",
    serverEntryKinds: () => serverKeeps,
    heard
  })
})

/**
 * The client on Node's HTTP stack: node:http with a keep-alive agent for the exchanges and downloads (it
 * starts faster than fetch, whose implementation Node loads on first use), fetch for uploads (see `make`).
 */
export const layer = (options: SyncApiOptions): Layer.Layer<SyncApiClient> =>
  Layer.effect(SyncApiClient, make(options)).pipe(Layer.provide(NodeHttpClient.layer))

/** A tenant-API client from the configuration in force (AGENTSYNC_DIRECT_URL, or AGENTSYNC_API_URL + AGENTSYNC_TENANT_ID). */
export const fromConfig = <I>(
  layerOf: (options: SyncApiOptions) => Layer.Layer<I>
): Layer.Layer<I, MissingConfig, CurrentConfig> =>
  Layer.unwrapEffect(Effect.map(Effect.flatMap(CurrentConfig, optionsFromConfig), layerOf))

/** The client from the configuration in force. */
export const layerFromConfig: Layer.Layer<SyncApiClient, MissingConfig, CurrentConfig> = fromConfig(layer)

export { RemoteManifest }
