/** The client of the tenant API's deploy area: registry credential, deploy lock, releases and rollback. */
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Context, Effect, Layer, Option, Schema } from "effect"
import {
  DeployRequest,
  DeployRoutes,
  IDEMPOTENCY_HEADER,
  LockGrant,
  LockInfo,
  LockRequest,
  LockStatus,
  RegistryCredential,
  Release,
  RollbackRequest
} from "../api/index.js"
import type { CurrentConfig } from "../config.js"
import { ApiError, DeployLocked, type MissingConfig } from "../errors.js"
import { fromConfig, type SyncApiOptions } from "./SyncApiOptions.js"
import {
  clientBasics,
  describe,
  exchange,
  retrying,
  type SyncApiError,
  transient,
  type WireError
} from "./Transport.js"

export type DeployApiError = SyncApiError | DeployLocked

/**
 * The deploy area's own failures, read from the body before the shared status mapping: the lock held by another
 * deploy, and a lock this caller no longer holds (an ApiError with status 409, which the heartbeat lets end the run).
 */
const deployFailure = (url: string) => (wire: WireError, reason: string) => {
  if (wire._tag !== "DeployLocked" && wire._tag !== "LockLost") return undefined
  const lock = wire._tag === "DeployLocked" ? Schema.decodeUnknownOption(LockInfo)(wire.lock) : Option.none()
  return Option.match(lock, {
    onNone: () => new ApiError({ kind: "Status", status: 409, reason, url }),
    onSome: (l) =>
      new DeployLocked({
        holder: `${l.holder} (token ${l.who})`,
        note: l.message,
        expiresAt: l.expires_at,
        ...(l.release === null ? {} : { release: l.release })
      })
  })
}

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
  const { http, baseUrl, limits, policy } = yield* clientBasics(options)

  /**
   * One call: the request, its JSON answer decoded. Failures are classified as the other clients classify them
   * (`fromStatus`, `Transient`); transient ones are retried on the retry setting unless `retried` is false.
   */
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
    const cutShort = (status: number) => (e: HttpClientError.ResponseError) =>
      transient(status, `answer cut short: ${describe(e)}`)
    const attempt = exchange(http, request, url, limits.exchangeMs, {
      own: deployFailure(url),
      brokenAnswer: (e) => cutShort(e.response.status)(e)
    }).pipe(
      Effect.flatMap((response) =>
        response.text.pipe(
          Effect.catchTag("ResponseError", (e) => Effect.fail(cutShort(response.status)(e))),
          Effect.flatMap(Schema.decodeUnknown(Schema.parseJson(schema))),
          Effect.catchTag("ParseError", (e) =>
            Effect.fail(new ApiError({ kind: "Decode", status: response.status, reason: e.message.slice(0, 300), url }))
          )
        )
      ),
      Effect.scoped
    )
    return retrying(url, attempt, policy, { retried: options.retried !== false }).pipe(
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
export const layerFromConfig: Layer.Layer<DeployApi, MissingConfig, CurrentConfig> = fromConfig(layer)
