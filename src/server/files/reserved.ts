/** A connection of the server's pool reserved for a COPY, as node-postgres' client, where the database can spare one. */
import type * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Effect, Option } from "effect"
import { rawClient } from "../../stages/db/export.js"

/**
 * Whether a COPY can have a connection of its own: the database is PostgreSQL through `PgClient` with connections
 * to spare, not a single-session one (the embedded database), where the plain query is used instead.
 */
export const copyCapable = Effect.map(
  Effect.serviceOption(PgClient.PgClient),
  (client) => Option.isSome(client) && client.value.config.maxConnections !== 1
)

/**
 * A connection reserved until the scope closes, as node-postgres' client (none where the driver exposes none).
 * Not interrupted while the pool hands it over: the driver's acquisition has no canceller, so a connection handed
 * to a fiber that was interrupted meanwhile would never go back to the pool.
 */
export const reserveClient = (sql: SqlClient.SqlClient) =>
  Effect.map(Effect.uninterruptible(sql.reserve), (connection) => Option.fromNullable(rawClient(connection)))
