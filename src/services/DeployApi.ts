/** The client of the tenant API's deploy area: registry credential, deploy lock, releases and rollback. */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Context, Duration, Effect, Layer, Option, Redacted, Schedule, Schema } from "effect"
import {
  CLOUD_PREFIX,
  DeployRequest,
  DeployRoutes,
  IDEMPOTENCY_HEADER,
  LockGrant,
  LockInfo,
  LockRequest,
  LockStatus,
  RegistryCredential,
  Release,
  RollbackRequest,
  SYNC_PREFIX
} from "../api/index.js"
import { CurrentConfig } from "../config.js"
import { TRANSFER } from "../domain/caps.js"
import { ApiError, DeployLocked, InvalidInput, type MissingConfig, Unauthorized } from "../errors.js"
import { defaultRetry, optionsFromConfig, type SyncApiOptions } from "./SyncApi.js"
import { backoff } from "./Transport.js"

export type DeployApiError = ApiError | Unauthorized | InvalidInput | DeployLocked

const WireError = Schema.Struct({
  _tag: Schema.optional(Schema.String),
  reason: Schema.optional(Schema.String),
  message: Schema.optional(Schema.String),
  lock: Schema.optional(LockInfo)
})

/** A failure status and its body as one of the error family. */
const failure = (url: string, status: number, body: string): DeployApiError => {
  const wire = Option.getOrUndefined(Schema.decodeUnknownOption(Schema.parseJson(WireError))(body))
  const reason = wire?.reason ?? wire?.message ?? (body.trim().slice(0, 300) || `HTTP ${status}`)
  if (wire?._tag === "DeployLocked" && wire.lock !== undefined) {
    return new DeployLocked({
      holder: `${wire.lock.holder} (token ${wire.lock.who})`,
      note: wire.lock.message,
      expiresAt: wire.lock.expires_at,
      ...(wire.lock.release === null ? {} : { release: wire.lock.release })
    })
  }
  if (status === 401 || status === 403) return new Unauthorized({ reason: `${reason} (${status} from ${url})` })
  if (status === 400) return new InvalidInput({ reason: `rejected by the server: ${reason}` })
  return new ApiError({ status, reason, url })
}

/** Worth a retry: no connection, no answer in time, or one of these statuses. */
const TRANSIENT = new Set([408, 429, 502, 503, 504])
const retryable = (e: DeployApiError) =>
  e._tag === "ApiError" &&
  (e.kind === "Transport" || e.kind === "Timeout" || (e.kind === "Status" && TRANSIENT.has(e.status)))

export interface DeployApiShape {
  readonly baseUrl: string
  readonly registryToken: Effect.Effect<RegistryCredential, DeployApiError>
  readonly lockStatus: Effect.Effect<LockStatus, DeployApiError>
  readonly lock: (request: LockRequest) => Effect.Effect<LockGrant, DeployApiError>
  readonly heartbeat: (lockId: string) => Effect.Effect<LockGrant, DeployApiError>
  readonly unlock: (lockId: string) => Effect.Effect<LockStatus, DeployApiError>
  readonly forceUnlock: Effect.Effect<LockStatus, DeployApiError>
  /** Records and starts a release; a retry with the same idempotency key returns the same release. */
  readonly deploy: (request: DeployRequest, idempotencyKey: string) => Effect.Effect<Release, DeployApiError>
  readonly rollback: (
    number: number,
    request: RollbackRequest,
    idempotencyKey: string
  ) => Effect.Effect<Release, DeployApiError>
  readonly releases: (limit?: number) => Effect.Effect<ReadonlyArray<Release>, DeployApiError>
  readonly release: (number: number) => Effect.Effect<Release, DeployApiError>
}

export class DeployApi extends Context.Tag("agentsync/DeployApi")<DeployApi, DeployApiShape>() {}

