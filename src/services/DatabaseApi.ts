/** The client of the tenant API's database area: info, streamed NDJSON export per table, and streamed NDJSON import. */

import { randomUUID } from "node:crypto"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { Chunk, Effect, Predicate, Schema, Stream } from "effect"
import { DatabaseInfo, DatabaseRoutes, DigestLine, IDEMPOTENCY_HEADER, ImportResult, NDJSON } from "../api/index.js"
import { type BodyLine, decodeBody, encodeBody } from "../api/ndjson.js"
import { decodeExportLine, unreadableVersion } from "../domain/db/exportLines.js"
import type { Digest, ExportSource, ImportOptions, ImportReport } from "../domain/db/source.js"
import { type RowOf, SYNC_TABLES, type SyncTable } from "../domain/db/tables.js"
import { ApiError, type DatabaseError, PartialImport } from "../errors.js"
import type { SyncApiOptions } from "./SyncApiOptions.js"
import {
  clientBasics,
  exchange,
  retrying,
  type SyncApiError,
  type Transient,
  transient,
  type WireError
} from "./Transport.js"

/** Who wrote what this client reads, in its messages about the export format. */
const SERVER = "the server sends"
export type DatabaseApiError = SyncApiError | PartialImport

/** The database area's own failure: an import that committed some tables before one failed (sent as itself). */
const partialImport = (wire: WireError, reason: string) =>
  wire._tag === "PartialImport" && wire.completed !== undefined && wire.total !== undefined
    ? new PartialImport({ completed: wire.completed, total: wire.total, reason: `on the server: ${reason}` })
    : undefined

const transport = (url: string) => (e: { readonly message: string }) =>
  new ApiError({ kind: "Transport", status: 0, reason: `request failed: ${e.message}`, url })

export interface DatabaseApiClient {
  readonly baseUrl: string
  readonly info: Effect.Effect<DatabaseInfo, DatabaseApiError>
  readonly source: ExportSource<DatabaseApiError>
  readonly importFrom: <E>(
    source: ExportSource<E>,
    options: ImportOptions
  ) => Effect.Effect<ImportReport, DatabaseApiError | E | DatabaseError>
}

/**
 * A client for the endpoint and token of `options` over an HttpClient, with the file client's transport rules:
 * headers within the exchange deadline, retries on transient failures (backoff, jitter, Retry-After), the whole
 * call within the transfer deadline. An import is retried only with its idempotency key, so it never runs twice.
 */
