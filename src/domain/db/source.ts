/** The shapes both sides of a database sync share: a source of rows and digests, an import's options and report. */
import type { Readable } from "node:stream"
import type { Effect, Scope, Stream } from "effect"
import type { DatabaseError } from "../../errors.js"
import type { TableImportReport } from "./importPlan.js"
import type { RowOf, SyncTable } from "./tables.js"

/** Rows of each synced table in id order (code points), in batches, plus the row counts up front. */
export interface ExportSource<E = never> {
  readonly counts: Effect.Effect<Record<SyncTable, number>, E | DatabaseError>
  readonly rows: <T extends SyncTable>(table: T) => Stream.Stream<ReadonlyArray<RowOf[T]>, E | DatabaseError>
  /**
   * The bulk path, offered by a Postgres source: the table as `COPY … TO STDOUT` text in the column order of
   * `COPY_COLUMNS`, on a connection held for as long as the scope is open.
   */
  readonly copy?: (table: SyncTable) => Effect.Effect<Readable, DatabaseError, Scope.Scope>
  /** Ids with Postgres-computed digests, in id order (see `tableDigests`). */
  readonly digests?: (table: SyncTable) => Stream.Stream<ReadonlyArray<Digest>, E | DatabaseError>
}

/** An id and the digest of the columns an import compares (created_at excluded). */
export type Digest = readonly [id: string, digest: string]

export interface ImportOptions {
  readonly dryRun: boolean
  /** Rows per statement. Each column travels as one array parameter, so the 65,535-parameter cap never applies. */
  readonly chunkSize?: number
  /** How many skipped rows to list per table (the count is always complete). */
  readonly maxSkips?: number
  /** Use COPY when the source offers it (default true); false forces the chunked path. */
  readonly bulk?: boolean
}

export interface ImportReport {
  readonly dry_run: boolean
  readonly tables: ReadonlyArray<TableImportReport>
}
