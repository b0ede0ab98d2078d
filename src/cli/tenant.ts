/** `agentsync tenant create|list`: the server's tenants, through a running server's admin API or its database directly. */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Config, Effect, Layer, Option, Redacted } from "effect"
import { MissingConfig } from "../errors.js"
import type { AdminOps } from "../services/AdminApi.js"
import { emit, tableOf } from "./output.js"
import { data, serverDatabase } from "./serve.js"

export const server = Options.text("server").pipe(
  Options.withDescription(
    "URL of a running server, managed through its admin API with AGENTSYNC_ADMIN_TOKEN (env AGENTSYNC_SERVER_URL); without it, the server's database directly (DATABASE_URL, else the embedded one under --data)"
  ),
  Options.optional
)

/**
 * Runs `f` on the admin operations: over HTTP when a server URL is given, else on the server's database (which an
 * embedded database's running server holds: then the error says to go through that server).
 */
export const withAdmin = <A, E, R>(
  o: { readonly server: Option.Option<string>; readonly data: Option.Option<string> },
  f: (ops: AdminOps) => Effect.Effect<A, E, R>
) =>
  Effect.gen(function* () {
    const url = Option.isSome(o.server) ? o.server : yield* Config.option(Config.string("AGENTSYNC_SERVER_URL"))
    if (Option.isSome(url)) {
      const token = yield* Config.option(Config.redacted("AGENTSYNC_ADMIN_TOKEN"))
      if (Option.isNone(token) || Redacted.value(token.value).trim() === "") {
        return yield* new MissingConfig({
          key: "AGENTSYNC_ADMIN_TOKEN",
          reason: "the server's admin token, as set in its environment, is needed to manage it over HTTP"
        })
      }
      const Admin = yield* Effect.promise(() => import("../services/AdminApi.js"))
      return yield* Effect.flatMap(Admin.remote(url.value.replace(/\/+$/, ""), token.value), f)
    }
    const database = yield* serverDatabase(o.data)
    const { Tenants, adminOps, Migrations } = yield* Effect.promise(() => import("../server/index.js"))
    return yield* Effect.flatMap(Tenants, (t) => f(adminOps(t))).pipe(
      Effect.provide(Tenants.Default.pipe(Layer.provide(Migrations.layer), Layer.provideMerge(database))),
      Effect.catchTag("SyncInProgress", (e) =>
        Effect.fail(
          new MissingConfig({
            key: "AGENTSYNC_SERVER_URL",
            reason: `the embedded database is held by a running server (${"lock" in e ? e.lock : "its lock"}); manage it through that server: --server URL (or AGENTSYNC_SERVER_URL) with AGENTSYNC_ADMIN_TOKEN`
          })
        )
      )
    )
  })

const name = Args.text({ name: "NAME" }).pipe(Args.withDescription("a name for the tenant"))

const create = Command.make("create", { name, data, server }, (o) =>
  withAdmin(o, (ops) =>
    Effect.gen(function* () {
      const created = yield* ops.createTenant(o.name)
      const token = Redacted.value(created.token.token)
      // The only time the token is shown: the server keeps its hash.
      yield* emit(
        { tenant_id: created.tenant.id, name: created.tenant.name, token_id: created.token.info.id, token },
        () =>
          [
            `tenant ${created.tenant.id} (${created.tenant.name}) created`,
            `token: ${token}`,
            "the token is shown only now: keep it in AGENTSYNC_TOKEN (never in agentsync.yaml)"
          ].join("\n")
      )
    })
  )
).pipe(Command.withDescription("create a tenant and print its id and a token (once)"))

const list = Command.make("list", { data, server }, (o) =>
  withAdmin(o, (ops) =>
    Effect.gen(function* () {
      const tenants = yield* ops.listTenants()
      yield* emit(tenants, () =>
        tableOf(tenants, "no tenants", ["TENANT", "NAME", "CREATED", "ACTIVE TOKENS"], (t) => [
          t.id,
          t.name,
          t.created_at,
          t.active_tokens
        ])
      )
    })
  )
).pipe(Command.withDescription("list the tenants, with their active tokens"))

export const tenant = Command.make("tenant").pipe(
  Command.withDescription("manage the server's tenants (while it runs: --server URL with AGENTSYNC_ADMIN_TOKEN)"),
  Command.withSubcommands([create, list])
)
