/**
 * An upload's blobs stored as pending (marked with the upload that wrote them): those the tenant does not hold by a
 * binary COPY straight into `blobs` on one of the server's connections; when another upload stores the same bytes
 * meanwhile, by a COPY into a staging table moved into `blobs` by one statement that leaves alone a blob the tenant
 * already holds. The writer answers with the hashes it left alone, which the upload's commit makes permanent.
 */
import { Readable } from "node:stream"
import { pipeline } from "node:stream/promises"
import type * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { Data, Effect, Exit, Option } from "effect"
import * as Pg from "pg"
import { from as copyFrom } from "pg-copy-streams"
import { copyBinaryEncode, type EncodedField, PIECE_BYTES, type PiecePool, piecePool, textField } from "./copyBinary.js"
import { copyCapable, reserveClient } from "./reserved.js"

export interface PendingBlob {
  readonly sha256: string
  readonly data: Uint8Array
}

/**
 * Stores a tenant's blobs as pending for an upload (`written_by` names it), all of them or none, and answers with
 * the hashes of those it left alone: a blob the tenant already holds (permanent, or pending for another upload) is
 * not written again, as blobs are content-addressed and uploads may race for the same one.
 */
export type BlobWriter = (
  tenantId: string,
  uploadId: string,
  blobs: ReadonlyArray<PendingBlob>,
  options?: WriteOptions
) => Effect.Effect<ReadonlyArray<string>, SqlError>

export interface WriteOptions {
  /**
   * The tenant is expected to hold none of the batch's blobs (it held no blob when its upload began, and no batch
   * before found one held): the COPY goes straight in, without first reading which hashes the tenant holds (a primary
   * key lookup per hash and a round trip per batch). A blob held after all ends that COPY with a unique violation and
   * the batch is written again the staged way, so the answer is the same either way; only its cost differs.
   */
  readonly noneHeld?: boolean
}

/** The hashes of `blobs` not among `written`: those a statement that skips held rows left alone. */
const leftAlone = (blobs: ReadonlyArray<PendingBlob>, written: ReadonlyArray<{ readonly sha256: string }>) => {
  if (written.length === blobs.length) return []
  const wrote = new Set(written.map((r) => r.sha256))
  return blobs.filter((b) => !wrote.has(b.sha256)).map((b) => b.sha256)
}

/** Blobs once each, in hash order. */
const inHashOrder = (blobs: ReadonlyArray<PendingBlob>) =>
  [...new Map(blobs.map((b) => [b.sha256, b])).values()].sort((a, b) =>
    a.sha256 < b.sha256 ? -1 : a.sha256 > b.sha256 ? 1 : 0
  )

const failed = (cause: unknown) => new SqlError({ cause, message: "Failed to store blobs" })

/**
 * The staging table is the session's own: created by the first batch on a connection, emptied by every commit
 * that used it (ON COMMIT DELETE ROWS), so a batch adds nothing to the catalog. Its `data` is compressed as
 * `blobs.data` is (lz4 where the server has it): a compressed value moves into `blobs` as it is, never compressed
 * again, so with the default (pglz) every blob would be stored in pglz, at several times the database's CPU. `size`
 * is the stored length, not sent.
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
const COPY_STAGED = "COPY pg_temp.upload_blobs (sha256, data) FROM STDIN (FORMAT binary)"
// In hash order, as the direct COPY inserts, so that two writers never wait on each other's rows crosswise.
const MOVE = `INSERT INTO blobs (tenant_id, sha256, size, data, written_by)
SELECT $1, sha256, octet_length(data), data, $2 FROM pg_temp.upload_blobs ORDER BY sha256 ON CONFLICT DO NOTHING
RETURNING sha256`

/**
 * A COPY cannot skip a row that is already stored, so the direct path first reads which of the batch's hashes the
 * tenant holds, in the same transaction, and copies the others. The bytes are then written once, where the staging
 * table wrote them twice (into the staging table, then into `blobs`: a third of the database's CPU for a first push).
 *
 * One lookup of the primary key per hash: a lateral subquery with a limit is never flattened into a join, so the
 * planner cannot trade the lookups for a scan of all the tenant's blobs. With `sha256 = ANY($2)` it did, while the
 * table's statistics were those of a tenant with few blobs (as during its first upload, before any analyze): every
 * batch read every blob row stored before it, over half the database's CPU on a 100,000-file first push.
 */
