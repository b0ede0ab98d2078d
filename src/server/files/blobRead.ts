/** A tenant's blobs by hash, read for a download as their bytes: a binary COPY on one of the server's connections. */
import type * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { Effect, Option } from "effect"
import * as Pg from "pg"
import { copyBinaryDecoder } from "./copyBinary.js"
import { copyCapable, reserveClient } from "./reserved.js"

export type BlobRows = ReadonlyArray<{ readonly sha256: string; readonly data: Uint8Array }>

/** Reads a tenant's blobs by hash (a hash no blob has is absent from the rows; a hash asked twice may come twice). */
export type BlobReader = (
  tenantId: string,
  shas: ReadonlyArray<string>,
  allocate?: (size: number) => Buffer
) => Effect.Effect<BlobRows, SqlError>

/**
 * The tenant's blobs of `shas`, found one hash at a time: a lateral subquery with a limit is never
 * flattened into a join, so the planner cannot trade the lookups for a scan of all the tenant's blobs (as in
 * `blobProbe.ts`). With `sha256 IN (…)` it did while the statistics did not know the tenant's blobs, as right after a
 * first upload, before any analyze: every batch of a download a bitmap scan of all of them, the hashes a filter (at
 * 100,000 blobs, 9,800 heap pages and 100,000 rows read for 500, about 7.7 s of PostgreSQL's CPU a download).
 */
const byHash = (tenant: string, hashes: string) =>
  `SELECT b.sha256, b.data FROM unnest(${hashes}::text[]) AS h(sha256),
    LATERAL (SELECT b.sha256, b.data FROM blobs b WHERE b.tenant_id = ${tenant} AND b.sha256 = h.sha256 LIMIT 1) AS b`

/** The query the COPY runs, with its literals: the blobs' rows, hash and bytes. */
export const readText = (tenantId: string, shas: ReadonlyArray<string>) =>
  byHash(Pg.escapeLiteral(tenantId), `ARRAY[${shas.map((s) => Pg.escapeLiteral(s)).join(", ")}]`)

/**
 * Why not a query in the binary result format: node-postgres (pg-protocol 1.16) decodes every field of a data
 * row as UTF-8 text, whatever its format code, and `pg` turns a binary field back into bytes with
 * `Buffer.from(text)`. Bytes that are not UTF-8 come back changed (each invalid byte as U+FFFD, three bytes), so
 * random content grows and the download stopped at the size check. COPY's data messages reach the query as bytes.
 * COPY takes no parameters: the tenant and the hashes go in as literals (`readText`).
 */
export const copyText = (tenantId: string, shas: ReadonlyArray<string>) =>
  `COPY (${readText(tenantId, shas)}) TO STDOUT (FORMAT binary)`

/**
 * The COPY as a query object of node-postgres: its client routes each message of the answer here until the
 * ReadyForQuery that ends it. A data message's bytes are a view of the protocol parser's buffer, which the next
 * socket read may overwrite: the decoder copies them out during the call. Once `done` has run (or its reader
 * went away), the rest of the answer is read and dropped, so the connection stays in step for its next user.
 */
class BlobCopy {
  private failure: Error | undefined
  private finished = false
  abandoned = false
  private readonly rows: Array<{ sha256: string; data: Uint8Array }> = []
  private readonly decoder: ReturnType<typeof copyBinaryDecoder>

  constructor(
    private readonly text: string,
    private readonly done: (result: Error | BlobRows) => void,
    allocate?: (size: number) => Buffer
  ) {
    this.decoder = copyBinaryDecoder((tuple) => {
      const [sha, data] = tuple
      if (tuple.length !== 2 || sha == null || data == null) throw new Error("a blob row without its two columns")
      this.rows.push({ sha256: sha.toString("latin1"), data })
    }, allocate)
  }

  submit(connection: Pg.Connection) {
    connection.query(this.text)
  }
  handleCopyData(message: { readonly chunk: Buffer }) {
    if (this.failure !== undefined || this.abandoned) return
    try {
      this.decoder.write(message.chunk)
    } catch (e) {
      this.failure = e instanceof Error ? e : new Error(String(e))
    }
  }
  // Never sent for a COPY TO; answered as node-postgres' own queries do, so the connection cannot hang on it.
  handleCopyInResponse(connection: Pg.Connection) {
    const c: object = connection
    if ("sendCopyFail" in c && typeof c.sendCopyFail === "function") c.sendCopyFail("a COPY TO was sent")
  }
  handleCommandComplete() {}
  handleRowDescription() {}
  handleDataRow() {}
  handleEmptyQuery() {}
  handlePortalSuspended() {}
  handleReadyForQuery() {
    if (this.failure === undefined && !this.abandoned) {
      try {
        this.decoder.end()
      } catch (e) {
        this.failure = e instanceof Error ? e : new Error(String(e))
      }
    }
    this.finish(this.failure ?? this.rows)
  }
  handleError(error: Error) {
    this.finish(error)
  }
  private finish(result: Error | BlobRows) {
    if (this.finished) return
    this.finished = true
    if (!this.abandoned) this.done(result)
  }
}

const failed = (cause: unknown) => new SqlError({ cause, message: "Failed to read blobs" })

/** The plain query of a single-session database: the same statement with its tenant and hashes as parameters. */
export const plainStatement = (sql: SqlClient.SqlClient, tenantId: string, shas: ReadonlyArray<string>) =>
  sql.unsafe<{ sha256: string; data: Uint8Array }>(byHash("$1", "$2"), [tenantId, [...shas]])

const plainRead = (sql: SqlClient.SqlClient) => (tenantId: string, shas: ReadonlyArray<string>) =>
  plainStatement(sql, tenantId, shas)

/** The binary COPY on a connection of the server's pool, reserved for it; none where the driver exposes no client. */
const copyRead = (
  sql: SqlClient.SqlClient,
  tenantId: string,
  shas: ReadonlyArray<string>,
  allocate?: (size: number) => Buffer
) =>
  Effect.scoped(
    Effect.flatMap(reserveClient(sql), (reserved) => {
      if (Option.isNone(reserved)) return Effect.succeed(Option.none<BlobRows>())
      const client = reserved.value
      return Effect.async<Option.Option<BlobRows>, SqlError>((resume) => {
        const copy = new BlobCopy(
          copyText(tenantId, shas),
          (result) =>
            resume(result instanceof Error ? Effect.fail(failed(result)) : Effect.succeed(Option.some(result))),
          allocate
        )
        try {
          client.query(copy)
        } catch (e) {
          resume(Effect.fail(failed(e)))
        }
        // Interrupted: the connection goes back with the COPY still answering; its client queues the next query
        // behind it, and the rest of the answer is dropped.
        return Effect.sync(() => {
          copy.abandoned = true
        })
      })
    })
  )

/**
 * The reader of a server: a binary COPY where a connection can be spared for it (`copyCapable`); on a
 * single-session database (the embedded one) the plain query, where a `bytea` travels as hex text, twice its size,
 * decoded here.
 */
export const blobReader = (sql: SqlClient.SqlClient) =>
  Effect.map(copyCapable, (capable): BlobReader => {
    const plain = plainRead(sql)
    if (!capable) return plain
    const copy: BlobReader = (tenantId, shas, allocate) =>
      Effect.flatMap(
        copyRead(sql, tenantId, shas, allocate),
        Option.match({ onNone: () => plain(tenantId, shas), onSome: Effect.succeed })
      )
    return copy
  })
