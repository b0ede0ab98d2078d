/** An area's handlers written once and mounted on both URL families, each resolving the caller its own way. */
import type * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import type * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import type * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import { Effect, Layer } from "effect"
import { type Caller, CurrentCaller, type Forbidden, sameTenant } from "../api/common.js"
import { AgentsyncApi } from "../api/index.js"

type Groups = typeof AgentsyncApi extends HttpApi.HttpApi<infer _Id, infer G, infer _E, infer _R> ? G : never
type ApiError = typeof AgentsyncApi extends HttpApi.HttpApi<infer _Id, infer _G, infer E, infer _R> ? E : never
type ApiR = typeof AgentsyncApi extends HttpApi.HttpApi<infer _Id, infer _G, infer _E, infer R> ? R : never
type GroupNamed<Name extends string> = HttpApiGroup.HttpApiGroup.WithName<Groups, Name>

/**
 * The handlers of the direct group, typed as such, which may fail with `Forbidden`: the relay group's endpoints
 * are the same with the tenant id added to their path, so the same handlers serve both.
 */
export type FamilyHandlers<Sync extends string> = HttpApiBuilder.Handlers.FromGroup<
  ApiError | Forbidden,
  ApiR,
  GroupNamed<Sync>
>

/** The direct group's handlers with every endpoint handled. */
export type HandledFamily<Sync extends string, R> = HttpApiBuilder.Handlers<
  ApiError | Forbidden,
  HttpApiMiddleware.HttpApiMiddleware.ExtractProvides<ApiR> | HttpApiGroup.HttpApiGroup.Provides<GroupNamed<Sync>>,
  R,
  never
>

/**
 * Who is calling, for a request of either family: the token's tenant on the direct family; on the relay family,
 * the same once the tenant named in the path is the token's (else `Forbidden`, 403).
 */
export type CallerOf = (request: object) => Effect.Effect<Caller, Forbidden, CurrentCaller>

const direct: CallerOf = () => CurrentCaller

const relay: CallerOf = (request) => {
  const path = "path" in request ? request.path : undefined
  return typeof path === "object" && path !== null && "tenantId" in path && typeof path.tenantId === "string"
    ? sameTenant(path.tenantId)
    : Effect.dieMessage("a relay endpoint without a tenant id in its path")
}

/**
 * Both groups of one area (`tenantGroups` in `api/common.ts`) from one `build`: it gets the direct group's
 * handlers and the family's caller, and is run once per group.
 */
export const bothFamilies = <
  const Sync extends HttpApiGroup.HttpApiGroup.Name<Groups>,
  const Cloud extends HttpApiGroup.HttpApiGroup.Name<Groups>,
  E,
  R,
  RX
>(
  area: { readonly sync: Sync; readonly cloud: Cloud },
  build: (handlers: FamilyHandlers<Sync>, callerOf: CallerOf) => Effect.Effect<HandledFamily<Sync, R>, E, RX>
) =>
  Layer.mergeAll(
    HttpApiBuilder.group(AgentsyncApi, area.sync, (handlers) => build(handlers as FamilyHandlers<Sync>, direct)),
    // The relay group's handlers object differs from the direct one's only in its endpoints' path types.
    HttpApiBuilder.group(AgentsyncApi, area.cloud, (handlers) =>
      build(handlers as unknown as FamilyHandlers<Sync>, relay)
    )
  )
