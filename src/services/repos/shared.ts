/** What the repositories share: batched JSON-recordset upserts and deletes, row decoding, error mapping. */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Either, ParseResult, Schema } from "effect"
import { DatabaseError } from "../../errors.js"
import { causeMessage } from "../ProjectDatabase.js"

export type { InvalidRow, Listed, Stored } from "../../domain/stored.js"
export { unstorable, unstorableJson } from "../../domain/stored.js"

import type { InvalidRow, Listed, Stored } from "../../domain/stored.js"

export const dbError =
  (what: string) =>
  (cause: SqlError): DatabaseError =>
    new DatabaseError({ reason: `${what}: ${causeMessage(cause)}`, cause })

/** A column of a batched statement: its name and SQL type. */
export type Column = readonly [name: string, type: string]

const q = (name: string) => `"${name}"`

/** Rows per statement, and a cap on the JSON text of one statement, whichever comes first. */
export const CHUNK_ROWS = 2000
export const CHUNK_BYTES = 16 * 1024 * 1024

/** Splits rows into JSON arrays of at most CHUNK_ROWS rows and about CHUNK_BYTES characters each. */
export const jsonChunks = (
  rows: ReadonlyArray<Record<string, unknown>>,
  maxRows = CHUNK_ROWS,
  maxBytes = CHUNK_BYTES
): Array<string> => {
  const out: Array<string> = []
  let parts: Array<string> = []
  let size = 0
  for (const row of rows) {
    const text = JSON.stringify(row)
    if (parts.length > 0 && (parts.length >= maxRows || size + text.length > maxBytes)) {
      out.push(`[${parts.join(",")}]`)
      parts = []
      size = 0
    }
    parts.push(text)
    size += text.length + 1
  }
  if (parts.length > 0) out.push(`[${parts.join(",")}]`)
  return out
}

/**
 * One `INSERT … SELECT FROM json_to_recordset($1) ON CONFLICT DO UPDATE` per chunk: a single parameter per
 * statement whatever the number of rows, so the 65,535-parameter limit never applies and arrays stay arrays.
 */
export const upsertStatement = (table: string, columns: ReadonlyArray<Column>, key: ReadonlyArray<string>): string => {
  const names = columns.map(([n]) => q(n))
  const typed = columns.map(([n, t]) => `${q(n)} ${t}`).join(", ")
  const updates = columns
    .filter(([n]) => !key.includes(n))
    .map(([n]) => `${q(n)} = excluded.${q(n)}`)
    .concat(`"updated_at" = excluded."updated_at"`)
  return `INSERT INTO ${q(table)} (${names.join(", ")}, "updated_at")
SELECT ${names.map((n) => `r.${n}`).join(", ")}, now() FROM json_to_recordset($1::json) AS r(${typed})
ON CONFLICT (${key.map(q).join(", ")}) DO UPDATE SET ${updates.join(", ")}`
}

/**
 * Sets the `mode` column of the keyed rows (and their `updated_at`), nothing else: a file's mode is compared on its
 * own, and the stale-hash triggers leave such an update's hashes as they are.
 */
export const modeStatement = (table: string, key: ReadonlyArray<Column>): string =>
  `UPDATE ${q(table)} AS t SET "mode" = d."mode", "updated_at" = now()
FROM json_to_recordset($1::json) AS d(${key.map(([n, t]) => `${q(n)} ${t}`).join(", ")}, "mode" integer)
WHERE ${key.map(([n]) => `t.${q(n)} = d.${q(n)}`).join(" AND ")}`

export const deleteStatement = (table: string, key: ReadonlyArray<Column>): string =>
  `DELETE FROM ${q(table)} AS t USING json_to_recordset($1::json) AS d(${key.map(([n, t]) => `${q(n)} ${t}`).join(", ")})
WHERE ${key.map(([n]) => `t.${q(n)} = d.${q(n)}`).join(" AND ")}`

/** Runs one statement per chunk of rows; returns how many rows were given. */
export const batched = (
  sql: SqlClient.SqlClient,
  statement: string,
  rows: ReadonlyArray<Record<string, unknown>>,
  what: string
): Effect.Effect<number, DatabaseError> =>
  rows.length === 0
    ? Effect.succeed(0)
    : Effect.forEach(jsonChunks(rows), (chunk) => sql.unsafe(statement, [chunk]), { discard: true }).pipe(
        Effect.as(rows.length),
        Effect.mapError(dbError(what))
      )

/** Decodes a row mapped to a domain shape; a failure names the row's key and the field. */
export const decodeRow = <A, I>(
  schema: Schema.Schema<A, I>,
  key: string,
  value: unknown
): Either.Either<A, InvalidRow> =>
  Either.mapLeft(Schema.decodeUnknownEither(schema, { onExcessProperty: "error" })(value), (error) => ({
    key,
    reason: ParseResult.ArrayFormatter.formatErrorSync(error)
      .map((i) => `${i.path.length === 0 ? "" : `${i.path.join(".")}: `}${i.message}`)
      .join("; ")
  }))

/** Splits decoded rows into items (with their stored hash, or a fresh one when the row was edited by hand) and invalid rows. */
export const collect = <A>(
  rows: ReadonlyArray<Record<string, unknown>>,
  keyOf: (row: Record<string, unknown>) => string,
  decode: (row: Record<string, unknown>, key: string) => Either.Either<A, InvalidRow>,
  hash: (a: A) => string
): Listed<A> => {
  const items: Array<Stored<A>> = []
  const invalid: Array<InvalidRow> = []
  for (const row of rows) {
    const key = keyOf(row)
    const decoded = decode(row, key)
    if (Either.isLeft(decoded)) invalid.push(decoded.left)
    else {
      const stored = row["version_hash"]
      items.push({
        item: decoded.right,
        hash: typeof stored === "string" && stored !== "" ? stored : hash(decoded.right)
      })
    }
  }
  return { items, invalid }
}
