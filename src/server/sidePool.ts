/** A small `pg` pool of its own beside the server's `PgClient`, on the same database, for work that must not queue behind it. */
import * as PgClient from "@effect/sql-pg/PgClient"
import { Effect, Option, Redacted } from "effect"
import * as Pg from "pg"

export interface SidePoolOptions {
  readonly max: number
  readonly applicationName: string
  /** Every result in PostgreSQL's binary format (the `pg` client option, absent from the pool's types). */
  readonly binary?: boolean
  readonly types?: Pg.CustomTypesConfig
}

/**
 * The pool, opened from the configuration of the server's `PgClient` and closed with the scope; none when the
 * server has no `PgClient` or its database takes a single session (the embedded one), which can take no second
 * connection.
 */
export const sidePool = (options: SidePoolOptions) =>
  Effect.gen(function* () {
    const client = yield* Effect.serviceOption(PgClient.PgClient)
    if (Option.isNone(client) || client.value.config.maxConnections === 1) return Option.none<Pg.Pool>()
    const c = client.value.config
    const pool = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const config: Pg.PoolConfig & { readonly binary?: boolean } = {
          connectionString: c.url === undefined ? undefined : Redacted.value(c.url),
          host: c.host,
          port: c.port,
          user: c.username,
          password: c.password === undefined ? undefined : Redacted.value(c.password),
          database: c.database,
          ssl: c.ssl,
          max: options.max,
          application_name: options.applicationName,
          ...(options.binary === true ? { binary: true } : {}),
          ...(options.types === undefined ? {} : { types: options.types })
        }
        const pool = new Pg.Pool(config)
        // An idle connection that breaks is dropped by the pool; the next use opens another.
        pool.on("error", () => undefined)
        return pool
      }),
      (pool) => Effect.promise(() => pool.end().catch(() => undefined))
    )
    return Option.some(pool)
  })
