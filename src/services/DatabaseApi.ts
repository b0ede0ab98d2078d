/** The client of the tenant API's database area: info, streamed NDJSON export per table, and streamed NDJSON import. */

import { randomUUID } from "node:crypto"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { Chunk, Duration, Effect, Option, Redacted, Schema, Stream } from "effect"
import {
  CLOUD_PREFIX,
  DatabaseInfo,
  DatabaseRoutes,
  DigestLine,
  IDEMPOTENCY_HEADER,
  ImportResult,
  NDJSON,
  SYNC_PREFIX
} from "../api/index.js"
import { TRANSFER, type TransferLimits } from "../domain/caps.js"
import { decodeExportLine, EXPORT_VERSION, type RowOf, SYNC_TABLES, type SyncTable } from "../domain/dbExport.js"
import { ApiError, type DatabaseError, InvalidInput, PartialImport, Unauthorized } from "../errors.js"
import type { Digest, ExportSource } from "../stages/dbExport.js"
import type { ImportOptions, ImportReport } from "../stages/dbImport.js"
import type { SyncApiOptions } from "./SyncApi.js"
import { defaultRetry, describe, fromStatus, retrySchedule, Transient, transient } from "./Transport.js"

export type DatabaseApiError = ApiError | Unauthorized | InvalidInput | PartialImport

const WireError = Schema.Struct({
  _tag: Schema.optional(Schema.String),
  reason: Schema.optional(Schema.String),
  message: Schema.optional(Schema.String),
  completed: Schema.optional(Schema.Number),
  total: Schema.optional(Schema.Number)
})

/** A failure status and its body as one of the error family. */
const failure = (url: string, status: number, body: string): DatabaseApiError => {
  const wire = Option.getOrUndefined(Schema.decodeUnknownOption(Schema.parseJson(WireError))(body))
  const reason = wire?.reason ?? wire?.message ?? (body.trim().slice(0, 300) || `HTTP ${status}`)
  if (status === 401 || status === 403) return new Unauthorized({ reason: `${reason} (${status} from ${url})` })
  if (status === 400) return new InvalidInput({ reason: `rejected by the server: ${reason}` })
  if (wire?._tag === "PartialImport" && wire.completed !== undefined && wire.total !== undefined) {
    return new PartialImport({ completed: wire.completed, total: wire.total, reason: `on the server: ${reason}` })
  }
  return new ApiError({ status, reason, url })
}

