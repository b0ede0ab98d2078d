/** `agentsync serve [--host] [--port] [--data DIR]`: the tenant server on DATABASE_URL or the embedded default. */
import * as nodePath from "node:path"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Config, Console, Duration, Effect, Layer, Option } from "effect"
import { CurrentConfig } from "../config.js"
import { growHeapForBodies } from "../server/heapGrowth.js"
import { ProgressReporter, silentProgress } from "../services/Progress.js"
import { runsUntilStopped } from "../services/RunStatus.js"
import { configWithJobs } from "./jobs.js"
import { emit } from "./output.js"

const host = Options.text("host").pipe(
  Options.withDescription("address to listen on (env HOST; default 127.0.0.1)"),
  Options.withFallbackConfig(Config.string("HOST").pipe(Config.withDefault("127.0.0.1")))
)
const port = Options.integer("port").pipe(
  Options.withDescription("port to listen on, 0 for a free one (env PORT; default 8787)"),
  Options.withFallbackConfig(Config.integer("PORT").pipe(Config.withDefault(8787)))
)
const shutdownTimeout = Options.integer("shutdown-timeout").pipe(
  Options.withDescription(
    "seconds a stop waits for requests in flight before cutting them (env AGENTSYNC_SHUTDOWN_TIMEOUT; default 10)"
  ),
  Options.withFallbackConfig(Config.integer("AGENTSYNC_SHUTDOWN_TIMEOUT").pipe(Config.withDefault(10)))
)
export const data = Options.text("data").pipe(
  Options.withDescription(
    "folder whose .agentsync/server-pgdata holds the embedded database when DATABASE_URL is not set (default: .)"
  ),
  Options.optional
)

/** The server's database: DATABASE_URL, else PGlite in `<data>/.agentsync/server-pgdata`. */
export const serverDatabase = (dataOpt: Option.Option<string>) =>
  Effect.gen(function* () {
    const url = yield* Config.option(Config.redacted("DATABASE_URL"))
    const { Database } = yield* Effect.promise(() => import("../services/ProjectDatabase.js"))
    return Database.layer({
      url,
      dataDir: nodePath.join(nodePath.resolve(Option.getOrElse(dataOpt, () => ".")), ".agentsync", "server-pgdata")
    })
  })

const jobs = Options.boolean("jobs").pipe(
  Options.withDescription(
    "also run the scheduled jobs of agentsync.yaml, each fire claimed in the server's database (any number of replicas)"
  )
)

export const serve = Command.make("serve", { host, port, shutdownTimeout, data, jobs }, (o) =>
  Effect.gen(function* () {
    // Read first: with --jobs, a bad jobs: list stops the server from starting (exit 2), before anything runs.
    const project = o.jobs ? Option.some(yield* configWithJobs(Option.none())) : Option.none()
    const database = yield* serverDatabase(o.data)
    const Server = yield* Effect.promise(() => import("../server/index.js"))
    yield* Effect.scoped(
      Effect.gen(function* () {
        const db = yield* Layer.build(database)
        // This process is the server's own, so its heap may grow for the request bodies it reads (heapGrowth.ts);
        // `listen` leaves V8 alone, since a program embedding the library owns its process's flags.
        yield* Effect.sync(() => growHeapForBodies())
        const context = yield* Server.listen({
          host: o.host,
          port: o.port,
          shutdownTimeout: Duration.seconds(Math.max(0, o.shutdownTimeout))
        }).pipe(
          Effect.provide(db),
          // What requests and jobs do is logged per request, never drawn as progress over the log.
          Effect.provideService(ProgressReporter, silentProgress)
        )
        const url = yield* Effect.provide(Server.TenantServer.url, context)
        // The address goes to stderr for people and, with --json, to stdout for scripts.
        yield* Console.error(`agentsync serve: listening on ${url}`)
        yield* emit({ url, openapi: `${url}/api/v1/openapi.json` }, () => "")
        yield* runsUntilStopped
        if (Option.isSome(project)) {
          const Jobs = yield* Effect.promise(() => import("../programs/jobs/jobs.js"))
          // Closed first on a stop (forked last): a running job finishes before the server goes away.
          yield* Effect.forkScoped(
            Effect.flatMap(Jobs.Jobs, (jobs) => jobs.run()).pipe(
              Effect.provide(Jobs.Jobs.layerOnDatabase),
              Effect.provideService(CurrentConfig, project.value),
              Effect.provide(db),
              Effect.provideService(ProgressReporter, silentProgress)
            )
          )
        }
        return yield* Effect.never
      })
    )
  })
).pipe(
  Command.withDescription(
    "run the tenant server (files API, OpenAPI at /api/v1/openapi.json, probes /livez and /readyz, an access log line per request on stderr); --jobs runs the scheduled jobs too"
  )
)
