/** DatabaseSyncService: diff, push and pull of users/skills/contexts between the local and the cloud database, direct or through the tenant API. */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Context, Duration, Effect, Layer, Option, type Redacted, type Scope } from "effect"
import { CurrentConfig, type SyncConfig } from "../config.js"
import type { TableDiffCounts } from "../domain/db/importPlan.js"
import { DatabaseError, MissingConfig, type PartialImport } from "../errors.js"
import * as DatabaseApi from "../services/DatabaseApi.js"
import { phase } from "../services/Progress.js"
import { causeMessage, Database, describeUrl } from "../services/ProjectDatabase.js"
import { optionsFromConfig as apiOptionsFromConfig } from "../services/SyncApi.js"
import { checkSchema, type DbLocation, diffSources, type ExportSource, sqlSource } from "../stages/db/export.js"
import { type ImportOptions, type ImportReport, importSource } from "../stages/db/import.js"

export type DbTransport = "direct" | "api"

/** One side of a sync: where its rows come from and how rows are imported into it. */
export interface DbSide<E> {
  readonly describe: string
  readonly source: ExportSource<E>
  readonly check: Effect.Effect<void, DatabaseError | E>
  readonly importFrom: <E2>(
    source: ExportSource<E2>,
    options: ImportOptions
  ) => Effect.Effect<ImportReport, E | E2 | DatabaseError | PartialImport>
}

export interface DbDiffResult {
  readonly transport: DbTransport
  readonly remote: string
  readonly tables: ReadonlyArray<TableDiffCounts>
}

export interface DbSyncResult extends ImportReport {
  readonly direction: "push" | "pull"
  readonly transport: DbTransport
  readonly remote: string
}

const sqlSide = (loc: DbLocation, describe: string, side: string): DbSide<never> => ({
  describe,
  source: sqlSource(loc),
  check: checkSchema(loc, side),
  importFrom: (source, options) => importSource(loc, source, options)
})

/** A client on a Postgres URL for as long as the scope is open; a failure names host and port, never the password. */
export const connect = (url: Redacted.Redacted<string>, what: string) =>
  PgClient.make({ url, maxConnections: 4, connectTimeout: Duration.seconds(15), applicationName: "agentsync" }).pipe(
    Effect.provide(Reactivity.layer),
    Effect.tap((sql) => sql`SELECT 1`),
    Effect.mapError(
      (cause) =>
        new DatabaseError({
          reason: `cannot connect to the ${what} database at ${describeUrl(url)}: ${causeMessage(cause)}`,
          cause
        })
    )
  )

/** The cloud side and how it is reached. */
interface Remote {
  readonly transport: DbTransport
  readonly side: DbSide<DatabaseApi.DatabaseApiError>
}

/** The local database: DATABASE_URL or the embedded default, migrated. */
const openLocal = (config: SyncConfig) =>
  Effect.gen(function* () {
    const options = Database.optionsFromConfig(config)
    const context = yield* Layer.build(Database.layerMigrated(options))
    const sql = Context.get(context, SqlClient.SqlClient)
    const describe = Option.match(options.url, { onNone: () => `embedded (${options.dataDir})`, onSome: describeUrl })
    return sqlSide({ sql }, describe, "local")
  })

/**
 * The cloud side: AGENTSYNC_CLOUD_DATABASE_URL directly; else the tenant API, directly on the database URL it
 * hands out (`GET …/database`) or, when it hands none, through its export and import endpoints.
 */
const openRemote = (config: SyncConfig) =>
  Effect.gen(function* () {
    if (config.cloudDatabaseUrl !== undefined) {
      const sql = yield* connect(config.cloudDatabaseUrl, "cloud")
      return {
        transport: "direct",
        side: sqlSide({ sql }, describeUrl(config.cloudDatabaseUrl), "cloud")
      } satisfies Remote
    }
    if (config.directUrl === undefined && config.apiUrl === undefined) {
      return yield* new MissingConfig({
        key: "AGENTSYNC_CLOUD_DATABASE_URL",
        reason:
          "set it for direct database sync, or set AGENTSYNC_DIRECT_URL (or AGENTSYNC_API_URL + AGENTSYNC_TENANT_ID) and AGENTSYNC_TOKEN to sync through the tenant API"
      })
    }
    const options = yield* apiOptionsFromConfig(config)
    const client = yield* DatabaseApi.make(options).pipe(Effect.provide(FetchHttpClient.layer))
    const info = yield* client.info
    if (info.url !== null) {
      const sql = yield* connect(info.url, "tenant")
      return {
        transport: "direct",
        side: sqlSide({ sql, schema: info.schema }, `${describeUrl(info.url)} (schema ${info.schema})`, "tenant")
      } satisfies Remote
    }
    const side: DbSide<DatabaseApi.DatabaseApiError> = {
      describe: client.baseUrl,
      source: client.source,
      check: Effect.void,
      // One request streams every table: one phase, its rows counted from the answer.
      importFrom: (source, options) =>
        phase("sending the tables", client.importFrom(source, options), {
          unit: "rows",
          count: (r) => r.tables.reduce((n, t) => n + t.total, 0)
        })
    }
    return { transport: "api", side } satisfies Remote
  })

const withSides = <A, E>(
  config: SyncConfig,
  f: (local: DbSide<never>, remote: Remote) => Effect.Effect<A, E, Scope.Scope>
) =>
  Effect.scoped(
    Effect.gen(function* () {
      const remote = yield* openRemote(config)
      const local = yield* openLocal(config)
      return yield* f(local, remote)
    })
  )

export interface DbSyncOptions {
  readonly dryRun?: boolean | undefined
}

/** Database sync as the reference crate names it: diff, push (local → cloud) and pull (cloud → local). */
export class DatabaseSyncService extends Effect.Service<DatabaseSyncService>()("agentsync/DatabaseSyncService", {
  effect: Effect.gen(function* () {
    const config = yield* CurrentConfig
    const diff = Effect.fn("DatabaseSyncService.diff")(function* () {
      return yield* withSides(config, (local, remote) =>
        Effect.gen(function* () {
          yield* local.check
          yield* remote.side.check
          const tables = yield* diffSources(local.source, remote.side.source)
          return { transport: remote.transport, remote: remote.side.describe, tables } satisfies DbDiffResult
        })
      )
    })
    /** Push imports the local rows into the remote side, pull the other way; the source side is checked first. */
    const transfer = (direction: DbSyncResult["direction"]) =>
      Effect.fn(`DatabaseSyncService.${direction}`)(function* (options: DbSyncOptions = {}) {
        const dryRun = options.dryRun ?? config.dryRun
        return yield* withSides(config, (local, remote) =>
          Effect.gen(function* () {
            const [from, to] = direction === "push" ? [local, remote.side] : [remote.side, local]
            yield* from.check
            const report = yield* to.importFrom(from.source, { dryRun })
            return {
              direction,
              transport: remote.transport,
              remote: remote.side.describe,
              ...report
            } satisfies DbSyncResult
          })
        )
      })
    const push = transfer("push")
    const pull = transfer("pull")
    return { diff, push, pull } as const
  })
}) {}
