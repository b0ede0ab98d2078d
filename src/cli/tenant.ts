/** `agentsync tenant create NAME`: a new tenant on the server's database, and its first token, shown once. */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import { Effect, Layer, Redacted } from "effect"
import { emit } from "./output.js"
import { data, serverDatabase } from "./serve.js"

const name = Args.text({ name: "NAME" }).pipe(Args.withDescription("a name for the tenant"))

const create = Command.make("create", { name, data }, (o) =>
  Effect.gen(function* () {
    const database = yield* serverDatabase(o.data)
    const [{ FileStore }, Migrations] = yield* Effect.promise(() =>
      Promise.all([import("../server/FileStore.js"), import("../server/migrations.js")])
    )
    const created = yield* Effect.flatMap(FileStore, (store) => store.createTenant(o.name)).pipe(
      Effect.provide(FileStore.Default.pipe(Layer.provide(Migrations.layer), Layer.provideMerge(database)))
    )
    const token = Redacted.value(created.token)
    // The only time the token is shown: the server keeps its hash.
    yield* emit({ tenant_id: created.tenantId, name: created.name, token }, () =>
      [
        `tenant ${created.tenantId} (${created.name}) created`,
        `token: ${token}`,
        "the token is shown only now: keep it in AGENTSYNC_TOKEN (never in agentsync.yaml)"
      ].join("\n")
    )
  })
).pipe(Command.withDescription("create a tenant and print its id and a token (once)"))

export const tenant = Command.make("tenant").pipe(
  Command.withDescription("manage the tenants of the server's database"),
  Command.withSubcommands([create])
)
