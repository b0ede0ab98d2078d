/** `agentsync token create|list|revoke|rotate`: tenants' tokens, through a running server's admin API or its database. */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Duration, Effect, Option, Redacted } from "effect"
import type { IssuedToken, TokenInfo } from "../api/admin.js"
import { groups } from "../domain/text.js"
import { InvalidInput } from "../errors.js"
import { emit, tableOf } from "./output.js"
import { data } from "./serve.js"
import { server, withAdmin } from "./tenant.js"

const tenantArg = Args.text({ name: "TENANT" }).pipe(
  Args.withDescription("the tenant id (see `agentsync tenant list`)")
)
const tokenArg = Args.text({ name: "TOKEN_ID" }).pipe(
  Args.withDescription("the token's id: the 16 hex digits after `ast_` (see `agentsync token list`)")
)
const name = Options.text("name").pipe(Options.withDescription("what the token is for"), Options.withDefault("cli"))
const expiresIn = Options.text("expires-in").pipe(
  Options.withDescription("how long it works, e.g. `30 days`, `12 hours` (default: until revoked)"),
  Options.optional
)
const tenantOpt = Options.text("tenant").pipe(Options.withDescription("only this tenant's tokens"), Options.optional)

/** `ast_<id>` or `ast_<id>_…` as the id alone; anything else must be the id. */
const tokenId = (given: string) => {
  const m = groups(/^(?:ast_)?([0-9a-f]{16})(?:_.*)?$/, given.trim(), 1)
  return m
    ? Effect.succeed(m[0])
    : Effect.fail(
        new InvalidInput({ field: "TOKEN_ID", reason: "a token id is 16 hex digits (see `agentsync token list`)" })
      )
}

const expiryOf = (given: Option.Option<string>) =>
  Option.match(given, {
    onNone: () => Effect.succeed(undefined),
    onSome: (text) =>
      Option.match(Duration.decodeUnknown(text.trim()), {
        onNone: () =>
          Effect.fail(
            new InvalidInput({
              field: "--expires-in",
              reason: `not a duration: ${JSON.stringify(text)} (e.g. "30 days")`
            })
          ),
        onSome: (d) => Effect.succeed(new Date(Date.now() + Duration.toMillis(d)).toISOString())
      })
  })

const shown = (issued: IssuedToken, verb: string) => {
  const token = Redacted.value(issued.token)
  return emit({ ...issued.info, token, replaced: issued.replaced }, () =>
    [
      `token ${issued.info.id} (${issued.info.name}) ${verb} for tenant ${issued.info.tenant_id}${issued.info.expires_at === null ? "" : `, expires ${issued.info.expires_at}`}`,
      ...(issued.replaced === null ? [] : [`token ${issued.replaced} is revoked`]),
      `token: ${token}`,
      "the token is shown only now: keep it in AGENTSYNC_TOKEN (never in agentsync.yaml)"
    ].join("\n")
  )
}

const state = (t: TokenInfo) =>
  t.revoked_at !== null
    ? "revoked"
    : t.expires_at !== null && Date.parse(t.expires_at) <= Date.now()
      ? "expired"
      : "active"

const create = Command.make("create", { tenant: tenantArg, name, expiresIn, data, server }, (o) =>
  withAdmin(o, (ops) =>
    Effect.flatMap(expiryOf(o.expiresIn), (expiresAt) =>
      Effect.flatMap(ops.createToken(o.tenant, o.name, expiresAt), (issued) => shown(issued, "created"))
    )
  )
).pipe(Command.withDescription("create a token for a tenant and print it (once)"))

const list = Command.make("list", { tenant: tenantOpt, data, server }, (o) =>
  withAdmin(o, (ops) =>
    Effect.flatMap(ops.listTokens(Option.getOrUndefined(o.tenant)), (tokens) =>
      emit(tokens, () =>
        tableOf(tokens, "no tokens", ["TOKEN", "TENANT", "NAME", "STATE", "CREATED", "LAST USED", "EXPIRES"], (t) => [
          t.id,
          t.tenant_id,
          t.name,
          state(t),
          t.created_at,
          t.last_used_at ?? "never",
          t.expires_at ?? "never"
        ])
      )
    )
  )
).pipe(Command.withDescription("list tokens (never their secrets): name, state, creation, last use, expiry"))

const revoke = Command.make("revoke", { token: tokenArg, data, server }, (o) =>
  withAdmin(o, (ops) =>
    Effect.flatMap(tokenId(o.token), (id) =>
      Effect.flatMap(ops.revokeToken(id), (info) =>
        emit(info, () => `token ${info.id} (${info.name}, tenant ${info.tenant_id}) revoked at ${info.revoked_at}`)
      )
    )
  )
).pipe(Command.withDescription("revoke a token: every server refuses it from its next request"))

const rotate = Command.make("rotate", { token: tokenArg, data, server }, (o) =>
  withAdmin(o, (ops) =>
    Effect.flatMap(tokenId(o.token), (id) => Effect.flatMap(ops.rotateToken(id), (issued) => shown(issued, "issued")))
  )
).pipe(Command.withDescription("replace a token by a new one (same tenant, name and expiry) and revoke it"))

export const token = Command.make("token").pipe(
  Command.withDescription("manage tenants' tokens (while the server runs: --server URL with AGENTSYNC_ADMIN_TOKEN)"),
  Command.withSubcommands([create, list, revoke, rotate])
)
