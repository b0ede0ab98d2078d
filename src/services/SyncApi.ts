/** SyncApiClient: the tenant API client, direct-sync or cloud-relay, with bearer auth, timeouts and a bounded retry. */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as HttpApiClient from "@effect/platform/HttpApiClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { Context, Data, Duration, Effect, Layer, Option, Redacted, Schedule, Schema, Stream } from "effect"
import {
  AgentsyncApi,
  CLOUD_PREFIX,
  FilesRoutes,
  IDEMPOTENCY_HEADER,
  manifestEtag,
  RemoteManifest,
  type RevisionInfo,
  SYNC_PREFIX,
  UploadResult
} from "../api/index.js"
import { CurrentConfig, type SyncConfig } from "../config.js"
import { ApiError, Conflict, InvalidInput, MissingConfig, TarballUnsafe, Unauthorized } from "../errors.js"

/** Where the tenant lives: its own origin (direct) or a shared API naming the tenant (relay). */
export type SyncEndpoint =
  | { readonly mode: "direct"; readonly origin: string }
  | { readonly mode: "relay"; readonly api: string; readonly tenantId: string }

export interface RetryPolicy {
  /** Retries after the first attempt. */
  readonly maxRetries: number
  readonly base: Duration.DurationInput
  readonly factor: number
  /** No single wait is longer, whatever the backoff or Retry-After says. */
  readonly cap: Duration.DurationInput
}

export const defaultRetry: RetryPolicy = { maxRetries: 4, base: "250 millis", factor: 2, cap: "10 seconds" }

export interface SyncApiOptions {
  readonly endpoint: SyncEndpoint
  readonly token: Redacted.Redacted<string>
  readonly retry?: RetryPolicy
  /** A request/response exchange (manifest, revisions); transfers use `transferTimeout`. */
  readonly timeout?: Duration.DurationInput
  readonly transferTimeout?: Duration.DurationInput
}

/** What a call can end in, once retries are spent. */
export type SyncApiError = Unauthorized | ApiError | Conflict | InvalidInput | TarballUnsafe

/** A failure worth another attempt: 408/429/502/503/504, a transport error, or a timeout. */
class Transient extends Data.TaggedError("Transient")<{
  readonly status: number
  readonly reason: string
  readonly retryAfter: Option.Option<Duration.Duration>
}> {}

const RETRYABLE = new Set([408, 429, 502, 503, 504])

/** `Retry-After` as seconds or an HTTP date. */
export const parseRetryAfter = (value: string | undefined, now = Date.now()): Option.Option<Duration.Duration> => {
  if (value === undefined || value.trim() === "") return Option.none()
  const seconds = Number(value)
  if (Number.isFinite(seconds) && seconds >= 0) return Option.some(Duration.seconds(seconds))
  const date = Date.parse(value)
  return Number.isNaN(date) ? Option.none() : Option.some(Duration.millis(Math.max(0, date - now)))
}

/** Exponential backoff with jitter, each wait capped, at least any Retry-After; only transient failures. */
export const retrySchedule = (policy: RetryPolicy) =>
  Schedule.exponential(policy.base, policy.factor).pipe(
    Schedule.jittered,
    Schedule.intersect(Schedule.recurs(policy.maxRetries)),
    Schedule.intersect(Schedule.identity<SyncApiError | Transient>()),
    Schedule.whileInput((e: SyncApiError | Transient) => e._tag === "Transient"),
    Schedule.modifyDelay(([, e], delay) => {
      const floor = e._tag === "Transient" ? Option.getOrElse(e.retryAfter, () => Duration.zero) : Duration.zero
      return Duration.min(Duration.max(delay, floor), Duration.decode(policy.cap))
    })
  )

const WireError = Schema.Struct({
  _tag: Schema.String,
  reason: Schema.optional(Schema.String),
  message: Schema.optional(Schema.String),
  entry: Schema.optional(Schema.String)
})

