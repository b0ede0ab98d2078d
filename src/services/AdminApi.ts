/** Tenant and token administration, one shape for both ways in: a running server's admin API, or its database directly. */
import * as HttpApiClient from "@effect/platform/HttpApiClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Duration, Effect, Redacted } from "effect"
import { AgentsyncApi, type IssuedToken, type TenantCreated, type TenantInfo, type TokenInfo } from "../api/index.js"
import { ApiError, InvalidInput, type Unauthorized } from "../errors.js"

export type AdminError = ApiError | InvalidInput | Unauthorized

export interface AdminOps {
  readonly createTenant: (name: string) => Effect.Effect<TenantCreated, AdminError>
  readonly listTenants: () => Effect.Effect<ReadonlyArray<TenantInfo>, AdminError>
  readonly createToken: (tenantId: string, name: string, expiresAt?: string) => Effect.Effect<IssuedToken, AdminError>
  readonly listTokens: (tenantId?: string) => Effect.Effect<ReadonlyArray<TokenInfo>, AdminError>
  readonly revokeToken: (id: string) => Effect.Effect<TokenInfo, AdminError>
  readonly rotateToken: (id: string) => Effect.Effect<IssuedToken, AdminError>
}

/** The wire's and the store's failures as the command line's: a missing tenant or token is bad input. */
const asAdminError = (url: string) => (e: { readonly _tag: string; readonly message: string }) => {
  switch (e._tag) {
    case "NotFound":
      return new InvalidInput({ reason: (e as unknown as { reason: string }).reason })
    case "InvalidInput":
    case "Unauthorized":
    case "ApiError":
      return e as AdminError
    default:
      return new ApiError({ kind: "Transport", status: 0, reason: `admin request failed: ${e.message}`, url })
  }
}

/** Maps every failure of an operation to the command line's errors. */
export const adminErrors =
  (url: string) =>
  <A, E extends { readonly _tag: string; readonly message: string }>(effect: Effect.Effect<A, E>) =>
    Effect.mapError(effect, asAdminError(url))

/** The admin API of the server at `url`, with the admin token; each call within 30 s. */
export const remote = (url: string, token: Redacted.Redacted<string>): Effect.Effect<AdminOps> =>
  Effect.gen(function* () {
    const http = (yield* HttpClient.HttpClient).pipe(
      HttpClient.mapRequest(HttpClientRequest.bearerToken(Redacted.value(token).trim()))
    )
    const client = yield* HttpApiClient.group(AgentsyncApi, { group: "admin", httpClient: http, baseUrl: url })
    const call = <A, E extends { readonly _tag: string; readonly message: string }>(effect: Effect.Effect<A, E>) =>
      effect.pipe(
        Effect.timeoutFail({
          duration: Duration.seconds(30),
          onTimeout: () => new ApiError({ kind: "Timeout", status: 0, reason: "no answer within 30 s", url })
        }),
        adminErrors(url)
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
