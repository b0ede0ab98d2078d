/** SyncApiClient: the tenant API client, direct-sync or cloud-relay, with bearer auth, timeouts and a bounded retry. */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiClient from "@effect/platform/HttpApiClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Context, Deferred, Duration, Effect, Either, Layer, Redacted, Schema, type Scope, Stream } from "effect"
import {
  CLOUD_PREFIX,
  CloudFilesGroup,
  FilesRoutes,
  IDEMPOTENCY_HEADER,
  manifestEtag,
  REVISION_HEADER,
  RemoteManifest,
  type RevisionInfo,
  SYNC_PREFIX,
  SyncFilesGroup,
  UploadResult
} from "../api/files.js"
import type { CurrentConfig } from "../config.js"
import {
  ARCHIVE_FORMATS_HEADER,
  type ArchiveFormat,
  type CompressSetting,
  ENTRY_KINDS_HEADER,
  type EntryKind,
  entryKindsOf,
  FORMATS,
  parseFormats,
  parseUploadForms,
  TRANSFER,
  type TransferLimits,
  UPLOAD_FORMS_HEADER,
  type UploadForm
} from "../domain/caps.js"
import { ApiError, type MissingConfig } from "../errors.js"
import { BadFraming } from "./httpResponse.js"
import { pace } from "./Pace.js"
import { answerPace, bodyOf, checked, classified, decodeManifest, withinExchange } from "./SyncApiExchange.js"
import { type RawAnswer, type RawGetOptions, rawGet, rawGetApplies, type StartedGet, startGet } from "./SyncApiGet.js"
import { checkToken, fromConfig, type SyncApiOptions, type SyncEndpoint } from "./SyncApiOptions.js"
import { postStream } from "./SyncApiUpload.js"
import type { ManifestAnswer } from "./state.js"
import {
  defaultRetry,
  fromStatus,
  readAnswer,
  retrying,
  type SyncApiError,
  type Transient,
  transient
} from "./Transport.js"

export {
  checkToken,
  fromConfig,
  optionsFromConfig,
  type SyncApiOptions,
  type SyncEndpoint
} from "./SyncApiOptions.js"
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

/**
 * How a download's consumer reads it: its pieces (`RawGetOptions`), and the archive formats it reads, named in the
 * request (default `FORMATS`; a pull, which verifies every file, names a plain tar too: `DOWNLOAD_FORMATS`).
 */
export interface ReadingOptions extends RawGetOptions {
  readonly formats?: ReadonlyArray<ArchiveFormat>
}

/** A download's options: how its consumer reads it, and a GET of the head sent ahead (`startDownload`). */
export interface DownloadOptions extends ReadingOptions {
  /**
   * Taken by the first attempt when it fetches the whole tree and the answer names the revision asked for (else
   * closed, and the attempt asks as without it); closed once that attempt ends.
   */
  readonly early?: EarlyDownload | undefined
}

/** The GET of the head's whole tree, sent before its caller knows it wants it (see `startDownload`). */
export type EarlyDownload = StartedGet

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
   * that had in fact committed (its answer lost) answer with the same revision instead of a second one. The body is
   * pulled as the socket drains, and `written` gets each of its chunks once the socket has written it (a pool of
   * the body's buffers may hand it out again then, not before). A failure of the body is its own, not retried.
   */
  readonly upload: <E>(
    body: () => Stream.Stream<Uint8Array, E>,
    idempotencyKey: string,
    format?: ArchiveFormat,
    written?: (chunk: Uint8Array) => void
  ) => Effect.Effect<UploadResult, SyncApiError | E>
  /**
   * Downloads a revision (all of it when `paths()` is undefined, else those paths) as a tar.gz stream handed
   * to `consume`. A transport failure (a body cut short, too slow) fails the stream with `Transient`, which
   * `consume` lets through: the call is then retried, asking `paths()` again, so a consumer that keeps what
   * it has verified resumes with the rest. With `reuse`, `consume` is done with each piece by its next pull but for
   * the views it `hold`s (`heldViews`), so the memory read into may be read into again (see `SyncApiGet`). With
   * `early`, the first attempt of the whole tree reads that answer if it is of `revision`.
   */
  readonly download: <A, E>(
    revision: string,
    paths: () => ReadonlyArray<string> | undefined,
    consume: (body: Stream.Stream<Uint8Array, Transient>) => Effect.Effect<A, E | Transient>,
    options?: DownloadOptions
  ) => Effect.Effect<A, SyncApiError | E>
  /**
   * Sends the GET of the head's whole tree now, for a `download` that will most likely want it (a pull into an empty
   * tree): the server reads and sends while the caller plans, and the answer's head and first bytes are in when the
   * download begins. Read as `options` says (the download's consumer must read so). Undefined where a whole download
   * does not go on a socket of its own (not plain HTTP). Its socket is destroyed when the scope closes, used or not;
   * nothing is retried or reported for it: a download that cannot use it asks again.
   */
  readonly startDownload: (options?: ReadingOptions) => Effect.Effect<EarlyDownload | undefined, never, Scope.Scope>
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
  /**
   * The upload forms beyond the header form the server said it reads, on its last manifest answer (none before one,
   * or from a server that predates them): a first upload streams in the trailer form only where it is named.
   */
  readonly serverUploadForms: () => ReadonlyArray<UploadForm>
  /** Takes what a manifest answer had elsewhere in this process said (the settled check's 304), as if it were its own. */
  readonly heard: (answer: ManifestAnswer) => void
}

