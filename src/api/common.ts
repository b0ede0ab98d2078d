/** What every API group shares: wire errors with their statuses, the tenant id, bearer authentication, and the two URL families. */
import type * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import * as OpenApi from "@effect/platform/OpenApi"
import { Context, Effect, Option, Schema } from "effect"
import { ApiError, Conflict, InvalidInput, TarballUnsafe, Unauthorized } from "../errors.js"

/**
 * An endpoint's summary and description in the OpenAPI document, for `endpoint.pipe(described(…))`: every
 * operation carries both (the document is linted with redocly's recommended rules).
 */
export const described =
  (summary: string, description: string) =>
  <E extends { readonly annotateContext: <I>(context: Context.Context<I>) => E }>(endpoint: E): E =>
    endpoint.annotateContext(OpenApi.annotations({ summary, description }))

/** A tenant id as the server issues it: safe in a URL path segment. */
export const TenantId = Schema.String.pipe(
  Schema.pattern(/^[a-z0-9][a-z0-9-]{0,63}$/),
  Schema.annotations({ identifier: "TenantId", description: "lowercase letters, digits and '-'" })
)

/** The path of the cloud-relay family: the tenant is named in the URL and must match the token's. */
export const TenantPath = Schema.Struct({ tenantId: TenantId })

/** A wire error that carries only a `reason`, answered with `status`; for `class X extends reasonError<X>()(…) {}`. */
export const reasonError =
  <Self>() =>
  <Tag extends string>(tag: Tag, status: number, description: string) =>
    Schema.TaggedError<Self>()(tag, { reason: Schema.String }, HttpApiSchema.annotations({ status, description }))

/** A valid token used on another tenant's URL. */
export class Forbidden extends reasonError<Forbidden>()(
  "Forbidden",
  403,
  "The token is valid but belongs to another tenant."
) {}

/** A revision or tenant that does not exist. */
export class NotFound extends reasonError<NotFound>()(
  "NotFound",
  404,
  "The revision, release, tenant or token named does not exist (or the server offers no such thing)."
) {}

/** A failure worth another attempt, which the client retries: a body too slow, content removed meanwhile. */
export class Unavailable extends reasonError<Unavailable>()(
  "Unavailable",
  503,
  "Worth another attempt: the body came too slowly or content changed meanwhile; nothing was committed."
) {}

/** The SyncError members that cross the wire, each with its HTTP status. */
export const UnauthorizedWire = Unauthorized.annotations(
  HttpApiSchema.annotations({
    status: 401,
    description: "No bearer token, or one that is unknown, revoked or expired."
  })
)
export const ConflictWire = Conflict.annotations(
  HttpApiSchema.annotations({
    status: 409,
    description: "The upload's base is no longer the head: another push landed first. Pull, then push again."
  })
)
export const TarballUnsafeWire = TarballUnsafe.annotations(
  HttpApiSchema.annotations({
    status: 422,
    description:
      "The upload archive broke a safety rule (a path outside the tree, a link, a size over the caps); nothing was stored."
  })
)
export const InvalidInputWire = InvalidInput.annotations(
  HttpApiSchema.annotations({ status: 400, description: "The body or a parameter is malformed; nothing was written." })
)
export const ServerErrorWire = ApiError.annotations(
  HttpApiSchema.annotations({
    status: 500,
    description: "The server failed (most often its database); `reason` says how."
  })
)

/** Who is calling: the tenant and the token the bearer resolved to. */
export interface Caller {
  readonly tenantId: string
  readonly tokenId: string
  readonly label: string
}
export class CurrentCaller extends Context.Tag("agentsync/api/CurrentCaller")<CurrentCaller, Caller>() {}

/** Bearer authentication: resolves the token to its tenant, or answers 401. */
export class Authentication extends HttpApiMiddleware.Tag<Authentication>()("agentsync/api/Authentication", {
  failure: UnauthorizedWire,
  provides: CurrentCaller,
  security: { bearer: HttpApiSecurity.bearer }
}) {}

/** The relay family's caller: the token's tenant must be the one named in the path, else 403. */
export const sameTenant = (tenantId: string) =>
  Effect.filterOrFail(
    CurrentCaller,
    (c) => c.tenantId === tenantId,
    () => new Forbidden({ reason: "this token belongs to another tenant" })
  )

export const SYNC_PREFIX = "/api/v1/sync"
export const CLOUD_PREFIX = "/api/v1/cloud/tenants"

type WithTenant<Path> = [Path] extends [never] ? { readonly tenantId: string } : Path & { readonly tenantId: string }

/** An endpoint of the relay family: the direct endpoint's type with the tenant id added to its path. */
export type Relayed<E> =
  E extends HttpApiEndpoint.HttpApiEndpoint<
    infer Name,
    infer Method,
    infer Path,
    infer UrlParams,
    infer Payload,
    infer Headers,
    infer Success,
    infer Error,
    infer R,
    infer RE
  >
    ? HttpApiEndpoint.HttpApiEndpoint<
        Name,
        Method,
        WithTenant<Path>,
        UrlParams,
        Payload,
        Headers,
        Success,
        Error,
        R,
        RE
      >
    : never

/** The direct endpoint under `/:tenantId`, the tenant id added to its path schema; its annotations carry over. */
export const relayed = <E extends HttpApiEndpoint.HttpApiEndpoint.Any>(endpoint: E): Relayed<E> => {
  const direct = endpoint as unknown as HttpApiEndpoint.HttpApiEndpoint.AnyWithProps
  const path = Option.match(direct.pathSchema, {
    onNone: () => TenantPath,
    onSome: (own) => Schema.extend(TenantPath, own)
  })
  // The runtime value is exactly what the type names; TypeScript cannot follow `setPath` through a generic.
  return direct.prefix("/:tenantId").setPath(path) as unknown as Relayed<E>
}

const groupOf = <Id extends string, E extends HttpApiEndpoint.HttpApiEndpoint.Any>(
  id: Id,
  endpoints: ReadonlyArray<E>
): HttpApiGroup.HttpApiGroup<Id, E, never> =>
  endpoints.reduce<HttpApiGroup.HttpApiGroup<Id, E, never>>(
    (group, endpoint) => group.add(endpoint),
    HttpApiGroup.make(id)
  )

/**
 * The two URL families of one area from one list of endpoints: direct (`/api/v1/sync…`, the tenant is the
 * token's) and relay (`/api/v1/cloud/tenants/{tenantId}…`, the tenant in the path must be the token's, else 403).
 */
export const tenantGroups = <
  const Sync extends string,
  const Cloud extends string,
  E extends HttpApiEndpoint.HttpApiEndpoint.Any
>(
  area: { readonly sync: Sync; readonly cloud: Cloud; readonly description: string },
  endpoints: ReadonlyArray<E>
) => ({
  sync: groupOf(area.sync, endpoints)
    .addError(NotFound)
    .addError(ServerErrorWire)
    .middleware(Authentication)
    .prefix(SYNC_PREFIX)
    .annotate(OpenApi.Description, `${area.description} Direct sync: the tenant is the bearer token's.`),
  cloud: groupOf(area.cloud, endpoints.map(relayed))
    .addError(Forbidden)
    .addError(NotFound)
    .addError(ServerErrorWire)
    .middleware(Authentication)
    .prefix(CLOUD_PREFIX)
    .annotate(
      OpenApi.Description,
      `${area.description} Cloud relay: the tenant named in the path must be the bearer token's (else 403).`
    )
})