export const HELD = `SELECT h.sha256 FROM unnest($2::text[]) AS h(sha256),
  LATERAL (SELECT 1 FROM blobs b WHERE b.tenant_id = $1 AND b.sha256 = h.sha256 LIMIT 1) AS held`
const COPY_DIRECT = "COPY blobs (tenant_id, sha256, size, data, written_by) FROM STDIN (FORMAT binary)"

/**
 * What ends a direct COPY when another upload stores one of its blobs between the read of held hashes and the COPY
 * (or, where that read is skipped, when the tenant holds one after all): a unique violation (the other committed
 * first, or the row is there already), or a deadlock PostgreSQL broke (never between two direct COPYs or a COPY and
 * a plain insert, which all insert in hash order). The batch is then written again the staged way.
 */
const RACED = new Set(["23505", "40P01"])
const raced = (cause: unknown) =>
  typeof cause === "object" && cause !== null && "code" in cause && RACED.has(String(cause.code))

const query = <R extends Pg.QueryResultRow = Pg.QueryResultRow>(
  client: Pg.ClientBase,
  text: string,
  values?: ReadonlyArray<unknown>
) =>
  Effect.tryPromise({ try: () => client.query<R>(text, values === undefined ? undefined : [...values]), catch: failed })

/** A direct COPY another upload raced (see `RACED`): the batch is written again the staged way. */
class Raced extends Data.TaggedError("Raced") {}

/** The pieces a server's COPYs are encoded into are kept between batches: about one batch's worth (9 MiB). */
const KEPT_PIECES = Math.ceil((9 * 1024 * 1024) / PIECE_BYTES)

/**
 * The COPY of `text`, its pieces written as the socket takes them and taken from `pool`. They go back to it only once
 * the COPY has ended: PostgreSQL has then read every byte, so neither the socket nor its queue still holds one. A COPY
 * that fails leaves its pieces to the collector, as a write may still be queued. Interrupted, the stream is
 * destroyed, which ends the COPY with a CopyFail; the server's answer to it reaches the client before any query
 * queued behind it. Fails with the driver's error as it is (so that a race can be told apart).
 */
const copyIn = (
  pool: PiecePool,
  client: Pg.ClientBase,
  text: string,
  tuples: Iterable<ReadonlyArray<EncodedField>>
) => {
  const used: Array<Buffer> = []
  const pieces = { take: pool.take, took: (piece: Buffer) => void used.push(piece) }
  return Effect.tryPromise({
    try: (signal) =>
      pipeline(Readable.from(copyBinaryEncode(tuples, pieces)), client.query(copyFrom(text)), { signal }).then(() =>
        pool.give(used)
      ),
    catch: (cause) => cause
  })
}

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

/** Runs `batch` (which opens a transaction) and commits it; any other end rolls it back. */
const transaction = <A, E>(client: Pg.ClientBase, batch: Effect.Effect<A, E>) =>
  batch.pipe(
    Effect.tap(() => query(client, "COMMIT")),
    Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : rollback(client)))
  )

/**
 * The batch by the staging table: a blob held by the tenant, or stored meanwhile by another upload, left alone (and
 * its hash answered).
 */
const stagedWrite = (
  pool: PiecePool,
  client: Pg.ClientBase,
  tenantId: string,
  uploadId: string,
  blobs: ReadonlyArray<PendingBlob>
) =>
  transaction(
    client,
    query(client, STAGE).pipe(
      Effect.zipRight(
        Effect.mapError(
          copyIn(
            pool,
            client,
            COPY_STAGED,
            blobs.map((b) => [textField(b.sha256), b.data])
          ),
          failed
        )
      ),
      Effect.zipRight(query<{ readonly sha256: string }>(client, MOVE, [tenantId, uploadId])),
      Effect.map((moved) => leftAlone(blobs, moved.rows))
    )
  )

/**
 * The batch straight into `blobs`: the hashes the tenant holds read first (and answered; not read where none is
 * expected held), the rest copied in hash order, each once. `undefined` when another upload stored one of them
 * meanwhile (rolled back; nothing of this batch stored).
 */