export const make = Effect.fn("DeployApi.make")(function* (options: SyncApiOptions) {
  const http = (yield* HttpClient.HttpClient).pipe(
    HttpClient.mapRequest(HttpClientRequest.bearerToken(Redacted.value(options.token)))
  )
  const endpoint = options.endpoint
  const baseUrl =
    endpoint.mode === "direct"
      ? `${endpoint.origin}${SYNC_PREFIX}`
      : `${endpoint.api}${CLOUD_PREFIX}/${endpoint.tenantId}`
  const timeout = Duration.millis(options.limits?.exchangeMs ?? TRANSFER.exchangeMs)
  const retry = backoff(options.retry ?? defaultRetry).pipe(Schedule.whileInput(retryable))

  /** One call: the request, its JSON answer decoded, transport failures and timeouts as status 0 and 408. */
  const call = <A, I>(
    method: "GET" | "POST" | "PUT" | "DELETE",
    route: string,
    schema: Schema.Schema<A, I>,
    options: { readonly body?: unknown; readonly key?: string; readonly retried?: boolean } = {}
  ): Effect.Effect<A, DeployApiError> => {
    const url = `${baseUrl}${route}`
    let request = HttpClientRequest.make(method)(url)
    if (options.body !== undefined) request = HttpClientRequest.bodyUnsafeJson(request, options.body)
    if (options.key !== undefined) request = HttpClientRequest.setHeader(request, IDEMPOTENCY_HEADER, options.key)
    const attempt = http.execute(request).pipe(
      Effect.mapError(
        (e) => new ApiError({ kind: "Transport", status: 0, reason: `cannot reach the server: ${e.message}`, url })
      ),
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () => new ApiError({ kind: "Timeout", status: 408, reason: "timed out", url })
      }),
      Effect.flatMap((response) =>
        response.text.pipe(
          Effect.orElseSucceed(() => ""),
          Effect.flatMap((body) =>
            response.status >= 200 && response.status < 300
              ? Schema.decodeUnknown(Schema.parseJson(schema))(body).pipe(
                  Effect.mapError(
                    (e) =>
                      new ApiError({ kind: "Decode", status: response.status, reason: e.message.slice(0, 300), url })
                  )
                )
              : Effect.fail(failure(url, response.status, body))
          )
        )
      ),
      Effect.scoped
    )
    return (options.retried === false ? attempt : Effect.retry(attempt, retry)).pipe(
      Effect.withSpan(`DeployApi.${method} ${route}`)
    )
  }

  const encode = <A, I>(schema: Schema.Schema<A, I>, value: A) => Schema.encodeSync(schema)(value)

  return DeployApi.of({
    baseUrl,
    registryToken: call("GET", DeployRoutes.registryToken, RegistryCredential),
    lockStatus: call("GET", DeployRoutes.lock, LockStatus),
    // Taking the lock is not retried: a lost answer would meet its own lock on the next attempt.
    lock: (request) =>
      call("POST", DeployRoutes.lock, LockGrant, { body: encode(LockRequest, request), retried: false }),
    heartbeat: (lockId) => call("PUT", DeployRoutes.ownLock(lockId), LockGrant),
    unlock: (lockId) => call("DELETE", DeployRoutes.ownLock(lockId), LockStatus),
    forceUnlock: call("DELETE", DeployRoutes.lock, LockStatus),
    deploy: (request, key) => call("POST", DeployRoutes.deploy, Release, { body: encode(DeployRequest, request), key }),
    rollback: (number, request, key) =>
      call("POST", DeployRoutes.rollback(number), Release, { body: encode(RollbackRequest, request), key }),
    releases: (limit) =>
      call("GET", `${DeployRoutes.releases}${limit === undefined ? "" : `?limit=${limit}`}`, Schema.Array(Release)),
    release: (number) => call("GET", DeployRoutes.release(number), Release)
  })
})

export const layer = (options: SyncApiOptions): Layer.Layer<DeployApi> =>
  Layer.effect(DeployApi, make(options)).pipe(Layer.provide(NodeHttpClient.layer))

/** The client from the configuration in force, like the files client. */
export const layerFromConfig: Layer.Layer<DeployApi, MissingConfig, CurrentConfig> = Layer.effect(
  DeployApi,
  Effect.flatMap(CurrentConfig, optionsFromConfig).pipe(Effect.flatMap(make))
).pipe(Layer.provide(NodeHttpClient.layer))
