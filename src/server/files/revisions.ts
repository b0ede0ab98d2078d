/** The file store's reads of revisions: one revision's manifest, the head alone, and the newest revisions listed. */
import type * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"
import { NotFound } from "../../api/common.js"
import { RemoteManifest, RevisionInfo } from "../../api/files.js"
import { EMPTY_CHECKSUM, type StoredEntry, storageFailure, toEntries } from "./stored.js"

/** A revision of a tenant, the head by default: its id (null before the first push), manifest rows and checksum. */
export type LoadRevision = ReturnType<typeof revisionQueries>["loadRevision"]

export const revisionQueries = (sql: SqlClient.SqlClient) => {
  const loadRevision = (tenantId: string, revision: string | undefined) =>
    Effect.gen(function* () {
      const rows =
        revision === undefined
          ? yield* sql<{ id: string | null; manifest: ReadonlyArray<StoredEntry> | null; checksum: string | null }>`
              SELECT r.id, r.manifest, r.checksum FROM tenants t LEFT JOIN revisions r ON r.id = t.head WHERE t.id = ${tenantId}`
          : yield* sql<{ id: string; manifest: ReadonlyArray<StoredEntry>; checksum: string }>`
              SELECT id, manifest, checksum FROM revisions WHERE tenant_id = ${tenantId} AND id = ${revision}`
      const row = rows[0]
      if (row === undefined) {
        return yield* new NotFound({ reason: revision === undefined ? "no such tenant" : `no revision ${revision}` })
      }
      return { id: row.id, manifest: row.manifest ?? [], checksum: row.checksum ?? EMPTY_CHECKSUM }
    })

  const manifest = Effect.fn("FileStore.manifest")(function* (tenantId: string, revision?: string) {
    const rev = yield* loadRevision(tenantId, revision).pipe(Effect.catchTag("SqlError", storageFailure("manifest")))
    return new RemoteManifest(
      { tenant: tenantId, revision: rev.id, entries: toEntries(rev.manifest), checksum: rev.checksum },
      { disableValidation: true }
    )
  })

  /** The head revision alone (null before the first push): what a conditional manifest request is checked against. */
  const head = Effect.fn("FileStore.head")(function* (tenantId: string) {
    const rows = yield* sql<{ head: string | null }>`SELECT head FROM tenants WHERE id = ${tenantId}`.pipe(
      Effect.catchTag("SqlError", storageFailure("manifest"))
    )
    if (rows[0] === undefined) return yield* new NotFound({ reason: "no such tenant" })
    return rows[0].head
  })

  /**
   * The newest revisions with the name of the token that pushed each and its counts against its parent,
   * counted in the database over the two manifests (only for the revisions listed).
   */
  const revisions = Effect.fn("FileStore.revisions")(function* (tenantId: string, limit = 50) {
    const rows = yield* sql<{
      id: string
      parent: string | null
      author: string
      created_at: Date
      files: number
      checksum: string
      token_name: string | null
      added: number
      changed: number
      deleted: number
    }>`
      SELECT r.id, r.parent, r.author, r.created_at, r.files, r.checksum, t.label AS token_name,
             c.added, c.changed, c.deleted
      FROM (SELECT * FROM revisions WHERE tenant_id = ${tenantId} ORDER BY seq DESC LIMIT ${limit}) r
      LEFT JOIN tokens t ON t.id = r.token_id
      LEFT JOIN revisions p ON p.id = r.parent
      CROSS JOIN LATERAL (
        SELECT count(*) FILTER (WHERE o.e IS NULL)::int AS added,
               count(*) FILTER (WHERE o.e IS NOT NULL AND n.e IS NOT NULL AND o.e <> n.e)::int AS changed,
               count(*) FILTER (WHERE n.e IS NULL)::int AS deleted
        FROM (SELECT e ->> 0 AS path, e FROM jsonb_array_elements(r.manifest) e) n
        FULL JOIN (SELECT e ->> 0 AS path, e FROM jsonb_array_elements(p.manifest) e) o USING (path)
      ) c
      ORDER BY r.seq DESC`.pipe(Effect.catchTag("SqlError", storageFailure("revisions")))
    return rows.map(
      (r) =>
        new RevisionInfo({
          id: r.id,
          parent: r.parent,
          author: r.author,
          created_at: new Date(r.created_at).toISOString(),
          files: r.files,
          checksum: r.checksum,
          token_name: r.token_name,
          added: Number(r.added),
          changed: Number(r.changed),
          deleted: Number(r.deleted)
        })
    )
  })

  return { loadRevision, manifest, head, revisions } as const
}