const firstOf = (value: string | ReadonlyArray<string> | undefined) => (typeof value === "string" ? value : value?.[0])

export class SyncApiClient extends Context.Tag("agentsync/SyncApiClient")<SyncApiClient, SyncApiClientShape>() {}

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
  // Failure statuses are classified here from status and body (a proxy's 502 page has no schema), so the
  // typed client only ever decodes successes. It is built on first use, for the one URL family in use.
  const typedOptions = { httpClient: HttpClient.filterStatusOk(authed), baseUrl: origin }
  const filesApi = yield* Effect.cached(HttpApiClient.group(FilesApi, { group: "files", ...typedOptions }))
  const cloudFilesApi = yield* Effect.cached(HttpApiClient.group(FilesApi, { group: "cloudFiles", ...typedOptions }))

  /** One logical call: attempts retried on Transient failures, the whole within the transfer deadline. */
  const withRetry = <A, E>(url: string, attempt: Effect.Effect<A, E | Transient>) =>
    retrying(url, attempt, policy, { deadlineMs: limits.deadlineMs })

  let serverReads: ReadonlyArray<ArchiveFormat> | undefined
  let serverKeeps: ReadonlyArray<EntryKind> = []
  let serverTakes: ReadonlyArray<UploadForm> = []
  const heard = (answer: ManifestAnswer) => {
    serverReads = parseFormats(answer.formats)
    serverKeeps = entryKindsOf(answer.entries, answer.formats)
    serverTakes = parseUploadForms(answer.uploads)
  }
  // The manifest is fetched raw: it is on every run's path, and the typed client's request builder touches
  // the global FormData, which makes Node load its whole fetch implementation.
  const manifest = (options: ManifestOptions = {}) => {
    const url = `${baseUrl}${FilesRoutes.manifest}`
    // A held head manifest makes the request conditional on its revision (a manifest of no revision is no head).
    const held = options.revision === undefined ? options.known : undefined
    const heldRevision = held?.revision ?? undefined
    const known = heldRevision === undefined ? undefined : held
    let request = HttpClientRequest.get(url)
    if (options.revision !== undefined) request = HttpClientRequest.setUrlParam(request, "revision", options.revision)
    if (heldRevision !== undefined)
      request = HttpClientRequest.setHeader(request, "if-none-match", manifestEtag(heldRevision))
    const attempt = Effect.suspend(() => {
      const p = answerPace(limits)
      return classified(
        url,
        withinExchange(limits, authed.execute(request)).pipe(
          Effect.tap((response) => {
            if (response.status === 200 || response.status === 304)
              heard({
                formats: response.headers[ARCHIVE_FORMATS_HEADER],
                entries: response.headers[ENTRY_KINDS_HEADER],
                uploads: response.headers[UPLOAD_FORMS_HEADER]
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
    return withRetry(url, classified(url, Effect.timeout(call, exchange))).pipe(
      Effect.withSpan("SyncApiClient.revisions")
    )
  }

  const upload = <E>(
    body: () => Stream.Stream<Uint8Array, E>,
    idempotencyKey: string,
    format?: ArchiveFormat,
    written?: (chunk: Uint8Array) => void
  ) => {
    const url = `${baseUrl}${FilesRoutes.upload}`
    const headers = {
      authorization: `Bearer ${Redacted.value(token)}`,
      [IDEMPOTENCY_HEADER]: idempotencyKey,
      "content-type": format === "zstd" ? "application/zstd" : "application/gzip"
    }
    const attempt = Effect.gen(function* () {
      // Once the whole body has gone, the answer must come within the exchange deadline.
      const sent = yield* Deferred.make<void>()
      const p = pace(limits, (why) => transient(408, `upload too slow: ${why}`))
      const stream = p.count(body()).pipe(Stream.ensuring(Deferred.succeed(sent, undefined)))
      const answer = postStream(url, headers, stream, written).pipe(
        Effect.flatMap((a) =>
          a.status >= 200 && a.status < 300
            ? Effect.mapError(
                Schema.decodeUnknown(Schema.parseJson(UploadResult))(a.text),
                (e) => new ApiError({ kind: "Decode", status: a.status, reason: e.message.slice(0, 300), url })
              )
            : Effect.fail(fromStatus(a.status, a.text, url, firstOf(a.headers["retry-after"])))
        )
      )
      const silence = Deferred.await(sent).pipe(
        Effect.zipRight(Effect.sleep(exchange)),
        Effect.zipRight(
          Effect.fail(transient(408, `no answer within ${limits.exchangeMs / 1000} s of the upload's end`))
        )
      )
      return yield* p.guard(Effect.raceFirst(answer, silence))
    })
    return withRetry(url, attempt).pipe(Effect.withSpan("SyncApiClient.upload"))
  }

  /**
   * One attempt of a whole download on `rawGet`: as the platform client's attempt below, its failures read the same
   * way (a status from its body, a break as Transient), and a framing refused in the body its own error, not retried.
   */
  const downloadHeaders = (formats: ReadonlyArray<ArchiveFormat> = FORMATS) => ({
    authorization: `Bearer ${Redacted.value(token)}`,
    [ARCHIVE_FORMATS_HEADER]: formats.join(", ")
  })
  const headUrl = new URL(`${baseUrl}${FilesRoutes.download}`)
  const startDownload = Effect.fn("SyncApiClient.startDownload")(function* (options: ReadingOptions = {}) {
    return rawGetApplies(headUrl) ? yield* startGet(headUrl, downloadHeaders(options.formats), options) : undefined
  })

  /**
   * The answer of a GET sent ahead, when it is the one this attempt would ask for: a 2xx answer naming `revision`
   * (the head it asked for may have moved since, or the server may not say). Anything else, a failure included, is
   * closed and left unread: the attempt asks again, and meets any lasting failure itself. Only the first await gets
   * the answer (`StartedGet.answer`): a later attempt asks again.
   */
  const earlyAnswer = Effect.fn("SyncApiClient.earlyAnswer")(function* (early: EarlyDownload, revision: string) {
    const a = yield* Effect.either(withinExchange(limits, early.answer))
    return Either.isRight(a) &&
      a.right !== undefined &&
      a.right.status >= 200 &&
      a.right.status < 300 &&
      a.right.headers[REVISION_HEADER] === revision
      ? a.right
      : undefined
  })

  const rawDownload = <A, E>(
    url: URL,
    consume: (body: Stream.Stream<Uint8Array, Transient>) => Effect.Effect<A, E | Transient>,
    options: ReadingOptions,
    early?: { readonly get: EarlyDownload; readonly revision: string }
  ): Effect.Effect<A, E | SyncApiError | Transient> => {
    const p = answerPace(limits)
    // The URL the answer read is of, for its errors: the GET sent ahead's when its answer is read.
    let answered = url
    const decodeError = (e: BadFraming) =>
      new ApiError({ kind: "Decode", status: e.status, reason: e.message, url: answered.href })
    const asked = withinExchange(limits, rawGet(url, downloadHeaders(options.formats), options))
    const head =
      early === undefined
        ? asked
        : Effect.flatMap(earlyAnswer(early.get, early.revision), (a) => {
            if (a === undefined) return Effect.zipRight(early.get.close, asked)
            answered = headUrl
            return Effect.succeed(a)
          })
    const read = (answer: RawAnswer): Effect.Effect<A, E | SyncApiError | Transient> => {
      if (answer.status < 200 || answer.status >= 300)
        return Effect.flatMap(
          Effect.orElseSucceed(readAnswer(answer.body), () => ""),
          (body) => Effect.fail(fromStatus(answer.status, body, answered.href, answer.headers["retry-after"]))
        )
      // A framing refused in the body is the call's error whatever the consumer made of the bytes it was fed (a
      // break, a corrupt archive, or nothing wrong when it stopped before the end), never a failure worth retrying.
      const refusedOr = <X, Y>(outcome: Effect.Effect<X, Y>): Effect.Effect<X, Y | ApiError> => {
        const refused = answer.refused()
        return refused === undefined ? outcome : Effect.fail(decodeError(refused))
      }
      return p.guard(consume(p.count(answer.body))).pipe(
        Effect.matchEffect({
          onFailure: (e) => refusedOr(Effect.fail(e)),
          onSuccess: (a) => refusedOr(Effect.succeed(a))
        })
      )
    }
    return Effect.scoped(
      Effect.flatMap(
        Effect.catchIf(
          head,
          (e): e is BadFraming => e instanceof BadFraming,
          (e) => Effect.fail(decodeError(e))
        ),
        read
      )
    ).pipe(Effect.ensuring(early?.get.close ?? Effect.void), Effect.withSpan("SyncApiClient.rawDownload"))
  }

  const download = <A, E>(
    revision: string,
    paths: () => ReadonlyArray<string> | undefined,
    consume: (body: Stream.Stream<Uint8Array, Transient>) => Effect.Effect<A, E | Transient>,
    options: DownloadOptions = {}
  ) => {
    const whole = `${baseUrl}${FilesRoutes.download}?revision=${encodeURIComponent(revision)}`
    const wholeUrl = new URL(whole)
    const { early: sentAhead, ...reading } = options
    // The GET sent ahead goes to the first attempt only: a later one asks again, for what is still missing.
    let early = sentAhead
    const attempt = Effect.suspend(() => {
      const wanted = paths()
      const ahead = early
      early = undefined
      // The whole tree over plain HTTP on a socket of its own, its body never copied (see SyncApiGet).
      if (wanted === undefined && rawGetApplies(wholeUrl))
        return rawDownload(wholeUrl, consume, reading, ahead === undefined ? undefined : { get: ahead, revision })
      if (ahead !== undefined) return Effect.zipRight(ahead.close, platformAttempt(wanted))
      return platformAttempt(wanted)
    })
    /** An attempt on the platform's client: some paths (a resumed pull), or the whole tree over TLS. */
    const platformAttempt = (wanted: ReadonlyArray<string> | undefined) => {
      const request = HttpClientRequest.setHeader(
        wanted === undefined
          ? HttpClientRequest.get(whole)
          : HttpClientRequest.post(`${baseUrl}${FilesRoutes.select}`).pipe(
              HttpClientRequest.bodyUnsafeJson({ revision, paths: wanted })
            ),
        // What the consumer reads: the server answers in one of them.
        ARCHIVE_FORMATS_HEADER,
        (reading.formats ?? FORMATS).join(", ")
      )
      const p = answerPace(limits)
      return classified(
        request.url,
        Effect.flatMap(withinExchange(limits, authed.execute(request)), checked(request.url))
      ).pipe(
        Effect.flatMap((response) => p.guard(consume(p.count(bodyOf(response))))),
        Effect.scoped
      )
    }
    return withRetry(whole, attempt).pipe(
      // A GET sent ahead that no attempt took (one that failed before it asked) is closed with the call.
      Effect.ensuring(Effect.suspend(() => early?.close ?? Effect.void)),
      Effect.withSpan("SyncApiClient.download")
    )
  }

  return SyncApiClient.of({
    endpoint,
    baseUrl,
    manifest,
    revisions,
    upload,
    download,
    startDownload,
    serverFormats: () => serverReads,
    compress: options.compress ?? "auto",
    serverEntryKinds: () => serverKeeps,
    serverUploadForms: () => serverTakes,
    heard
  })
})

/**
 * The client on Node's HTTP stack: node:http with a keep-alive agent for the exchanges and downloads (it
 * starts faster than fetch, whose implementation Node loads on first use), and node:http for uploads too, written
 * as the socket drains (`postStream`: Effect's Node client writes a streamed body without waiting for 'drain').
 */
export const layer = (options: SyncApiOptions): Layer.Layer<SyncApiClient> =>
  Layer.effect(SyncApiClient, make(options)).pipe(Layer.provide(NodeHttpClient.layer))

/** The client from the configuration in force. */
export const layerFromConfig: Layer.Layer<SyncApiClient, MissingConfig, CurrentConfig> = fromConfig(layer)

export { RemoteManifest }