const transport = (url: string) => (e: { readonly message: string }) =>
  new ApiError({ status: 0, reason: `request failed: ${e.message}`, url })

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
  const http = (yield* HttpClient.HttpClient).pipe(
    HttpClient.mapRequest(HttpClientRequest.bearerToken(Redacted.value(options.token)))
  )
  const policy = options.retry ?? defaultRetry
  const limits: TransferLimits = { ...TRANSFER, ...options.limits }
  const endpoint = options.endpoint
  const baseUrl =
    endpoint.mode === "direct"
      ? `${endpoint.origin}${SYNC_PREFIX}`
      : `${endpoint.api}${CLOUD_PREFIX}/${endpoint.tenantId}`

  /** One attempt: the response headers within the exchange deadline; retryable statuses and transport errors are Transient. */
  const attempt = (url: string, request: HttpClientRequest.HttpClientRequest) =>
    http.execute(request).pipe(
      Effect.timeoutFail({
        duration: Duration.millis(limits.exchangeMs),
        onTimeout: () => transient(408, `no answer within ${limits.exchangeMs / 1000} s`)
      }),
      Effect.catchTag("RequestError", (e) =>
        Effect.fail(transient(0, `request failed: ${describe(e.cause ?? e)}`, e.reason === "Transport"))
      ),
      Effect.mapError((e) => (e instanceof Transient ? e : transport(url)(e))),
      Effect.flatMap((response: HttpClientResponse.HttpClientResponse) =>
        response.status >= 200 && response.status < 300
          ? Effect.succeed(response)
          : response.text.pipe(
              Effect.orElseSucceed(() => ""),
              Effect.flatMap((body) => {
                const classified = fromStatus(response.status, body, url, response.headers["retry-after"])
                return Effect.fail(classified instanceof Transient ? classified : failure(url, response.status, body))
              })
            )
      )
    )

  /** Attempts retried while transient (when `retry`), within the transfer deadline; what is left is an ApiError. */
  const withRetry = <A, E>(url: string, effect: Effect.Effect<A, E | Transient>, retry = true) =>
    (retry ? Effect.retry(effect, retrySchedule(policy)) : effect).pipe(
      Effect.timeoutFail({
        duration: Duration.millis(limits.deadlineMs),
        onTimeout: () =>
          new ApiError({
            status: 0,
            reason: `no result within the transfer deadline of ${limits.deadlineMs / 1000} s (AGENTSYNC_TRANSFER_TIMEOUT_MS)`,
            url
          })
      }),
      Effect.catchIf(
        (e): e is Transient => e instanceof Transient,
        (e) =>
          Effect.fail(
            new ApiError({
              status: e.status,
              reason: `${e.unreachable ? "server unreachable" : "failed"} (gave up${retry && "maxRetries" in policy ? ` after ${policy.maxRetries + 1} attempts` : ""}: ${e.reason})`,
              url
            })
          )
      )
    )

  /** The response of a request, retried as a whole until its headers arrive. */
  const send = (url: string, request: HttpClientRequest.HttpClientRequest) => withRetry(url, attempt(url, request))

  const info = Effect.gen(function* () {
    const url = `${baseUrl}${DatabaseRoutes.info}`
    const response = yield* send(url, HttpClientRequest.get(url))
    const body = yield* Effect.mapError(response.json, transport(url))
    return yield* Schema.decodeUnknown(DatabaseInfo)(body).pipe(
      Effect.mapError((e) => new ApiError({ status: response.status, reason: `unexpected answer: ${e.message}`, url }))
    )
  }).pipe(Effect.scoped, Effect.withSpan("DatabaseApi.info"))

  /** One table's NDJSON, decoded and checked line by line; a stream cut short (no end line) is an error. */
  const exportTable = <T extends SyncTable>(table: T): Stream.Stream<ReadonlyArray<RowOf[T]>, DatabaseApiError> => {
    const url = `${baseUrl}${DatabaseRoutes.export}?table=${table}`
    let lineNo = 0
    let seen = 0
    let ended = false
    const bad = (reason: string) =>
      new ApiError({ status: 200, reason: `malformed export, line ${lineNo}: ${reason}`, url })
    return Stream.unwrapScoped(Effect.map(send(url, HttpClientRequest.get(url)), (r) => r.stream)).pipe(
      Stream.mapError((e) => (e._tag === "ResponseError" ? transport(url)(e) : e)),
      Stream.decodeText(),
      Stream.splitLines,
      Stream.filterMapEffect((text): Option.Option<Effect.Effect<RowOf[T], ApiError>> => {
        lineNo++
        if (text === "") return Option.none()
        const decoded = decodeExportLine(text)
        if (!decoded.ok) return Option.some(Effect.fail(bad(decoded.reason)))
        const line = decoded.line
        if (line.kind === "header") return Option.none()
        if (line.kind === "end") {
          ended = true
          return line.rows === seen
            ? Option.none()
            : Option.some(Effect.fail(bad(`end line says ${line.rows} rows, got ${seen}`)))
        }
        if (line.kind !== table) return Option.some(Effect.fail(bad(`a ${line.kind} row in the ${table} export`)))
        seen++
        return Option.some(Effect.succeed(line.row as RowOf[T]))
      }),
      Stream.concat(
        Stream.suspend(() =>
          ended
            ? Stream.empty
            : Stream.fail(new ApiError({ status: 200, reason: "export ended early (no end line)", url }))
        )
      ),
      Stream.grouped(2000),
      Stream.map(Chunk.toReadonlyArray)
    )
  }

  /** One table's ids and digests (computed by the server's Postgres), checked like the rows. */
  const exportDigests = (table: SyncTable): Stream.Stream<ReadonlyArray<Digest>, DatabaseApiError> => {
    const url = `${baseUrl}${DatabaseRoutes.export}?table=${table}&digests=true`
    let lineNo = 0
    let seen = 0
    let ended = false
    const decodeDigest = Schema.decodeUnknownEither(DigestLine)
    const bad = (reason: string) =>
      new ApiError({ status: 200, reason: `malformed digests, line ${lineNo}: ${reason}`, url })
    return Stream.unwrapScoped(Effect.map(send(url, HttpClientRequest.get(url)), (r) => r.stream)).pipe(
      Stream.mapError((e) => (e._tag === "ResponseError" ? transport(url)(e) : e)),
      Stream.decodeText(),
      Stream.splitLines,
      Stream.filterMapEffect((text): Option.Option<Effect.Effect<Digest, ApiError>> => {
        lineNo++
        if (text === "") return Option.none()
        let value: unknown
        try {
          value = JSON.parse(text)
        } catch {
          return Option.some(Effect.fail(bad("not JSON")))
        }
        const kind = (value as { kind?: unknown } | null)?.kind
        if (kind === "header") return Option.none()
        if (kind === "end") {
          ended = true
          const rows = (value as { rows?: unknown }).rows
          return rows === seen
            ? Option.none()
            : Option.some(Effect.fail(bad(`end line says ${String(rows)} rows, got ${seen}`)))
        }
        const line = decodeDigest(value)
        if (line._tag === "Left") return Option.some(Effect.fail(bad(line.left.message)))
        seen++
        return Option.some(Effect.succeed([line.right.id, line.right.digest] as const))
      }),
      Stream.concat(
        Stream.suspend(() =>
          ended
            ? Stream.empty
            : Stream.fail(new ApiError({ status: 200, reason: "digests ended early (no end line)", url }))
        )
      ),
      Stream.grouped(5000),
      Stream.map(Chunk.toReadonlyArray)
    )
  }

  const source: ExportSource<DatabaseApiError> = {
    counts: Effect.map(info, (i) => ({ ...i.counts })),
    rows: exportTable,
    digests: exportDigests
  }

  const encoder = new TextEncoder()

  /** Streams a source as one NDJSON body: header, users, skills, contexts, end line. */
  const body = <E>(from: ExportSource<E>): Stream.Stream<Uint8Array, E | DatabaseError> => {
    let rows = 0
    const header = JSON.stringify({ kind: "header", version: EXPORT_VERSION, exported_at: new Date().toISOString() })
    return Stream.make(`${header}\n`).pipe(
      Stream.concat(
        Stream.flatMap(Stream.fromIterable(SYNC_TABLES), (table) =>
          Stream.map(from.rows(table), (batch) => {
            rows += batch.length
            let text = ""
            for (const row of batch) text += `${JSON.stringify({ kind: table, row })}\n`
            return text
          })
        )
      ),
      Stream.concat(Stream.suspend(() => Stream.make(`${JSON.stringify({ kind: "end", rows })}\n`))),
      Stream.map((s) => encoder.encode(s))
    )
  }

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
        Effect.mapError(
          (e) => new ApiError({ status: response.status, reason: `unexpected answer: ${e.message}`, url })
        )
      )
      return result as ImportReport
    }).pipe(Effect.scoped)
    return withRetry(url, once, key !== null).pipe(Effect.withSpan("DatabaseApi.import"))
  }

  return { baseUrl, info, source, importFrom } satisfies DatabaseApiClient
})
