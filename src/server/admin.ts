/** The admin API's handlers and its authentication: the operator's token from AGENTSYNC_ADMIN_TOKEN, compared in constant time. */
import { createHash, timingSafeEqual } from "node:crypto"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { Config, Effect, Layer, Option, Redacted } from "effect"
import { AdminAuthentication } from "../api/admin.js"
import { AgentsyncApi } from "../api/index.js"
import { MissingConfig, Unauthorized } from "../errors.js"
import { Tenants } from "./tenants.js"

/** An admin token shorter than this is refused at start: it guards every tenant. */
export const MIN_ADMIN_TOKEN = 24

/** The admin token of the server's environment, checked; none means the admin API answers 401 to everyone. */
export const adminToken = Effect.gen(function* () {
  const token = yield* Config.option(Config.redacted("AGENTSYNC_ADMIN_TOKEN")).pipe(
    Effect.orElseSucceed(() => Option.none())
  )
  if (Option.isNone(token)) return token
  const value = Redacted.value(token.value).trim()
  if (value.length < MIN_ADMIN_TOKEN || !/^[\x21-\x7e]+$/.test(value)) {
    return yield* new MissingConfig({
      key: "AGENTSYNC_ADMIN_TOKEN",
      reason: `must be at least ${MIN_ADMIN_TOKEN} visible characters (for example \`openssl rand -hex 32\`)`
    })
  }
  return Option.some(Redacted.make(value))
})

const digest = (s: string) => createHash("sha256").update(s).digest()

export const AdminAuthenticationLive = Layer.effect(
  AdminAuthentication,
  Effect.map(adminToken, (configured) => {
    const expected = Option.map(configured, (t) => digest(Redacted.value(t)))
    return AdminAuthentication.of({
      admin: (presented) =>
        Option.match(expected, {
          onNone: () =>
            Effect.fail(
              new Unauthorized({ reason: "the admin API is off on this server: set AGENTSYNC_ADMIN_TOKEN there" })
            ),
          onSome: (hash) =>
            timingSafeEqual(hash, digest(Redacted.value(presented).trim()))
              ? Effect.void
              : Effect.fail(new Unauthorized({ reason: "wrong admin token" }))
        })
    })
  })
)

export const AdminLive = HttpApiBuilder.group(AgentsyncApi, "admin", (handlers) =>
  Effect.map(Tenants, (tenants) =>
    handlers
      .handle("createTenant", ({ payload }) => tenants.createTenant(payload.name))
      .handle("listTenants", () => tenants.listTenants())
      .handle("listTokens", ({ urlParams }) => tenants.listTokens(urlParams.tenant_id))
      .handle("createToken", ({ payload }) => tenants.createToken(payload.tenant_id, payload.name, payload.expires_at))
      .handle("revokeToken", ({ path }) => tenants.revokeToken(path.tokenId))
      .handle("rotateToken", ({ path }) => tenants.rotateToken(path.tokenId))
  )
).pipe(Layer.provide(AdminAuthenticationLive))
