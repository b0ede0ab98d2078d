/** The admin area of the tenant API: tenants and their tokens, managed while the server runs, under the admin token. */
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"
import { described, InvalidInputWire, NotFound, ServerErrorWire, TenantId, UnauthorizedWire } from "./common.js"

export const ADMIN_PREFIX = "/api/v1/admin"

/** Bearer authentication with the server's admin token (`AGENTSYNC_ADMIN_TOKEN`), or 401. */
export class AdminAuthentication extends HttpApiMiddleware.Tag<AdminAuthentication>()(
  "agentsync/api/AdminAuthentication",
  { failure: UnauthorizedWire, security: { admin: HttpApiSecurity.bearer } }
) {}

const Timestamp = Schema.String.annotations({ description: "ISO 8601 time" })

export class TenantInfo extends Schema.Class<TenantInfo>("TenantInfo")({
  id: TenantId,
  name: Schema.String,
  created_at: Timestamp,
  /** Tokens neither revoked nor expired. */
  active_tokens: Schema.NonNegativeInt
}) {}

export class TokenInfo extends Schema.Class<TokenInfo>("TokenInfo")({
  /** The public part of the token (`ast_<id>_…`); never the secret. */
  id: Schema.String,
  tenant_id: TenantId,
  name: Schema.String,
  created_at: Timestamp,
  last_used_at: Schema.NullOr(Timestamp),
  expires_at: Schema.NullOr(Timestamp),
  revoked_at: Schema.NullOr(Timestamp)
}) {}

/** A token just made: the only answer that carries its secret. */
export class IssuedToken extends Schema.Class<IssuedToken>("IssuedToken")({
  info: TokenInfo,
  token: Schema.Redacted(Schema.String),
  /** The token this one replaced (rotation), revoked in the same transaction. */
  replaced: Schema.NullOr(Schema.String)
}) {}

export class TenantCreated extends Schema.Class<TenantCreated>("TenantCreated")({
  tenant: TenantInfo,
  token: IssuedToken
}) {}

const Name = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200))
const TokenIdPath = Schema.Struct({ tokenId: Schema.String.pipe(Schema.pattern(/^[0-9a-f]{16}$/)) })

export const CreateTenant = Schema.Struct({ name: Name })
export const CreateToken = Schema.Struct({
  tenant_id: TenantId,
  name: Name,
  /** When it stops working; absent: never. */
  expires_at: Schema.optional(Timestamp)
})

export class AdminGroup extends HttpApiGroup.make("admin")
  .add(
    HttpApiEndpoint.post("createTenant", "/tenants")
      .setPayload(CreateTenant)
      .addSuccess(TenantCreated, { status: 201 })
      .pipe(
        described("Create a tenant", "A new tenant and its first token (named `admin`); the token is shown only here.")
      )
  )
  .add(
    HttpApiEndpoint.get("listTenants", "/tenants")
      .addSuccess(Schema.Array(TenantInfo))
      .pipe(described("List tenants", "Every tenant with its count of active tokens, oldest first."))
  )
  .add(
    HttpApiEndpoint.get("listTokens", "/tokens")
      .setUrlParams(Schema.Struct({ tenant_id: Schema.optional(TenantId) }))
      .addSuccess(Schema.Array(TokenInfo))
      .pipe(
        described(
          "List tokens",
          "Tokens of one tenant (tenant_id) or of all, with creation, last use, expiry and revocation times; never a secret."
        )
      )
  )
  .add(
    HttpApiEndpoint.post("createToken", "/tokens")
      .setPayload(CreateToken)
      .addSuccess(IssuedToken, { status: 201 })
      .pipe(
        described("Create a token", "A new token for a tenant, with a name and an optional expiry; shown only here.")
      )
  )
  .add(
    HttpApiEndpoint.post("revokeToken", "/tokens/:tokenId/revoke")
      .setPath(TokenIdPath)
      .addSuccess(TokenInfo)
      .pipe(
        described(
          "Revoke a token",
          "The token is refused from the next request on, by every server on the database (each request checks it)."
        )
      )
  )
  .add(
    HttpApiEndpoint.post("rotateToken", "/tokens/:tokenId/rotate")
      .setPath(TokenIdPath)
      .addSuccess(IssuedToken, { status: 201 })
      .pipe(
        described(
          "Rotate a token",
          "A new token with the same tenant, name and expiry; the old one is revoked in the same transaction."
        )
      )
  )
  .addError(NotFound)
  .addError(InvalidInputWire)
  .addError(ServerErrorWire)
  .middleware(AdminAuthentication)
  .prefix(ADMIN_PREFIX)
  .annotate(
    OpenApi.Description,
    "Tenants and tokens, for the operator; authenticated with the server's admin token (AGENTSYNC_ADMIN_TOKEN)."
  ) {}