/** Maps a failure status and its body to the error family; retryable statuses become Transient. */
const fromStatus = (status: number, body: string, url: string, retryAfter: string | undefined): SyncApiError | Transient => {
  const parsed = Schema.decodeUnknownOption(Schema.parseJson(WireError))(body)
  const entry = Option.flatMap(parsed, (e) => Option.fromNullable(e.entry))
  const reason = Option.match(parsed, {
    onNone: () => body.trim().slice(0, 300) || `HTTP ${status}`,
    onSome: (e) => e.reason ?? e.message ?? e._tag
  })
  if (RETRYABLE.has(status)) return new Transient({ status, reason, retryAfter: parseRetryAfter(retryAfter) })
  switch (status) {
    case 401:
      return new Unauthorized({ reason: `${reason} (401 from ${url})` })
    case 403:
      return new Unauthorized({ reason: `${reason} (403 from ${url})` })
    case 409:
      return new Conflict({ reason })
    case 422:
      return new TarballUnsafe({ reason: `rejected by the server: ${reason}`, ...Option.match(entry, { onNone: () => ({}), onSome: (e) => ({ entry: e }) }) })
    case 400:
      return new InvalidInput({ reason: `rejected by the server: ${reason}` })
    default:
      return new ApiError({ status, reason, url })
  }
}

/** A transport failure in words: its message and the first system error code down its cause chain (fetch nests it). */
const describe = (cause: unknown): string => {
  if (!(cause instanceof Error)) return String(cause)
  let code = ""
  let inner: unknown = (cause as { cause?: unknown }).cause
  for (let depth = 0; depth < 5 && typeof inner === "object" && inner !== null && code === ""; depth++) {
    if ("code" in inner && typeof inner.code === "string") code = ` (${inner.code})`
    inner = (inner as { cause?: unknown }).cause
  }
  return `${cause.message}${code}`
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
   * A revision's manifest, the head by default. Given `known`, a head manifest held from an earlier call, the
   * request is conditional (If-None-Match): while the head is still `known.revision` the answer is `known`
   * itself and no manifest crosses the network.
   */
  readonly manifest: (options?: ManifestOptions) => Effect.Effect<RemoteManifest, SyncApiError>
  readonly revisions: (limit?: number) => Effect.Effect<ReadonlyArray<RevisionInfo>, SyncApiError>
  /**
   * Uploads an archive; `body` is re-created for each attempt. The idempotency key makes a retried upload
   * that had in fact committed answer with the same revision instead of a second one.
   */
  readonly upload: <E>(body: () => Stream.Stream<Uint8Array, E>, idempotencyKey: string) => Effect.Effect<UploadResult, SyncApiError | E>
  /** Downloads a revision (all of it, or the given paths) as a tar.gz stream; the request itself is retried. */
  readonly download: (revision: string, paths?: ReadonlyArray<string>) => Effect.Effect<Stream.Stream<Uint8Array, SyncApiError>, SyncApiError>
}

export class SyncApiClient extends Context.Tag("agentsync/SyncApiClient")<SyncApiClient, SyncApiClientShape>() {}

const trimSlash = (s: string) => s.replace(/\/+$/, "")

const checkUrl = (key: string, value: string): Effect.Effect<string, MissingConfig> => {
  const ok = /^https?:\/\/[^\s]+$/.test(value)
  return ok ? Effect.succeed(trimSlash(value)) : Effect.fail(new MissingConfig({ key, reason: `must be an http(s) URL, got ${JSON.stringify(value.slice(0, 80))}` }))
}

