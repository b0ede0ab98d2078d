/**
 * An upload's statements over a set of the tenant's blobs named by hash (the commit's checks, its clean-up), each
 * finding the rows by one lookup of the primary key per hash, whatever the table's statistics say.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { Fragment } from "@effect/sql/Statement"

/**
 * The rows of the tenant's blobs of `hashes` that meet `condition` (over `b`), found one hash at a time: a lateral
 * subquery with a limit is never flattened into a join, so the planner cannot trade the lookups for a scan of all the
 * tenant's blobs. With `sha256 = ANY($hashes)` it did while the statistics were those of a tenant with few blobs (as
 * during a first upload, before any analyze): a bitmap scan of every blob of the tenant, the hashes a filter (see
 * `HELD` in blobWrite.ts, where the same was found). Each row's key (`tenant_id`, `sha256`), `size` and `ctid`.
 */
export const probeBlobs = (
  sql: SqlClient.SqlClient,
  tenantId: string,
  hashes: ReadonlyArray<string>,
  condition: Fragment
) =>
  sql`SELECT b.tenant_id, b.sha256, b.size, b.ctid FROM unnest(${[...hashes]}::text[]) AS h(sha256),
    LATERAL (SELECT b.tenant_id, b.sha256, b.size, b.ctid FROM blobs b
             WHERE b.tenant_id = ${tenantId} AND b.sha256 = h.sha256 AND ${condition} LIMIT 1) AS b`

/**
 * The statements an upload runs over its hashes, each over the rows the probe found. A row updated by another
 * transaction after the statement began is, once that one commits, taken again at its newest version, and only if the
 * statement's conditions still hold on that version: those over the row's key hold there (a blob's key never changes),
 * a condition on its `ctid` never does (the newest version is elsewhere), so a statement that took rows by `ctid`
 * would skip such a row.
 */
export const blobProbes = (sql: SqlClient.SqlClient) => ({
  /**
   * Of `hashes`, those the tenant holds permanent (not pending, or pending for an upload that has ended), each with
   * its content's size (a number: every size a cap allows is exact in a double).
   */
  present: (tenantId: string, hashes: ReadonlyArray<string>) =>
    sql<{ sha256: string; size: number }>`SELECT sha256, size::float8 AS size FROM (${probeBlobs(
      sql,
      tenantId,
      hashes,
      sql`b.upload_id IS NULL
        AND (b.written_by IS NULL OR NOT EXISTS (SELECT 1 FROM uploads u WHERE u.id = b.written_by))`
    )}) AS found`,

  /** Makes the tenant's blobs of `hashes` permanent, those still marked pending or written by an upload. */
  makePermanent: (tenantId: string, hashes: ReadonlyArray<string>) => {
    const marked = sql`(b.upload_id IS NOT NULL OR b.written_by IS NOT NULL)`
    // Joined on the key the probe found, tenant included: alone, `b` is bound by nothing but the marks, so its only
    // plan other than one primary-key lookup per row found is a scan of the whole table, never of a tenant it guesses
    // small. A row another upload changed meanwhile is made permanent as `sha256 = ANY` did (the key still matches).
    return sql`UPDATE blobs b SET upload_id = NULL, written_by = NULL
      FROM (${probeBlobs(sql, tenantId, hashes, marked)}) AS found
      WHERE b.tenant_id = found.tenant_id AND b.sha256 = found.sha256 AND ${marked}`
  },

  /**
   * What an upload that made no revision leaves: its row, and of `hashes` (those it received) the blobs it wrote, unless
   * a revision of its id exists (it committed, and was interrupted only after).
   *
   * By `ctid` (a TID scan): joined on the key as `makePermanent` is, the planner scanned the whole table, the rows
   * written by the upload a hash join's other side. So a row another transaction updates while this runs is skipped,
   * not deleted. That is safe while every other writer of a blob marked with this upload clears its marks (another
   * upload's `makePermanent`) or deletes it (the sweeper): either leaves nothing for this statement to delete.
   */
  discard: (tenantId: string, uploadId: string, hashes: ReadonlyArray<string>) => {
    const written = sql`b.written_by = ${uploadId}`
    return sql`WITH gone AS (DELETE FROM uploads WHERE id = ${uploadId})
      DELETE FROM blobs b
      WHERE b.ctid = ANY(ARRAY(SELECT ctid FROM (${probeBlobs(sql, tenantId, hashes, written)}) AS found))
        AND b.tenant_id = ${tenantId} AND ${written}
        AND NOT EXISTS (SELECT 1 FROM revisions WHERE id = ${uploadId})`
  }
})
