/** Blob bytes read for a download in PostgreSQL's binary format, on a small pool of their own: no hex text in between. */

import type * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { Effect, Option } from "effect"
import * as Pg from "pg"
import { sidePool } from "../sidePool.js"

/** Connections of the reader's pool: one per download in progress, beside the server's. */
const READER_CONNECTIONS = 4

// In the text format a bytea column arrives as hex: twice its size on the wire, encoded by PostgreSQL and decoded
// here (a third of the server's CPU on a full download). In the binary format it is its bytes; text columns are
// their UTF-8 bytes, read as strings.
const BYTEA = 17
const types = {
  getTypeParser: (oid: number, format?: "text" | "binary") =>
    format === "binary" && oid === BYTEA ? (value: Buffer) => value : Pg.types.getTypeParser(oid, format)
}

const BLOBS = "SELECT sha256, data FROM blobs WHERE tenant_id = $1 AND sha256 = ANY($2::text[])"

export type BlobRows = ReadonlyArray<{ readonly sha256: string; readonly data: Uint8Array }>

/**
 * Reads a tenant's blobs by hash: in the binary format on a pool of its own (the server's `PgClient`
 * configuration), or through `sql` where the database takes a single session (the embedded one) or is not
 * PostgreSQL through `PgClient`.
 */
export const blobReader = (sql: SqlClient.SqlClient) =>
  Effect.gen(function* () {
    const pool = yield* sidePool({ max: READER_CONNECTIONS, applicationName: "agentsync-blobs", binary: true, types })
    const viaSql = (tenantId: string, shas: ReadonlyArray<string>) =>
      sql<{ sha256: string; data: Uint8Array }>`
        SELECT sha256, data FROM blobs WHERE tenant_id = ${tenantId} AND sha256 IN ${sql.in(shas)}`
    if (Option.isNone(pool)) return viaSql
    return (tenantId: string, shas: ReadonlyArray<string>): Effect.Effect<BlobRows, SqlError> =>
      Effect.async<BlobRows, SqlError>((resume) => {
        pool.value.query<{ sha256: string; data: Buffer }>(BLOBS, [tenantId, [...shas]], (cause, result) =>
          resume(
            cause ? Effect.fail(new SqlError({ cause, message: "Failed to read blobs" })) : Effect.succeed(result.rows)
          )
        )
      })
  })
