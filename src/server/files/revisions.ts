/**
 * The file store's reads of revisions: one revision's tree (cached, or rebuilt from its chain of deltas), its
 * manifest, the head alone, and the newest revisions listed.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import { NotFound } from "../../api/common.js"
import { RemoteManifest, RevisionInfo } from "../../api/files.js"
import { isRelPath } from "../../domain/model.js"
import { type CachedTree, type ManifestCache, manifestCache } from "./manifestCache.js"
import {
  decodeStoredRows,
  EMPTY_CHECKSUM,
  type StoredEntry,
  storageFailure,
  storedPathOrder,
  toEntries
} from "./stored.js"
import { applyDelta, type Delta, treeFileAndFolder } from "./tree.js"
import { treeSums } from "./treeSum.js"

/** A revision of a tenant, the head by default: its id (null before the first push), manifest rows and checksum. */
export type LoadRevision = RevisionQueries["loadRevision"]
export type RevisionQueries = ReturnType<typeof revisionQueries>

/** A row of a revision's chain: its whole manifest (JSON text), or its delta against its parent (as read, unchecked). */
interface ChainRow {
  readonly id: string
  readonly manifest: string | null
  readonly delta: unknown
  readonly depth: number
  readonly chain: number
  readonly checksum: string
}

const broken = (revision: string, why: string) =>
  new SqlError({ message: `the stored tree of revision ${revision} is broken: ${why}` })

/** A stored delta read back: its rows set and paths deleted checked, or what is wrong with it. */
const decodeDelta = (value: unknown): Delta | { readonly problem: string } => {
  if (typeof value !== "object" || value === null) return { problem: "is not an object" }
  const set = "set" in value ? value.set : undefined
  const deleted = "delete" in value ? value.delete : undefined
  const rows = decodeStoredRows(set)
  if ("problem" in rows) return { problem: `its set ${rows.problem}` }
  if (!Array.isArray(deleted)) return { problem: "its delete is not an array of paths" }
  if (!deleted.every(isRelPath)) {
    return { problem: `its delete ${deleted.findIndex((p) => !isRelPath(p))} is not a relative path inside the tree` }
  }
  return { set: rows.rows, delete: deleted }
}

/** Rows as stored are sorted by path; one that is not (never written so) is sorted, not trusted. */
const sortedRows = (rows: ReadonlyArray<StoredEntry>): ReadonlyArray<StoredEntry> => {
  for (let i = 1; i < rows.length; i++) {
    if ((rows[i - 1] as StoredEntry)[0] >= (rows[i] as StoredEntry)[0]) return [...rows].sort(storedPathOrder)
  }
  return rows
}

/**
 * A revision's tree from its chain, oldest first: the whole manifest of the first row, then each delta applied.
 * A tree made from deltas is checked against the revision's checksum, so a broken chain is never served.
 */
const rebuild = (revision: string, chain: ReadonlyArray<ChainRow>): Effect.Effect<CachedTree, SqlError> => {
  const [first, ...deltas] = chain
  if (first?.manifest == null) return Effect.fail(broken(revision, "no whole manifest at the start of its chain"))
  let parsed: unknown
  try {
    parsed = JSON.parse(first.manifest)
  } catch (cause) {
    return Effect.fail(broken(revision, `the whole manifest of revision ${first.id} does not parse: ${String(cause)}`))
  }
  // Read back from the database, a boundary: every row checked before any is served.
  const whole = decodeStoredRows(parsed)
  if ("problem" in whole)
    return Effect.fail(broken(revision, `the whole manifest of revision ${first.id}: ${whole.problem}`))
  let entries = sortedRows(whole.rows)
  for (const row of deltas) {
    if (row.delta === null) return Effect.fail(broken(revision, `revision ${row.id} has no delta`))
    const delta = decodeDelta(row.delta)
    if ("problem" in delta) return Effect.fail(broken(revision, `the delta of revision ${row.id}: ${delta.problem}`))
    const applied = applyDelta(entries, delta.set, delta.delete)
    if ("missing" in applied) return Effect.fail(broken(revision, `${applied.missing} deleted but not there`))
    entries = applied.next
  }
  const last = chain[chain.length - 1] as ChainRow
  // Its checksum's hash states are kept with it: the next push over it hashes on from them.
  const sums = deltas.length > 0 ? treeSums(entries) : undefined
  if (sums !== undefined && sums.checksum !== last.checksum) {
    return Effect.fail(broken(revision, "its deltas do not sum to its checksum"))
  }
  return Effect.succeed({
    entries,
    depth: last.depth,
    chain: last.chain,
    clean: treeFileAndFolder(entries) === undefined,
    ...(sums === undefined ? {} : { sums })
  })
}

