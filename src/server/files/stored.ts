/** How the file store keeps a revision's tree: its manifest rows, and what a storage failure answers. */
import type * as SqlError from "@effect/sql/SqlError"
import { Effect } from "effect"
import { manifestChecksum } from "../../domain/hash.js"
import { type FileEntry, fileEntry, linkEntry } from "../../domain/model.js"
import { ApiError } from "../../errors.js"

/**
 * A manifest row as stored: `[path, size, sha256]`, sorted by path, with a fourth element `1` for an executable
 * file or `2` (LINK) for a symbolic link, whose blob is its target text (rows stored before modes and links
 * travelled have none: plain files).
 */
export type StoredEntry = readonly [string, number, string] | readonly [string, number, string, 1 | 2]
export const LINK = 2

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