const directWrite = (
  pool: PiecePool,
  client: Pg.ClientBase,
  tenantId: string,
  uploadId: string,
  blobs: ReadonlyArray<PendingBlob>,
  noneHeld: boolean
) =>
  transaction(
    client,
    Effect.gen(function* () {
      yield* query(client, "BEGIN")
      const unique = new Map(blobs.map((b) => [b.sha256, b]))
      const heldHashes = noneHeld
        ? []
        : (yield* query<{ readonly sha256: string }>(client, HELD, [tenantId, [...unique.keys()]])).rows.map(
            (row) => row.sha256
          )
      for (const sha of heldHashes) unique.delete(sha)
      if (unique.size === 0) return heldHashes
      const tenant = Buffer.from(tenantId)
      const upload = Buffer.from(uploadId)
      const fresh = inHashOrder([...unique.values()])
      // Raced: failing with Raced rolls the transaction back before the staged write begins another.
      yield* copyIn(
        pool,
        client,
        COPY_DIRECT,
        fresh.map((b) => [tenant, textField(b.sha256), b.data.length, b.data, upload])
      ).pipe(Effect.mapError((cause) => (raced(cause) ? new Raced() : failed(cause))))
      return heldHashes
    })
  ).pipe(Effect.catchTag("Raced", () => Effect.succeed(undefined)))

/**
 * The batch on a reserved connection: directly, or staged after a race; `undefined` where the driver exposes no
 * client.
 */
const copyWrite = (
  pool: PiecePool,
  sql: SqlClient.SqlClient,
  tenantId: string,
  uploadId: string,
  blobs: ReadonlyArray<PendingBlob>,
  noneHeld: boolean
) =>
  Effect.scoped(
    Effect.flatMap(reserveClient(sql), (reserved) => {
      if (Option.isNone(reserved)) return Effect.succeed(undefined)
      const client = reserved.value
      return Effect.flatMap(directWrite(pool, client, tenantId, uploadId, blobs, noneHeld), (held) =>
        held !== undefined ? Effect.succeed(held) : stagedWrite(pool, client, tenantId, uploadId, blobs)
      )
    })
  )

/**
 * Every blob a bind parameter, inserted once each in hash order: the order a COPY inserts in, so a small batch and
 * another upload's COPY sharing two blobs take their row locks in the same order (in arrival order, two shared blobs
 * in opposite orders deadlocked, and the upload failed).
 */
const plainWrite =
  (sql: SqlClient.SqlClient): BlobWriter =>
  (tenantId, uploadId, blobs) =>
    sql<{ readonly sha256: string }>`INSERT INTO blobs ${sql.insert(
      inHashOrder(blobs).map((b) => ({
        tenant_id: tenantId,
        sha256: b.sha256,
        size: b.data.length,
        data: b.data,
        written_by: uploadId
      }))
    )} ON CONFLICT DO NOTHING RETURNING sha256`.pipe(Effect.map((written) => leftAlone(blobs, written)))

// Below this many bytes a batch goes by the plain insert: a COPY's four round trips cost a small push more than
// its bytes cost as bind parameters.
const COPY_FROM = 256 * 1024

/**
 * The writer of a server: the binary COPY where a connection can be spared for it (`copyCapable`) and the batch is
 * large enough to pay for it; otherwise (a small batch, or the embedded single-session database) the plain insert,
 * every blob a bind parameter. The COPYs' pieces come from `pool`, one per server.
 */
export const blobWriter = (sql: SqlClient.SqlClient, pool: PiecePool = piecePool(KEPT_PIECES)) =>
  Effect.map(copyCapable, (capable): BlobWriter => {
    const plain = plainWrite(sql)
    if (!capable) return plain
    return (tenantId, uploadId, blobs, options) =>
      blobs.reduce((n, b) => n + b.data.length, 0) < COPY_FROM
        ? plain(tenantId, uploadId, blobs)
        : Effect.flatMap(copyWrite(pool, sql, tenantId, uploadId, blobs, options?.noneHeld === true), (held) =>
            held !== undefined ? Effect.succeed(held) : plain(tenantId, uploadId, blobs)
          )
  })
