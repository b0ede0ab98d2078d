/** Tenant and token administration, one shape for both ways in: a running server's admin API, or its database directly. */
import * as HttpApiClient from "@effect/platform/HttpApiClient"
import type * as HttpApiError from "@effect/platform/HttpApiError"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Duration, Effect, type ParseResult, Redacted } from "effect"
import {
  AgentsyncApi,
  type IssuedToken,
  type NotFound,
  type TenantCreated,
  type TenantInfo,
  type TokenInfo
} from "../api/index.js"
import { ApiError, InvalidInput, type Unauthorized } from "../errors.js"
import { describe } from "./Transport.js"

export type AdminError = ApiError | InvalidInput | Unauthorized

export interface AdminOps {
  readonly createTenant: (name: string) => Effect.Effect<TenantCreated, AdminError>
  readonly listTenants: () => Effect.Effect<ReadonlyArray<TenantInfo>, AdminError>
  readonly createToken: (tenantId: string, name: string, expiresAt?: string) => Effect.Effect<IssuedToken, AdminError>
  readonly listTokens: (tenantId?: string) => Effect.Effect<ReadonlyArray<TokenInfo>, AdminError>
  readonly revokeToken: (id: string) => Effect.Effect<TokenInfo, AdminError>
  readonly rotateToken: (id: string) => Effect.Effect<IssuedToken, AdminError>
}

/** A missing tenant or token, from the wire or the store, is bad input; the other failures are the command line's already. */
export const adminErrors = <A, E extends AdminError>(
  effect: Effect.Effect<A, E | NotFound>
): Effect.Effect<A, E | InvalidInput> =>
  Effect.catchTag(effect, "NotFound", (e) => Effect.fail(new InvalidInput({ reason: e.reason })))

/** The admin API of the server at `url`, with the admin token; each call within 30 s. */
export const remote = (url: string, token: Redacted.Redacted<string>): Effect.Effect<AdminOps> =>
  Effect.gen(function* () {
    const http = (yield* HttpClient.HttpClient).pipe(
      HttpClient.mapRequest(HttpClientRequest.bearerToken(Redacted.value(token).trim()))
    )
    const client = yield* HttpApiClient.group(AgentsyncApi, { group: "admin", httpClient: http, baseUrl: url })
    /** An operation within 30 s, its transport failures as ApiError by kind, as the other clients report them. */
    const call = <A>(
      effect: Effect.Effect<
        A,
        | AdminError
        | NotFound
        | HttpClientError.HttpClientError
        | ParseResult.ParseError
        | HttpApiError.HttpApiDecodeError
      >
    ): Effect.Effect<A, AdminError> =>
      effect.pipe(
        Effect.timeoutFail({
          duration: Duration.seconds(30),
          onTimeout: () => new ApiError({ kind: "Timeout", status: 0, reason: "no answer within 30 s", url })
        }),
        Effect.catchTags({
          RequestError: (e) =>
            Effect.fail(
              new ApiError({
                kind: "Transport",
                status: 0,
                reason: `admin request failed: ${describe(e.cause ?? e)}`,
                url
              })
            ),
          ResponseError: (e) =>
            Effect.fail(
              new ApiError({
                kind: "Status",
                status: e.response.status,
                reason: `admin request failed: ${e.message}`,
                url
              })
            ),
          ParseError: (e) =>
            Effect.fail(new ApiError({ kind: "Decode", status: 200, reason: e.message.slice(0, 300), url })),
          HttpApiDecodeError: (e) =>
            Effect.fail(new ApiError({ kind: "Decode", status: 200, reason: e.message.slice(0, 300), url }))
        }),
        adminErrors
      )
    return {
      createTenant: (name) => call(client.createTenant({ payload: { name } })),
      listTenants: () => call(client.listTenants()),
      createToken: (tenantId, name, expiresAt) =>
        call(
          client.createToken({
            payload: { tenant_id: tenantId, name, ...(expiresAt === undefined ? {} : { expires_at: expiresAt }) }
          })
        ),
      listTokens: (tenantId) =>
        call(client.listTokens({ urlParams: tenantId === undefined ? {} : { tenant_id: tenantId } })),
      revokeToken: (id) => call(client.revokeToken({ path: { tokenId: id } })),
      rotateToken: (id) => call(client.rotateToken({ path: { tokenId: id } }))
    } satisfies AdminOps
  }).pipe(Effect.provide(NodeHttpClient.layer))
