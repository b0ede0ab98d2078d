/** The contents and content_sources tables: batched reads, upserts and deletes of Content rows and source layouts. */
import { SqlClient } from "@effect/sql"
import { Effect, Either, Schema } from "effect"
import { contentHash, contentKey } from "../../domain/hash.js"
import { Content, ContentLayout, Id } from "../../domain/model.js"
import { batched, type Column, collect, dbError, decodeRow, deleteStatement, upsertStatement } from "./shared.js"

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
  ["version_hash", "text"]
]

const UPSERT = upsertStatement("contents", columns, ["source", "slug"])
const DELETE = deleteStatement("contents", [
  ["source", "text"],
  ["slug", "text"]
])

export const toRow = (c: Content) => ({
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
  version_hash: contentHash(c)
})

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
    const list = Effect.fn("ContentsRepo.list")(function* () {
      const rows = yield* sql
        .unsafe<Record<string, unknown>>(
          `SELECT source, slug, title, kind, description, author, keywords, image, "public", tags, published_at,
                  content_updated_at, body, version_hash FROM contents ORDER BY source, slug`
        )
        .pipe(Effect.mapError(dbError("cannot read contents")))
      return collect(
        rows,
        (r) => `${String(r["source"])}/${String(r["slug"])}`,
        ({ version_hash: _, content_updated_at, ...fields }, key) =>
          decodeRow(Content, key, { ...fields, updated_at: content_updated_at }),
        contentHash
      )
    })
    const upsert = Effect.fn("ContentsRepo.upsert")((items: ReadonlyArray<Content>) =>
      batched(sql, UPSERT, items.map(toRow), "cannot write contents")
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
    return { list, upsert, remove, listSources, upsertSources, removeSources } as const
  })
}) {}

export { contentKey }