export const make = Effect.fn("DatabaseApi.make")(function* (
  options: Pick<SyncApiOptions, "endpoint" | "token" | "retry" | "limits">
) {
  const { http, baseUrl, limits, policy } = yield* clientBasics(options)

  /** One attempt; a response that breaks off in its head is an ApiError, not retried. */
  const attempt = (url: string, request: HttpClientRequest.HttpClientRequest) =>
    exchange(http, request, url, limits.exchangeMs, { own: partialImport, brokenAnswer: transport(url) })

  /** Attempts retried while transient (when `retry`), within the transfer deadline; what is left is an ApiError. */
  const withRetry = <A, E>(url: string, effect: Effect.Effect<A, E | Transient>, retry = true) =>
    retrying(url, effect, policy, { retried: retry, deadlineMs: limits.deadlineMs })

  /** The response of a request, retried as a whole until its headers arrive. */
  const send = (url: string, request: HttpClientRequest.HttpClientRequest) => withRetry(url, attempt(url, request))

  const info = Effect.gen(function* () {
    const url = `${baseUrl}${DatabaseRoutes.info}`
    const response = yield* send(url, HttpClientRequest.get(url))
    const body = yield* Effect.mapError(response.json, transport(url))
    return yield* Schema.decodeUnknown(DatabaseInfo)(body).pipe(
      Effect.mapError((e) => new ApiError({ kind: "Decode", status: response.status, reason: e.message, url }))
    )
  }).pipe(Effect.scoped, Effect.withSpan("DatabaseApi.info"))

  /** A response body's items, decoded and checked line by line; a body cut short (no end line) is an error. */
  const exported = <A>(url: string, what: string, read: (text: string) => BodyLine<A>, batch: number) =>
    decodeBody(
      Stream.unwrapScoped(Effect.map(send(url, HttpClientRequest.get(url)), (r) => r.stream)).pipe(
        Stream.catchTag("ResponseError", (e) => Stream.fail(transport(url)(e)))
      ),
      read,
      (line, reason) =>
        new ApiError({
          kind: "Decode",
          status: 200,
          reason: line === 0 ? `${what} ${reason}` : `malformed ${what}, line ${line}: ${reason}`,
          url
        })
    ).pipe(Stream.grouped(batch), Stream.map(Chunk.toReadonlyArray))

  /** One table's rows. */
  const exportTable = <T extends SyncTable>(table: T): Stream.Stream<ReadonlyArray<RowOf[T]>, DatabaseApiError> =>
    exported(
      `${baseUrl}${DatabaseRoutes.export}?table=${table}`,
      "export",
      (text): BodyLine<RowOf[T]> => {
        const decoded = decodeExportLine(text, SERVER)
        if (!decoded.ok) return { kind: "bad", reason: decoded.reason }
        const line = decoded.line
        if (line.kind === "header" || line.kind === "end") return line
        if (line.kind !== table) return { kind: "bad", reason: `a ${line.kind} row in the ${table} export` }
        return { kind: "item", item: line.row as RowOf[T] }
      },
      2000
    )

  const decodeDigest = Schema.decodeUnknownEither(DigestLine)

  /** One table's ids and digests (computed by the server's Postgres), checked like the rows. */
  const exportDigests = (table: SyncTable): Stream.Stream<ReadonlyArray<Digest>, DatabaseApiError> =>
    exported(
      `${baseUrl}${DatabaseRoutes.export}?table=${table}&digests=true`,
      "digests",
      (text): BodyLine<Digest> => {
        let value: unknown
        try {
          value = JSON.parse(text)
        } catch {
          return { kind: "bad", reason: "not JSON" }
        }
        const kind = Predicate.hasProperty(value, "kind") ? value.kind : undefined
        // Digests of another format are of other columns: every row would read as different.
        if (kind === "header") {
          const unreadable = unreadableVersion(
            Predicate.hasProperty(value, "version") ? value.version : undefined,
            SERVER
          )
          return unreadable === undefined ? { kind } : { kind: "bad", reason: unreadable }
        }
        if (kind === "end") return { kind, rows: Predicate.hasProperty(value, "rows") ? value.rows : undefined }
        const line = decodeDigest(value)
        return line._tag === "Left"
          ? { kind: "bad", reason: line.left.message }
          : { kind: "item", item: [line.right.id, line.right.digest] }
      },
      5000
    )

  const source: ExportSource<DatabaseApiError> = {
    counts: Effect.map(info, (i) => ({ ...i.counts })),
    rows: exportTable,
    digests: exportDigests
  }

  /** A source as one NDJSON body: header, users, skills, contexts, end line. */
  const body = <E>(from: ExportSource<E>): Stream.Stream<Uint8Array, E | DatabaseError> =>
    encodeBody(
      Stream.flatMap(Stream.fromIterable(SYNC_TABLES), (table) =>
        Stream.map(from.rows(table), (batch) => batch.map((row) => ({ kind: table, row })))
      ),
      (line) => line
    )

  /**
   * Streams the source as one import. Every attempt carries the same idempotency key and re-reads the source, so
   * a retry after a lost answer gets the committed import's result; without a key (a caller's `idempotencyKey:
   * null`) nothing is retried.
   */
  const importFrom = <E>(from: ExportSource<E>, opts: ImportOptions & { readonly idempotencyKey?: string | null }) => {
    const url = `${baseUrl}${DatabaseRoutes.import}?dry_run=${opts.dryRun}`
    const key = opts.idempotencyKey === undefined ? randomUUID() : opts.idempotencyKey
    const once = Effect.gen(function* () {
      const request = HttpClientRequest.post(url).pipe(
        HttpClientRequest.bodyStream(body(from), { contentType: NDJSON }),
        key === null ? (r) => r : HttpClientRequest.setHeader(IDEMPOTENCY_HEADER, key)
      )
      const response = yield* attempt(url, request)
      const json = yield* response.json.pipe(Effect.mapError((e) => transient(0, `answer cut short: ${e.message}`)))
      const result = yield* Schema.decodeUnknown(ImportResult)(json).pipe(
        Effect.mapError((e) => new ApiError({ kind: "Decode", status: response.status, reason: e.message, url }))
      )
      return result
    }).pipe(Effect.scoped)
    return withRetry(url, once, key !== null).pipe(Effect.withSpan("DatabaseApi.import"))
  }

  return { baseUrl, info, source, importFrom } satisfies DatabaseApiClient
})
