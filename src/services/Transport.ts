/** The tenant API's transport rules: what is worth another attempt, how long to wait, and how a failed answer reads. */
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { Data, Duration, Effect, Option, Redacted, Schedule, Schema, Stream } from "effect"
import { CLOUD_PREFIX, SYNC_PREFIX } from "../api/common.js"
import { nonNegativeSetting, TRANSFER, type TransferLimits } from "../domain/caps.js"
import { causeErrnoCode } from "../errno.js"
import {
  ApiError,
  type ApiErrorKind,
  Conflict,
  InvalidInput,
  type MissingConfig,
  TarballUnsafe,
  Unauthorized,
  type UnsafeRemote
} from "../errors.js"
import type { SyncApiOptions } from "./SyncApiOptions.js"

export interface RetryPolicy {
  /** Retries after the first attempt. */
  readonly maxRetries: number
  readonly base: Duration.DurationInput
  readonly factor: number
  /** No single wait is longer, whatever the backoff or Retry-After says. */
  readonly cap: Duration.DurationInput
}

export const defaultRetry: RetryPolicy = { maxRetries: 4, base: "250 millis", factor: 2, cap: "10 seconds" }

/** The retry policy from the environment (`AGENTSYNC_RETRY_MAX`, `_BASE_MS`, `_CAP_MS` over `defaultRetry`). */
export const retryFromEnv: Effect.Effect<RetryPolicy, MissingConfig> = Effect.all({
  maxRetries: nonNegativeSetting("AGENTSYNC_RETRY_MAX", true),
  base: nonNegativeSetting("AGENTSYNC_RETRY_BASE_MS"),
  cap: nonNegativeSetting("AGENTSYNC_RETRY_CAP_MS")
}).pipe(
  Effect.map((set) => ({
    maxRetries: Option.getOrElse(set.maxRetries, () => defaultRetry.maxRetries),
    base: Option.match(set.base, { onNone: () => defaultRetry.base, onSome: Duration.millis }),
    factor: defaultRetry.factor,
    cap: Option.match(set.cap, { onNone: () => defaultRetry.cap, onSome: Duration.millis })
  }))
)

/**
 * How a call is retried: the four numbers above, or any Effect `Schedule` (it is fed each failure and decides
 * the waits and when to stop). Either way only a transient failure is retried, never sooner than its Retry-After.
 */
export type Retry = RetryPolicy | Schedule.Schedule<unknown, unknown>

/** The waits of a retry setting (exponential backoff with jitter for the numbers), before any filter. */
export const backoff = (retry: Retry): Schedule.Schedule<unknown, unknown> =>
  Schedule.isSchedule(retry)
    ? retry
    : Schedule.exponential(retry.base, retry.factor).pipe(
        Schedule.jittered,
        Schedule.intersect(Schedule.recurs(retry.maxRetries))
      )

/** What a call can end in, once retries are spent. */
export type SyncApiError = Unauthorized | ApiError | Conflict | InvalidInput | TarballUnsafe | UnsafeRemote

/**
 * A failure worth another attempt: 408/429/502/503/504, a transport error, a body cut short or too slow, a
 * timeout. A download's body fails with it, so that whoever consumes the body lets it through to be retried.
 */
export class Transient extends Data.TaggedError("Transient")<{
  readonly status: number
  readonly reason: string
  readonly retryAfter: Option.Option<Duration.Duration>
  /** The request never reached the server (no connection). */
  readonly unreachable?: boolean
  /** What went wrong: an answer with a retryable status, or none in time, or no usable connection. */
  readonly kind: Exclude<ApiErrorKind, "Decode">
}> {
  /** The error a call ends in when its retries are spent on this failure. */
  gaveUp(url: string, attempts: string): ApiError {
    const what =
      this.unreachable === true ? `server unreachable (${attempts}: ${this.reason})` : `${this.reason} (${attempts})`
    return new ApiError({ kind: this.kind, status: this.status, reason: what, url })
  }
}

/**
 * A failure found on this side: a timeout (408, the status an answer would have had), or a transport failure
 * (no connection, or an answer cut short, with the status it had, 0 when none).
 */
export const transient = (status: number, reason: string, unreachable = false) =>
  new Transient({
    status,
    reason,
    retryAfter: Option.none(),
    unreachable,
    kind: status === 408 ? "Timeout" : "Transport"
  })

const RETRYABLE = new Set([408, 429, 502, 503, 504])