export const revisionQueries = (sql: SqlClient.SqlClient, cache: ManifestCache = manifestCache()) => {
  /**
   * A committed revision's tree: from the cache, or read as its chain (the revision and its parents back to the
   * first that stores its whole manifest, at most `MAX_DEPTH` deltas) in one statement, then kept. A whole manifest
   * is read as text, whether stored so or (before `manifest_text`) as jsonb.
   */
  const tree = (tenantId: string, revision: string) =>
    Effect.suspend(() => {
      const hit = cache.get(tenantId, revision)
      if (hit !== undefined) return Effect.succeed(hit)
      return sql<ChainRow & { readonly step: number }>`
        WITH RECURSIVE c AS (
          SELECT id, parent, COALESCE(manifest_text, manifest::text) AS manifest, delta, depth, chain, checksum, 0 AS step
          FROM revisions WHERE tenant_id = ${tenantId} AND id = ${revision}
          UNION ALL
          SELECT r.id, r.parent, COALESCE(r.manifest_text, r.manifest::text), r.delta, r.depth, r.chain, r.checksum,
                 c.step + 1
          FROM c JOIN revisions r ON r.id = c.parent AND r.tenant_id = ${tenantId}
          WHERE c.delta IS NOT NULL
        )
        SELECT id, manifest, delta, depth, chain, checksum, step FROM c ORDER BY step DESC`.pipe(
        Effect.flatMap((rows) => rebuild(revision, rows)),
        Effect.tap((built) => cache.set(tenantId, revision, built))
      )
    })

  /** Keeps the tree of a revision just committed, so the next push over it reads nothing back. */
  const remember = (tenantId: string, revision: string, built: CachedTree) => cache.set(tenantId, revision, built)

  const loadRevision = (tenantId: string, revision: string | undefined) =>
    Effect.gen(function* () {
      const rows =
        revision === undefined
          ? yield* sql<{ id: string | null; checksum: string | null }>`
              SELECT r.id, r.checksum FROM tenants t LEFT JOIN revisions r ON r.id = t.head WHERE t.id = ${tenantId}`
          : yield* sql<{ id: string; checksum: string }>`
              SELECT id, checksum FROM revisions WHERE tenant_id = ${tenantId} AND id = ${revision}`
      const row = rows[0]
      if (row === undefined) {
        return yield* new NotFound({ reason: revision === undefined ? "no such tenant" : `no revision ${revision}` })
      }
      if (row.id === null) return { id: null, manifest: [], checksum: EMPTY_CHECKSUM }
      const built = yield* tree(tenantId, row.id)
      return { id: row.id, manifest: built.entries, checksum: row.checksum ?? EMPTY_CHECKSUM }
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
   * The newest revisions with the name of the token that pushed each and its counts against its parent: stored
   * with the revision since deltas are, counted in the database over the two manifests for a revision made before.
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
             COALESCE(r.added, c.added) AS added, COALESCE(r.changed, c.changed) AS changed,
             COALESCE(r.deleted, c.deleted) AS deleted
      FROM (SELECT * FROM revisions WHERE tenant_id = ${tenantId} ORDER BY seq DESC LIMIT ${limit}) r
      LEFT JOIN tokens t ON t.id = r.token_id
      LEFT JOIN revisions p ON p.id = r.parent
      CROSS JOIN LATERAL (
        SELECT count(*) FILTER (WHERE o.e IS NULL)::int AS added,
               count(*) FILTER (WHERE o.e IS NOT NULL AND n.e IS NOT NULL AND o.e <> n.e)::int AS changed,
               count(*) FILTER (WHERE n.e IS NULL)::int AS deleted
        FROM (SELECT e ->> 0 AS path, e FROM jsonb_array_elements(CASE WHEN r.added IS NULL THEN r.manifest END) e) n
        FULL JOIN (SELECT e ->> 0 AS path, e
                   FROM jsonb_array_elements(CASE WHEN r.added IS NULL THEN p.manifest END) e) o USING (path)
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

  return { tree, remember, loadRevision, manifest, head, revisions } as const
}
