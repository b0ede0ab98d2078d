/** The pieces of one file-sync exchange: its failures classified, its answer checked, paced and, for a manifest, decoded. */
import type * as HttpApiError from "@effect/platform/HttpApiError"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { type Cause, Duration, Effect, type ParseResult, Schema, Stream } from "effect"
import type { Forbidden, NotFound } from "../api/common.js"
import { isEntry, RemoteManifest } from "../api/files.js"
import { CAPS, type TransferLimits } from "../domain/caps.js"
import { manifestChecksum } from "../domain/hash.js"
import { ManifestRefused, makeManifestDecoder } from "../domain/manifestDecoder.js"
import type { FileEntry } from "../domain/model.js"
import { ApiError, InvalidInput, Unauthorized, UnsafeRemote } from "../errors.js"
import { pace } from "./Pace.js"
import { answerText, describe, fromStatus, type SyncApiError, type Transient, transient } from "./Transport.js"

/** What one attempt can fail with before it is classified: the HTTP client's, the typed client's, and ours. */
export type AttemptFailure =
  | HttpClientError.HttpClientError
  | ParseResult.ParseError
  | Cause.TimeoutException
  | Forbidden
  | NotFound
  | HttpApiError.HttpApiDecodeError
  | SyncApiError
  | Transient

/** The HTTP part of an attempt with its failures classified (the consumer of a body keeps its own). */
export const classified = <A, R>(
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
    ParseError: (e) => Effect.fail(new ApiError({ kind: "Decode", status: 200, reason: e.message.slice(0, 300), url })),
    // The typed client decodes successes only (failure statuses are read above); these are the group's own.
    Forbidden: (e) => Effect.fail(new Unauthorized({ reason: `${e.reason} (403 from ${url})` })),
    NotFound: (e) => Effect.fail(new ApiError({ status: 404, reason: e.reason, url })),
    HttpApiDecodeError: (e) => Effect.fail(new InvalidInput({ reason: `rejected by the server: ${e.message}` }))
  })

/** The response headers of a request, within the exchange deadline. */
export const withinExchange = <A, E, R>(
  limits: TransferLimits,
  request: Effect.Effect<A, E, R>
): Effect.Effect<A, E | Transient, R> =>
  Effect.timeoutFail(request, {
    duration: Duration.millis(limits.exchangeMs),
    onTimeout: () => transient(408, `no answer within ${limits.exchangeMs / 1000} s`)
  })

/** A raw call's response, its failure statuses read from the body. */
export const checked =
  (url: string) =>
  (
    response: HttpClientResponse.HttpClientResponse
  ): Effect.Effect<HttpClientResponse.HttpClientResponse, SyncApiError | Transient> =>
    response.status >= 200 && response.status < 300
      ? Effect.succeed(response)
      : answerText(response).pipe(
          Effect.flatMap((body) => Effect.fail(fromStatus(response.status, body, url, response.headers["retry-after"])))
        )

/** A response body that fails with Transient when it breaks off. */
export const bodyOf = (response: HttpClientResponse.HttpClientResponse): Stream.Stream<Uint8Array, Transient> =>
  Stream.mapError(response.stream, (e) => transient(0, `connection lost during the answer: ${describe(e)}`))

/** The pace of one answer's body: slower than the minimum rate is Transient. */
export const answerPace = (limits: TransferLimits) => pace(limits, (why) => transient(408, `answer too slow: ${why}`))

/** The manifest of a response body, decoded as it arrives: refused past the caps, retried when cut short. */
export const decodeManifest = (
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