/** `Retry-After` as seconds or an HTTP date. */
export const parseRetryAfter = (value: string | undefined, now = Date.now()): Option.Option<Duration.Duration> => {
  if (value === undefined || value.trim() === "") return Option.none()
  const seconds = Number(value)
  if (Number.isFinite(seconds) && seconds >= 0) return Option.some(Duration.seconds(seconds))
  const date = Date.parse(value)
  return Number.isNaN(date) ? Option.none() : Option.some(Duration.millis(Math.max(0, date - now)))
}

/** The retry setting's waits, at least any Retry-After (capped for the numbers form); only transient failures. */
export const retrySchedule = (retry: Retry) => {
  const cap = Schedule.isSchedule(retry) ? Duration.infinity : Duration.decode(retry.cap)
  return backoff(retry).pipe(
    Schedule.intersect(Schedule.identity<unknown>()),
    Schedule.whileInput((e: unknown) => e instanceof Transient),
    Schedule.modifyDelay(([, e], delay) => {
      const floor = e instanceof Transient ? Option.getOrElse(e.retryAfter, () => Duration.zero) : Duration.zero
      return Duration.min(Duration.max(delay, floor), cap)
    })
  )
}

/**
 * One logical call, the one retry wrapper of every client: `attempt` retried on the retry setting while it fails
 * Transient (not at all when `retried` is false), the whole within `deadlineMs` when given; a Transient left at the
 * end is the ApiError that names what was tried (`gave up after 3 attempts`, `not retried`).
 */
export const retrying = <A, E, R>(
  url: string,
  attempt: Effect.Effect<A, E | Transient, R>,
  retry: Retry,
  options: { readonly retried?: boolean; readonly deadlineMs?: number | undefined } = {}
): Effect.Effect<A, Exclude<E, Transient> | ApiError, R> =>
  Effect.suspend(() => {
    // Counted per run: a client keeps some calls as values and runs them many times.
    let attempts = 0
    const counted = Effect.suspend(() => {
      attempts++
      return attempt
    })
    const retried = options.retried !== false
    const deadlineMs = options.deadlineMs
    const bounded = retried ? Effect.retry(counted, retrySchedule(retry)) : counted
    return (
      deadlineMs === undefined
        ? bounded
        : Effect.timeoutFail(bounded, {
            duration: Duration.millis(deadlineMs),
            onTimeout: () =>
              transient(
                408,
                `no result within the transfer deadline of ${deadlineMs / 1000} s (AGENTSYNC_TRANSFER_TIMEOUT_MS)`
              )
          })
    ).pipe(
      Effect.catchIf(
        (e): e is Transient => e instanceof Transient,
        (t) =>
          Effect.fail(
            t.gaveUp(url, retried ? `gave up after ${attempts} attempt${attempts === 1 ? "" : "s"}` : "not retried")
          )
      )
    )
  })

/** A failure body as any server sends it: `{_tag, reason, …}` of the error class, read loosely (old servers, proxies). */
const WireError = Schema.Struct({
  _tag: Schema.optional(Schema.String),
  reason: Schema.optional(Schema.String),
  message: Schema.optional(Schema.String),
  entry: Schema.optional(Schema.String),
  completed: Schema.optional(Schema.NonNegativeInt),
  total: Schema.optional(Schema.NonNegativeInt),
  /** The deploy lock a DeployLocked answer names (read by the deploy client). */
  lock: Schema.optional(Schema.Unknown)
})
export type WireError = typeof WireError.Type

/** At most this much of an answer that is not a manifest or an archive is read (an error page, an upload's result). */
const MAX_ANSWER_BYTES = 1024 * 1024

/** The start of a body as text, never more than `MAX_ANSWER_BYTES` of it read. */
export const readAnswer = <E>(body: Stream.Stream<Uint8Array, E>): Effect.Effect<string, E> =>
  Effect.suspend(() => {
    const parts: Array<Uint8Array> = []
    let size = 0
    return body.pipe(
      Stream.takeWhile((chunk) => {
        parts.push(chunk)
        size += chunk.length
        return size < MAX_ANSWER_BYTES
      }),
      Stream.runDrain,
      Effect.map(() => Buffer.concat(parts).subarray(0, MAX_ANSWER_BYTES).toString("utf8"))
    )
  })

/** A failure answer's text ("" when it cannot be read). */
export const answerText = (response: HttpClientResponse.HttpClientResponse): Effect.Effect<string> =>
  Effect.orElseSucceed(readAnswer(response.stream), () => "")

/**
 * Maps a failure status and its body to the error family, for every client: retryable statuses become Transient;
 * `special` reads an area's own errors from the body first (the database's PartialImport).
 */
