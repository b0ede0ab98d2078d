/** The server's probes: /livez, /readyz and /api/v1/health, each answered within a bound whatever the database does. */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as SqlClient from "@effect/sql/SqlClient"
import { Duration, Effect } from "effect"
import { AgentsyncApi, DatabaseStatus, Health, Live, NotReady } from "../api/index.js"
import { causeMessage } from "../services/ProjectDatabase.js"
import { MIGRATIONS_TABLE, migrations } from "./migrations.js"

export const VERSION = "0.1.0"

const EXPECTED = Object.keys(migrations).length

/** A probe never waits longer on the database than this (a load balancer's probe usually times out at 5 s). */
const PROBE_TIMEOUT = Duration.seconds(2)

/** The database's state: one query for reachability and the applied migrations, bounded in time. */
export const databaseStatus = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  return yield* sql<{ applied: number }>`SELECT count(*)::int AS applied FROM ${sql(MIGRATIONS_TABLE)}`.pipe(
    Effect.timeoutFail({
      duration: PROBE_TIMEOUT,
      onTimeout: () => new Error(`no answer within ${Duration.format(PROBE_TIMEOUT)}`)
    }),
    Effect.map(([row]) => {
      const applied = row?.applied ?? 0
      return new DatabaseStatus({
        reachable: true,
        migrations: { applied, expected: EXPECTED },
        ...(applied >= EXPECTED
          ? {}
          : { reason: `${EXPECTED - applied} server migration(s) not applied: restart a server to apply them` })
      })
    }),
    Effect.catchAll((cause) =>
      Effect.succeed(
        new DatabaseStatus({
          reachable: false,
          migrations: { applied: 0, expected: EXPECTED },
          reason: `database unreachable: ${causeMessage(cause)}`
        })
      )
    )
  )
})

const ready = (status: DatabaseStatus) =>
  status.reason === undefined
    ? Effect.succeed(status)
    : Effect.fail(new NotReady({ reason: status.reason, database: status }))

export const HealthLive = HttpApiBuilder.group(AgentsyncApi, "health", (handlers) =>
  Effect.map(SqlClient.SqlClient, (sql) => {
    const status = Effect.provideService(databaseStatus, SqlClient.SqlClient, sql)
    return handlers
      .handle("livez", () => Effect.succeed(new Live({ ok: true })))
      .handle("readyz", () => Effect.flatMap(status, ready))
      .handle("health", () =>
        Effect.flatMap(status, ready).pipe(
          Effect.map((database) => new Health({ ok: true, version: VERSION, database }))
        )
      )
  })
)