/** The endpoint and token from a SyncConfig: direct origin first, else API URL + tenant id. */
export const optionsFromConfig = (config: SyncConfig): Effect.Effect<SyncApiOptions, MissingConfig> =>
  Effect.gen(function* () {
    const token = config.token
    if (token === undefined) return yield* new MissingConfig({ key: "AGENTSYNC_TOKEN", reason: "set it to a token from `agentsync tenant create`" })
    let endpoint: SyncEndpoint
    if (config.directUrl !== undefined) {
      endpoint = { mode: "direct", origin: yield* checkUrl("AGENTSYNC_DIRECT_URL", config.directUrl) }
    } else if (config.apiUrl !== undefined) {
      if (config.tenantId === undefined) {
        return yield* new MissingConfig({ key: "AGENTSYNC_TENANT_ID", reason: "cloud-relay mode (AGENTSYNC_API_URL) needs the tenant id" })
      }
      if (!/^[a-z0-9][a-z0-9-]{0,63}$/.test(config.tenantId)) {
        return yield* new MissingConfig({ key: "AGENTSYNC_TENANT_ID", reason: "not a tenant id (lowercase letters, digits, '-')" })
      }
      endpoint = { mode: "relay", api: yield* checkUrl("AGENTSYNC_API_URL", config.apiUrl), tenantId: config.tenantId }
    } else {
      return yield* new MissingConfig({
        key: "AGENTSYNC_DIRECT_URL",
        reason: "set AGENTSYNC_DIRECT_URL (direct sync), or AGENTSYNC_API_URL and AGENTSYNC_TENANT_ID (cloud relay)"
      })
    }
    const env = (name: string) => {
      const v = process.env[name]
      const n = v === undefined ? Number.NaN : Number(v)
      return Number.isFinite(n) && n >= 0 ? Option.some(n) : Option.none()
    }
    const retry: RetryPolicy = {
      maxRetries: Option.getOrElse(env("AGENTSYNC_RETRY_MAX"), () => defaultRetry.maxRetries),
      base: Option.match(env("AGENTSYNC_RETRY_BASE_MS"), { onNone: () => defaultRetry.base, onSome: Duration.millis }),
      factor: defaultRetry.factor,
      cap: Option.match(env("AGENTSYNC_RETRY_CAP_MS"), { onNone: () => defaultRetry.cap, onSome: Duration.millis })
    }
    const timeout = Option.match(env("AGENTSYNC_TIMEOUT_MS"), { onNone: () => Duration.seconds(30), onSome: Duration.millis })
    return { endpoint, token, retry, timeout }
  })

