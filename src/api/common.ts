/** What every API group shares: wire errors with their statuses, the tenant id, and bearer authentication. */
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import { Context, Effect, Schema } from "effect"
import { ApiError, Conflict, InvalidInput, TarballUnsafe, Unauthorized } from "../errors.js"

/** A tenant id as the server issues it: safe in a URL path segment. */
export const TenantId = Schema.String.pipe(
  Schema.pattern(/^[a-z0-9][a-z0-9-]{0,63}$/),
  Schema.annotations({ identifier: "TenantId", description: "lowercase letters, digits and '-'" })
)

/** The path of the cloud-relay family: the tenant is named in the URL and must match the token's. */
export const TenantPath = Schema.Struct({ tenantId: TenantId })

/** A valid token used on another tenant's URL. */
export class Forbidden extends Schema.TaggedError<Forbidden>()(
  "Forbidden",
  { reason: Schema.String },
  HttpApiSchema.annotations({ status: 403 })
) {}

/** A revision or tenant that does not exist. */
export class NotFound extends Schema.TaggedError<NotFound>()(
  "NotFound",
  { reason: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}

/** A failure worth another attempt, which the client retries: a body too slow, content removed meanwhile. */
export class Unavailable extends Schema.TaggedError<Unavailable>()(
  "Unavailable",
  { reason: Schema.String },
  HttpApiSchema.annotations({ status: 503 })
) {}

/** The SyncError members that cross the wire, each with its HTTP status. */
export const UnauthorizedWire = Unauthorized.annotations(HttpApiSchema.annotations({ status: 401 }))
export const ConflictWire = Conflict.annotations(HttpApiSchema.annotations({ status: 409 }))
export const TarballUnsafeWire = TarballUnsafe.annotations(HttpApiSchema.annotations({ status: 422 }))
export const InvalidInputWire = InvalidInput.annotations(HttpApiSchema.annotations({ status: 400 }))
export const ServerErrorWire = ApiError.annotations(HttpApiSchema.annotations({ status: 500 }))

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