export const fromStatus = <X = never>(
  status: number,
  body: string,
  url: string,
  retryAfter: string | undefined,
  special?: (wire: WireError, reason: string) => X | undefined
): SyncApiError | Transient | X => {
  const parsed = Schema.decodeUnknownOption(Schema.parseJson(WireError))(body)
  const entry = Option.flatMap(parsed, (e) => Option.fromNullable(e.entry))
  const reason = Option.match(parsed, {
    onNone: () => body.trim().slice(0, 300) || `HTTP ${status}`,
    onSome: (e) => e.reason ?? e.message ?? e._tag ?? `HTTP ${status}`
  })
  const own = special === undefined || Option.isNone(parsed) ? undefined : special(parsed.value, reason)
  if (own !== undefined) return own
  if (RETRYABLE.has(status))
    return new Transient({ status, reason, retryAfter: parseRetryAfter(retryAfter), kind: "Status" })
  switch (status) {
    case 401:
      return new Unauthorized({ reason: `${reason} (401 from ${url})` })
    case 403:
      return new Unauthorized({ reason: `${reason} (403 from ${url})` })
    case 409:
      return new Conflict({ reason })
    case 422:
      return new TarballUnsafe({
        reason: `rejected by the server: ${reason}`,
        ...Option.match(entry, { onNone: () => ({}), onSome: (e) => ({ entry: e }) })
      })
    case 400:
      return new InvalidInput({ reason: `rejected by the server: ${reason}` })
    default:
      return new ApiError({ status, reason, url })
  }
}

/**
 * What the database and deploy clients start from: the HttpClient in context sending the bearer token, the base URL
 * of the endpoint's family, the limits and the retry setting, defaults filled in.
 */
export const clientBasics = (options: Pick<SyncApiOptions, "endpoint" | "token" | "retry" | "limits">) =>
  Effect.map(HttpClient.HttpClient, (client) => {
    const endpoint = options.endpoint
    const limits: TransferLimits = { ...TRANSFER, ...options.limits }
    return {
      http: client.pipe(HttpClient.mapRequest(HttpClientRequest.bearerToken(Redacted.value(options.token)))),
      baseUrl:
        endpoint.mode === "direct"
          ? `${endpoint.origin}${SYNC_PREFIX}`
          : `${endpoint.api}${CLOUD_PREFIX}/${endpoint.tenantId}`,
      limits,
      policy: options.retry ?? defaultRetry
    }
  })

/** How an area reads a failed exchange: its own errors in a failure body, and an answer that broke off in its head. */
export interface Classification<X> {
  /** The area's own errors, read from a failure body before the shared status mapping (see `fromStatus`). */
  readonly own?: (wire: WireError, reason: string) => X | undefined
  readonly brokenAnswer: (e: HttpClientError.ResponseError) => SyncApiError | Transient
}

/**
 * One attempt of a request, for the database and deploy clients: the response headers within `exchangeMs`; a 2xx
 * response is the result, any other status is read from its body by `fromStatus` with the area's own errors; no
 * answer in time, a request that failed and a retryable status are Transient (see `retrying`).
 */
export const exchange = <X>(
  http: HttpClient.HttpClient,
  request: HttpClientRequest.HttpClientRequest,
  url: string,
  exchangeMs: number,
  classify: Classification<X>
): Effect.Effect<HttpClientResponse.HttpClientResponse, SyncApiError | Transient | X> =>
  http.execute(request).pipe(
    Effect.timeoutFail({
      duration: Duration.millis(exchangeMs),
      onTimeout: () => transient(408, `no answer within ${exchangeMs / 1000} s`)
    }),
    Effect.catchTags({
      RequestError: (e) =>
        Effect.fail(transient(0, `request failed: ${describe(e.cause ?? e)}`, e.reason === "Transport")),
      ResponseError: (e) => Effect.fail(classify.brokenAnswer(e))
    }),
    Effect.flatMap((response) =>
      response.status >= 200 && response.status < 300
        ? Effect.succeed(response)
        : Effect.flatMap(answerText(response), (body) =>
            Effect.fail(fromStatus(response.status, body, url, response.headers["retry-after"], classify.own))
          )
    )
  )

/** A transport failure in words: its message and the first system error code down its cause chain (fetch nests it). */
export const describe = (cause: unknown): string => {
  if (!(cause instanceof Error)) return String(cause)
  const code = causeErrnoCode(cause.cause)
  return code === undefined ? cause.message : `${cause.message} (${code})`
}
