/** How the file store keeps a revision's tree: its manifest rows, and what a storage failure answers. */
import type * as SqlError from "@effect/sql/SqlError"
import { Effect, Schema } from "effect"
import { manifestChecksum } from "../../domain/hash.js"
import { type FileEntry, fileEntry, isRelPath, isSha256, linkEntry, RelPath, Sha256 } from "../../domain/model.js"
import { ApiError } from "../../errors.js"

/**
 * A manifest row as stored: `[path, size, sha256]`, sorted by path, with a fourth element `1` for an executable
 * file or `2` (LINK) for a symbolic link, whose blob is its target text (rows stored before modes and links
 * travelled have none: plain files).
 */
export type StoredEntry = readonly [string, number, string] | readonly [string, number, string, 1 | 2]
export const LINK = 2

/** A stored row as a schema: what `decodeStoredRows` checks, row by row. */
export const StoredRow = Schema.Union(
  Schema.Tuple(RelPath, Schema.NonNegativeInt, Sha256),
  Schema.Tuple(RelPath, Schema.NonNegativeInt, Sha256, Schema.Literal(1, LINK))
)

/** What is wrong with a stored row, by field, or undefined when it is one (the checks of `StoredRow`). */
const rowProblem = (row: unknown): string | undefined => {
  if (!Array.isArray(row) || (row.length !== 3 && row.length !== 4)) return "is not a row of 3 or 4 fields"
  const fields: ReadonlyArray<unknown> = row
  const [path, size, sha, x] = fields
  if (!isRelPath(path)) return "its path is not a relative path inside the tree"
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0)
    return "its size is not a non-negative integer"
  if (!isSha256(sha)) return "its sha256 is not a lowercase hex SHA-256"
  if (row.length === 4 && x !== 1 && x !== LINK) return `its mode is not 1 or ${LINK}`
  return undefined
}

/**
 * Stored rows read back (a whole manifest, a delta's rows), checked as `StoredRow` decodes them: the rows, or what is
 * wrong with the first that is not one, naming its index and field. A loop of plain checks: decoding 100,000 rows
 * through the schema costs several hundred milliseconds, this a few.
 */
export const decodeStoredRows = (
  value: unknown
): { readonly rows: ReadonlyArray<StoredEntry> } | { readonly problem: string } => {
  if (!Array.isArray(value)) return { problem: "is not an array of rows" }
  for (let i = 0; i < value.length; i++) {
    const problem = rowProblem(value[i])
    if (problem !== undefined) return { problem: `row ${i} ${problem}` }
  }
  // Every element checked above to be a row.
  return { rows: value as ReadonlyArray<StoredEntry> }
}

/** Orders stored rows by path, as a manifest is kept. */
export const storedPathOrder = (a: StoredEntry, b: StoredEntry) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)

export const stored = (e: FileEntry): StoredEntry =>
  e.link === true
    ? [e.path, e.size, e.sha256, LINK]
    : e.executable === true
      ? [e.path, e.size, e.sha256, 1]
      : [e.path, e.size, e.sha256]

export const toEntry = ([path, size, sha, x]: StoredEntry): FileEntry =>
  x === LINK ? linkEntry(path, size, sha) : fileEntry(path, size, sha, x === 1)
export const toEntries = (rows: ReadonlyArray<StoredEntry>): ReadonlyArray<FileEntry> => rows.map(toEntry)

export const EMPTY_CHECKSUM = manifestChecksum([])

/** Rows per blob insert or read; inserts are also cut by bytes, so memory stays flat however large the tree. */
export const BATCH_ROWS = 500

/** Any storage failure answers 500 with no detail beyond the operation; the cause is logged. */
export const storageFailure = (what: string) => (cause: SqlError.SqlError) =>
  Effect.logError(`storage: ${what} failed`, cause).pipe(
    Effect.zipRight(Effect.fail(new ApiError({ status: 500, reason: `storage error during ${what}` })))
  )
