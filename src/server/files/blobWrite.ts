/**
 * An upload's blobs stored as pending: a binary COPY into a staging table on one of the server's connections, then
 * moved into `blobs` by one statement that leaves alone a blob the tenant already holds.
 */
import { Readable } from "node:stream"
import { pipeline } from "node:stream/promises"
import type * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { Effect, Exit, Option } from "effect"
import * as Pg from "pg"
import { from as copyFrom } from "pg-copy-streams"
import { copyBinaryEncode } from "./copyBinary.js"
import { copyCapable, reserveClient } from "./reserved.js"

export interface PendingBlob {
  readonly sha256: string
  readonly data: Uint8Array
}

/**
 * Stores a tenant's blobs as pending for an upload, all of them or none. A blob the tenant already holds (kept, or
 * pending for another upload) is left as it is: blobs are content-addressed, and uploads may race for the same one.
 */
export type BlobWriter = (
  tenantId: string,
  uploadId: string,
  blobs: ReadonlyArray<PendingBlob>
) => Effect.Effect<void, SqlError>

const failed = (cause: unknown) => new SqlError({ cause, message: "Failed to store blobs" })

/**
 * The staging table is the session's own: created by the first batch on a connection, emptied by every commit
 * that used it (ON COMMIT DELETE ROWS), so a batch adds nothing to the catalog. A COPY cannot skip a row that is
 * already stored, which is why it does not go into `blobs` itself. Its `data` is compressed as `blobs.data` is
 * (lz4 where the server has it): a compressed value moves into `blobs` as it is, never compressed again, so with
 * the default (pglz) every blob would be stored in pglz, at several times the database's CPU. `size` is the stored
 * length, not sent.
 */
const STAGE = `BEGIN; DO $$ BEGIN
  IF to_regclass('pg_temp.upload_blobs') IS NULL THEN
    CREATE TEMP TABLE upload_blobs (sha256 text NOT NULL, data bytea NOT NULL) ON COMMIT DELETE ROWS;
    IF (SELECT attcompression FROM pg_attribute WHERE attrelid = 'blobs'::regclass AND attname = 'data') = 'l' THEN
      ALTER TABLE pg_temp.upload_blobs ALTER COLUMN data SET COMPRESSION lz4;
    END IF;
  END IF;
END $$`
// Binary: a bytea's bytes travel as they are, with no escaping to write or to parse.
const COPY = "COPY pg_temp.upload_blobs (sha256, data) FROM STDIN (FORMAT binary)"
const MOVE = `INSERT INTO blobs (tenant_id, sha256, size, data, upload_id)
SELECT $1, sha256, octet_length(data), data, $2 FROM pg_temp.upload_blobs ON CONFLICT DO NOTHING`

const query = (client: Pg.ClientBase, text: string, values?: ReadonlyArray<string>) =>
  Effect.tryPromise({ try: () => client.query(text, values === undefined ? undefined : [...values]), catch: failed })

/**
 * The COPY, its pieces written as the socket takes them. Interrupted, the stream is destroyed, which ends the COPY
 * with a CopyFail; the server's answer to it reaches the client before any query queued behind it.
 */
const copyIn = (client: Pg.ClientBase, blobs: ReadonlyArray<PendingBlob>) =>
  Effect.tryPromise({
    try: (signal) =>
      pipeline(
        Readable.from(copyBinaryEncode(blobs.map((b) => [Buffer.from(b.sha256, "latin1"), b.data]))),
        client.query(copyFrom(COPY)),
        { signal }
      ),
    catch: failed
  })

/**
 * Whatever ended the batch before its commit, the connection goes back with no transaction open: the rollback
 * is queued behind what is still running on it (a COPY ending with its CopyFail, a statement the interruption
 * did not stop) and undoes it. A connection whose rollback fails is closed, so the pool drops it.
 */
const rollback = (client: Pg.ClientBase) =>
  Effect.promise(() =>
    client.query("ROLLBACK").then(
      () => undefined,
      () => (client instanceof Pg.Client ? client.end().catch(() => undefined) : undefined)
    )
  )

/** The batch on a reserved connection, in one transaction; `false` where the driver exposes no client. */
const copyWrite = (sql: SqlClient.SqlClient, tenantId: string, uploadId: string, blobs: ReadonlyArray<PendingBlob>) =>
  Effect.scoped(
    Effect.flatMap(reserveClient(sql), (reserved) => {
      if (Option.isNone(reserved)) return Effect.succeed(false)
      const client = reserved.value
      return query(client, STAGE).pipe(
        Effect.zipRight(copyIn(client, blobs)),
        Effect.zipRight(query(client, MOVE, [tenantId, uploadId])),
        Effect.zipRight(query(client, "COMMIT")),
        Effect.as(true),
        Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : rollback(client)))
      )
    })
  )

const plainWrite =
  (sql: SqlClient.SqlClient): BlobWriter =>
  (tenantId, uploadId, blobs) =>
    sql`INSERT INTO blobs ${sql.insert(
      blobs.map((b) => ({
        tenant_id: tenantId,
        sha256: b.sha256,
        size: b.data.length,
        data: b.data,
        upload_id: uploadId
      }))
    )} ON CONFLICT DO NOTHING`.pipe(Effect.asVoid)

// Below this many bytes a batch goes by the plain insert: a COPY's four round trips cost a small push more than
// its bytes cost as bind parameters.
const COPY_FROM = 256 * 1024

/**
 * The writer of a server: the binary COPY where a connection can be spared for it (`copyCapable`) and the batch is
 * large enough to pay for it; otherwise (a small batch, or the embedded single-session database) the plain insert,
 * every blob a bind parameter.
 */
export const blobWriter = (sql: SqlClient.SqlClient) =>
  Effect.map(copyCapable, (capable): BlobWriter => {
    const plain = plainWrite(sql)
    if (!capable) return plain
    return (tenantId, uploadId, blobs) =>
      blobs.reduce((n, b) => n + b.data.length, 0) < COPY_FROM
        ? plain(tenantId, uploadId, blobs)
        : Effect.flatMap(copyWrite(sql, tenantId, uploadId, blobs), (done) =>
            done ? Effect.void : plain(tenantId, uploadId, blobs)
          )
  })
