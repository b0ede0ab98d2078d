/** The contents and content_sources tables: batched reads, upserts and deletes of Content rows and source layouts. */
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect, Either, Schema } from "effect"
import { contentHash, contentKey } from "../../domain/hash.js"
import { Content, ContentLayout, Id } from "../../domain/model.js"
import { batched, type Column, collect, dbError, decodeRow, deleteStatement, jsonChunks, upsertStatement } from "./shared.js"

const columns: ReadonlyArray<Column> = [
  ["source", "text"],
  ["slug", "text"],
  ["title", "text"],
  ["kind", "text"],
  ["description", "text"],
  ["author", "text"],
  ["keywords", "text[]"],
  ["image", "text"],
  ["public", "boolean"],
  ["tags", "text[]"],
  ["published_at", "text"],
  ["content_updated_at", "text"],
  ["body", "text"],
  ["version_hash", "text"],
  ["file_sha256", "text"]
]

export const toRow = (c: Content, fileSha256: string | null = null, hash = contentHash(c)) => ({
  source: c.source,
  slug: c.slug,
  title: c.title,
  kind: c.kind,
  description: c.description,
  author: c.author,
  keywords: c.keywords,
  image: c.image,
  public: c.public,
  tags: c.tags,
  published_at: c.published_at,
  content_updated_at: c.updated_at,
  body: c.body,
  version_hash: hash,
  file_sha256: fileSha256
})

const KEY: ReadonlyArray<Column> = [
  ["source", "text"],
  ["slug", "text"]
]

/** A row's key with its recorded hashes: enough to diff without reading bodies. */
export interface ContentMeta {
  readonly source: string
  readonly slug: string
  /** Empty when the row was edited by hand since its last sync. */
  readonly version_hash: string
  /** The SHA-256 of the file bytes the row was last synced with, if still true. */
  readonly file_sha256: string | null
}

const SELECT_FULL = `SELECT c.source, c.slug, c.title, c.kind, c.description, c.author, c.keywords, c.image, c."public", c.tags,
  c.published_at, c.content_updated_at, c.body, c.version_hash FROM contents c`

const UPSERT = upsertStatement("contents", columns, ["source", "slug"])
const DELETE = deleteStatement("contents", KEY)
// Only where the row still has the hash it was read with: a row edited meanwhile keeps no file hash.
const SET_FILE_SHA = `UPDATE contents AS t SET file_sha256 = d.file_sha256
FROM json_to_recordset($1::json) AS d(source text, slug text, version_hash text, file_sha256 text)
WHERE t.source = d.source AND t.slug = d.slug AND t.version_hash = d.version_hash`
const FETCH = `${SELECT_FULL} JOIN json_to_recordset($1::json) AS k(source text, slug text) ON c.source = k.source AND c.slug = k.slug`

/** What the database remembers of a content source: its layout and whether a source.yaml declared it. */
export class ContentSource extends Schema.Class<ContentSource>("ContentSource")({
  source: Id,
  layout: ContentLayout,
  declared: Schema.Boolean,
  description: Schema.NullOr(Schema.String)
}) {}

const sourceColumns: ReadonlyArray<Column> = [
  ["source", "text"],
  ["layout", "text"],
  ["declared", "boolean"],
  ["description", "text"]
]
const UPSERT_SOURCES = upsertStatement("content_sources", sourceColumns, ["source"])
const DELETE_SOURCES = deleteStatement("content_sources", [["source", "text"]])

export class ContentsRepo extends Effect.Service<ContentsRepo>()("agentsync/ContentsRepo", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const decode = (rows: ReadonlyArray<Record<string, unknown>>) =>
      collect(
        rows,
        (r) => `${String(r["source"])}/${String(r["slug"])}`,
        ({ version_hash: _, content_updated_at, ...fields }, key) =>
          decodeRow(Content, key, { ...fields, updated_at: content_updated_at }),
        contentHash
      )
    const list = Effect.fn("ContentsRepo.list")(function* () {
      const rows = yield* sql
        .unsafe<Record<string, unknown>>(`${SELECT_FULL} ORDER BY c.source, c.slug`)
        .pipe(Effect.mapError(dbError("cannot read contents")))
      return decode(rows)
    })
    /** Keys and hashes of every row, without the bodies. */
    const listMeta = Effect.fn("ContentsRepo.listMeta")(function* () {
      return yield* sql
        .unsafe<ContentMeta>(`SELECT source, slug, version_hash, file_sha256 FROM contents`)
        .pipe(Effect.mapError(dbError("cannot read contents")))
    })
    /** The full rows of the given keys, in batches. */
    const fetch = Effect.fn("ContentsRepo.fetch")(function* (keys: ReadonlyArray<Pick<Content, "source" | "slug">>) {
      const chunks = jsonChunks(keys.map((k) => ({ source: k.source, slug: k.slug })))
      const rows = yield* Effect.forEach(chunks, (chunk) => sql.unsafe<Record<string, unknown>>(FETCH, [chunk])).pipe(
        Effect.mapError(dbError("cannot read contents"))
      )
      return decode(rows.flat())
    })
    /**
     * Writes items; `known` gives, by `source/slug`, the SHA-256 of the file bytes each came from and its
     * canonical hash when the caller has it already.
     */
    const upsert = Effect.fn("ContentsRepo.upsert")(
      (items: ReadonlyArray<Content>, known?: ReadonlyMap<string, { readonly fileSha256?: string; readonly hash?: string }>) =>
        batched(
          sql,
          UPSERT,
          items.map((c) => {
            const k = known?.get(contentKey(c))
            return toRow(c, k?.fileSha256 ?? null, k?.hash ?? contentHash(c))
          }),
          "cannot write contents"
        )
    )
    /** Records which file bytes rows now match, without touching their fields, for rows still at `version_hash`. */
    const setFileSha256 = Effect.fn("ContentsRepo.setFileSha256")(
      (
        rows: ReadonlyArray<{ readonly source: string; readonly slug: string; readonly version_hash: string; readonly file_sha256: string }>
      ) =>
        batched(sql, SET_FILE_SHA, rows, "cannot record file hashes")
    )
    const remove = Effect.fn("ContentsRepo.remove")((keys: ReadonlyArray<Pick<Content, "source" | "slug">>) =>
      batched(sql, DELETE, keys.map((k) => ({ source: k.source, slug: k.slug })), "cannot delete contents")
    )
    const listSources = Effect.fn("ContentsRepo.listSources")(function* () {
      const rows = yield* sql
        .unsafe<Record<string, unknown>>(`SELECT source, layout, declared, description FROM content_sources ORDER BY source`)
        .pipe(Effect.mapError(dbError("cannot read content sources")))
      // A source row that does not decode is ignored: the layout then falls back to what the disk shows.
      return rows.flatMap((r) => {
        const d = decodeRow(ContentSource, String(r["source"]), r)
        return Either.isRight(d) ? [d.right] : []
      })
    })
    const upsertSources = Effect.fn("ContentsRepo.upsertSources")((sources: ReadonlyArray<ContentSource>) =>
      batched(
        sql,
        UPSERT_SOURCES,
        sources.map((s) => ({ source: s.source, layout: s.layout, declared: s.declared, description: s.description })),
        "cannot write content sources"
      )
    )
    const removeSources = Effect.fn("ContentsRepo.removeSources")((sources: ReadonlyArray<string>) =>
      batched(sql, DELETE_SOURCES, sources.map((source) => ({ source })), "cannot delete content sources")
    )
    return { list, listMeta, fetch, upsert, setFileSha256, remove, listSources, upsertSources, removeSources } as const
  })
}) {}

export { contentKey }