export const make = Effect.fn("SyncApiClient.make")(function* (options: SyncApiOptions) {
  const http = yield* HttpClient.HttpClient
  const policy = options.retry ?? defaultRetry
  const timeout = Duration.decode(options.timeout ?? "30 seconds")
  const transferTimeout = Duration.decode(options.transferTimeout ?? "30 minutes")
  const endpoint = options.endpoint
  const origin = endpoint.mode === "direct" ? endpoint.origin : endpoint.api
  const prefix = endpoint.mode === "direct" ? SYNC_PREFIX : `${CLOUD_PREFIX}/${endpoint.tenantId}`
  const baseUrl = `${origin}${prefix}`
  const bearer = HttpClient.mapRequest(HttpClientRequest.bearerToken(Redacted.value(options.token)))
  const authed = http.pipe(bearer)
  // Uploads go through fetch: it pulls the body stream as the socket drains, so a slow server never makes
  // the client buffer the archive (Node's client writes a streamed body without waiting for 'drain').
  const uploader = (yield* Effect.provide(HttpClient.HttpClient, FetchHttpClient.layer)).pipe(bearer)
  // Failure statuses are classified here from status and body (a proxy's 502 page has no schema), so the
  // typed client only ever decodes successes. It is built on first use, for the one URL family in use.
  const typedOptions = { httpClient: HttpClient.filterStatusOk(authed), baseUrl: origin }
  const filesApi = yield* Effect.cached(HttpApiClient.group(AgentsyncApi, { group: "files", ...typedOptions }))
  const cloudFilesApi = yield* Effect.cached(HttpApiClient.group(AgentsyncApi, { group: "cloudFiles", ...typedOptions }))

  /** Classifies any failure of one attempt. */
  const classify = (url: string) => (error: unknown): Effect.Effect<never, SyncApiError | Transient> => {
    if (typeof error === "object" && error !== null && "_tag" in error) {
      const e = error as { _tag: string; reason?: unknown; response?: HttpClientResponse.HttpClientResponse; message?: string }
      switch (e._tag) {
        case "Unauthorized":
        case "Conflict":
        case "ApiError":
        case "InvalidInput":
        case "TarballUnsafe":
        case "Transient":
          return Effect.fail(error as SyncApiError | Transient)
        case "Forbidden":
          return Effect.fail(new Unauthorized({ reason: `${String(e.reason)} (403 from ${url})` }))
        case "NotFound":
          return Effect.fail(new ApiError({ status: 404, reason: String(e.reason), url }))
        case "TimeoutException":
          return Effect.fail(new Transient({ status: 408, reason: "timed out", retryAfter: Option.none() }))
        case "RequestError":
          return Effect.fail(new Transient({ status: 0, reason: describe(error), retryAfter: Option.none() }))
        case "ResponseError": {
          const response = e.response
          if (response === undefined) return Effect.fail(new ApiError({ status: 0, reason: describe(error), url }))
          return response.text.pipe(
            Effect.orElseSucceed(() => ""),
            Effect.flatMap((body) => Effect.fail(fromStatus(response.status, body, url, response.headers["retry-after"])))
          )
        }
        case "ParseError":
          return Effect.fail(new ApiError({ status: 200, reason: `unexpected response: ${String(e.message).slice(0, 300)}`, url }))
      }
    }
    return Effect.fail(new ApiError({ status: 0, reason: describe(error), url }))
  }

  /** One logical call: attempts with timeout, retried on transient failures, then one clear error. */
  const withRetry = <A, E>(url: string, attempt: Effect.Effect<A, E>, limit: Duration.Duration) => {
    let attempts = 0
    return Effect.suspend(() => {
      attempts++
      return attempt
    }).pipe(
      Effect.timeout(limit),
      Effect.catchAll(classify(url)),
      Effect.retry(retrySchedule(policy)),
      Effect.catchTag("Transient", (t) =>
        Effect.fail(
          new ApiError({
            status: t.status,
            reason: `${t.status === 0 ? "server unreachable" : t.reason} (gave up after ${attempts} attempt${attempts === 1 ? "" : "s"}${t.status === 0 ? `: ${t.reason}` : ""})`,
            url
          })
        )
      )
    )
  }

  /** A raw call whose failure statuses are read from the body. */
  const checked =
    (url: string) =>
    (response: HttpClientResponse.HttpClientResponse): Effect.Effect<HttpClientResponse.HttpClientResponse, SyncApiError | Transient> =>
      response.status >= 200 && response.status < 300
        ? Effect.succeed(response)
        : response.text.pipe(
            Effect.orElseSucceed(() => ""),
            Effect.flatMap((body) => Effect.fail(fromStatus(response.status, body, url, response.headers["retry-after"])))
          )

  // The manifest is fetched raw: it is on every run's path, and the typed client's request builder touches
  // the global FormData, which makes Node load its whole fetch implementation.
  const manifest = (options: ManifestOptions = {}) => {
    const url = `${baseUrl}${FilesRoutes.manifest}`
    const known = options.revision === undefined && options.known?.revision != null ? options.known : undefined
    let request = HttpClientRequest.get(url)
    if (options.revision !== undefined) request = HttpClientRequest.setUrlParam(request, "revision", options.revision)
    if (known !== undefined) request = HttpClientRequest.setHeader(request, "if-none-match", manifestEtag(known.revision!))
    const attempt = authed.execute(request).pipe(
      Effect.flatMap((response) =>
        response.status === 304 && known !== undefined
          ? Effect.succeed(known)
          : checked(url)(response).pipe(
              Effect.flatMap((ok) => Effect.mapError(ok.json, (e) => new ApiError({ status: ok.status, reason: `unexpected response: ${e.message}`, url }))),
              Effect.flatMap(Schema.decodeUnknown(RemoteManifest))
            )
      ),
      Effect.scoped
    )
    return withRetry(url, attempt, timeout).pipe(Effect.withSpan("SyncApiClient.manifest"))
  }

  const revisions = (limit?: number) => {
    const urlParams = limit === undefined ? {} : { limit }
    const call =
      endpoint.mode === "direct"
        ? Effect.flatMap(filesApi, (api) => api.revisions({ urlParams }))
        : Effect.flatMap(cloudFilesApi, (api) => api.revisions({ path: { tenantId: endpoint.tenantId }, urlParams }))
    return withRetry(`${baseUrl}${FilesRoutes.revisions}`, call, timeout).pipe(Effect.withSpan("SyncApiClient.revisions"))
  }

  const upload = <E>(body: () => Stream.Stream<Uint8Array, E>, idempotencyKey: string) => {
    const url = `${baseUrl}${FilesRoutes.upload}`
    const attempt = Effect.suspend(() =>
      uploader.execute(
        HttpClientRequest.post(url).pipe(
          HttpClientRequest.setHeader(IDEMPOTENCY_HEADER, idempotencyKey),
          HttpClientRequest.bodyStream(body(), { contentType: "application/gzip" })
        )
      )
    ).pipe(
      Effect.flatMap(checked(url)),
      Effect.flatMap((r) => Effect.flatMap(r.json, Schema.decodeUnknown(UploadResult))),
      Effect.scoped
    )
    return withRetry(url, attempt, transferTimeout).pipe(Effect.withSpan("SyncApiClient.upload")) as Effect.Effect<
      UploadResult,
      SyncApiError | E
    >
  }

  const download = (revision: string, paths?: ReadonlyArray<string>) => {
    const url = paths === undefined ? `${baseUrl}${FilesRoutes.download}?revision=${encodeURIComponent(revision)}` : `${baseUrl}${FilesRoutes.select}`
    const request =
      paths === undefined
        ? HttpClientRequest.get(url)
        : HttpClientRequest.post(url).pipe(HttpClientRequest.bodyUnsafeJson({ revision, paths }))
    const attempt = authed.execute(request).pipe(Effect.flatMap(checked(url)))
    return withRetry(url, attempt, timeout).pipe(
      Effect.map((response) =>
        response.stream.pipe(
          Stream.timeoutFail(() => new ApiError({ status: 408, reason: "download timed out", url }), transferTimeout),
          Stream.catchAll((e) =>
            Stream.fail(e._tag === "ApiError" ? e : new ApiError({ status: 0, reason: `download interrupted: ${describe(e)}`, url }))
          )
        )
      ),
      Effect.withSpan("SyncApiClient.download")
    )
  }

  return SyncApiClient.of({ endpoint, baseUrl, manifest, revisions, upload, download })
})

/**
 * The client on Node's HTTP stack: node:http with a keep-alive agent for the exchanges and downloads (it
 * starts faster than fetch, whose implementation Node loads on first use), fetch for uploads (see `make`).
 */
export const layer = (options: SyncApiOptions): Layer.Layer<SyncApiClient> =>
  Layer.effect(SyncApiClient, make(options)).pipe(Layer.provide(NodeHttpClient.layer))

/** The client from the configuration in force (AGENTSYNC_DIRECT_URL, or AGENTSYNC_API_URL + AGENTSYNC_TENANT_ID). */
export const layerFromConfig: Layer.Layer<SyncApiClient, MissingConfig, CurrentConfig> = Layer.effect(
  SyncApiClient,
  Effect.flatMap(CurrentConfig, optionsFromConfig).pipe(Effect.flatMap(make))
).pipe(Layer.provide(NodeHttpClient.layer))

export { RemoteManifest }
