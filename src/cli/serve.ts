/** `agentsync serve [--host] [--port] [--data DIR]`: the tenant server on DATABASE_URL or the embedded default. */
import * as nodePath from "node:path"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Config, Console, Effect, Layer, Option } from "effect"
import { emit } from "./output.js"

const host = Options.text("host").pipe(Options.withDescription("address to listen on"), Options.withDefault("127.0.0.1"))
const port = Options.integer("port").pipe(Options.withDescription("port to listen on (0: a free one)"), Options.withDefault(8787))
export const data = Options.text("data").pipe(
  Options.withDescription("folder whose .agentsync/server-pgdata holds the embedded database when DATABASE_URL is not set (default: .)"),
  Options.optional
)

/** The server's database: DATABASE_URL, else PGlite in `<data>/.agentsync/server-pgdata`. */
export const serverDatabase = (dataOpt: Option.Option<string>) =>
  Effect.gen(function* () {
    const url = yield* Config.option(Config.redacted("DATABASE_URL"))
    const { Database } = yield* Effect.promise(() => import("../services/Database.js"))
    return Database.layer({
      url,
      dataDir: nodePath.join(nodePath.resolve(Option.getOrElse(dataOpt, () => ".")), ".agentsync", "server-pgdata")
    })
  })

export const serve = Command.make("serve", { host, port, data }, (o) =>
  Effect.gen(function* () {
    const database = yield* serverDatabase(o.data)
    const Server = yield* Effect.promise(() => import("../server/http.js"))
    const server = Server.layer({ host: o.host, port: o.port }).pipe(Layer.provide(database))
    yield* Effect.scoped(
      Effect.gen(function* () {
        const context = yield* Layer.build(server)
        const url = yield* Effect.provide(Server.url, context)
        // The address goes to stderr for people and, with --json, to stdout for scripts.
        yield* Console.error(`agentsync serve: listening on ${url}`)
        yield* emit({ url, openapi: `${url}/api/v1/openapi.json` }, () => "")
        return yield* Effect.never
      })
    )
  })
).pipe(Command.withDescription("run the tenant server (files API, OpenAPI at /api/v1/openapi.json)"))
