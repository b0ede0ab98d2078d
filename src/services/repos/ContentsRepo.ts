/** The contents and content_sources tables: batched reads, upserts and deletes of Content rows and source layouts. */
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect, Either } from "effect"
import { contentKnownFields } from "../../domain/formats/content.js"
import { contentHash, contentKey } from "../../domain/hash.js"
import type { ContentWrite } from "../../domain/localPlan.js"
import type { ContentMeta } from "../../domain/localSides.js"
import { Content, ContentSource, parseDate } from "../../domain/model.js"
import {
  batched,
  type Column,
  collect,
  dbError,
  decodeRow,
  deleteStatement,
  jsonChunks,
  modeStatement,
  upsertStatement
} from "./shared.js"

const columns: ReadonlyArray<Column> = [
  ["source", "text"],
  ["slug", "text"],
  ["path", "text"],
  ["format", "text"],
  ["head", "text"],
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
  ["published_on", "timestamptz"],
  ["content_updated_on", "timestamptz"],
  ["extra", "json"],
  ["body", "text"],
  ["mode", "integer"],
  ["version_hash", "text"],
  ["file_sha256", "text"]
]

export const toRow = (c: Content, fileSha256: string | null = null, hash = contentHash(c)) => {
  // The front matter's `updated_at` is stored as `content_updated_at` (the row has its own `updated_at`).
  const { updated_at, ...known } = contentKnownFields(c)
  return {
    source: c.source,
    slug: c.slug,
    path: c.path,
    format: c.format,
    head: c.head,
    ...known,
    content_updated_at: updated_at,
    published_on: parseDate(c.published_at),
    content_updated_on: parseDate(updated_at),
    extra: c.extra,
    body: c.body,
    mode: c.mode,
    version_hash: hash,
    file_sha256: fileSha256
  }
}

const KEY: ReadonlyArray<Column> = [
  ["source", "text"],
  ["slug", "text"]
]

export type { ContentMeta } from "../../domain/localSides.js"

const SELECT_FULL = `SELECT c.source, c.slug, c.path, c.format, c.head, c.title, c.kind, c.description, c.author, c.keywords, c.image,
  c."public", c.tags, c.published_at, c.content_updated_at, c.extra, c.body, c.mode, c.version_hash FROM contents c`

const UPSERT = upsertStatement("contents", columns, ["source", "slug"])
const DELETE = deleteStatement("contents", KEY)
const SET_MODES = modeStatement("contents", KEY)
// A row learns the file it now matches, only where it still has the hash it was read with: a row edited
// meanwhile is left as it is (and compared again next time). Its mode is left alone: a file's mode is compared on
// its own (SetModes writes it), and the item recorded was read before that, with the row's old mode.
const RECORD = `UPDATE contents AS t SET ${columns
  .filter(([n]) => n !== "source" && n !== "slug" && n !== "mode")
  .map(([n]) => `"${n}" = d."${n}"`)
  .join(", ")}, updated_at = now()
FROM json_to_recordset($1::json) AS d(${columns.map(([n, t]) => `"${n}" ${t}`).join(", ")}, expected text)
WHERE t.source = d.source AND t.slug = d.slug AND t.version_hash = d.expected
RETURNING t.source, t.slug, d.version_hash, d.file_sha256`
// The stale-content trigger reads an update that changes a field but leaves a hash as it was as a hand edit, and
// blanks that hash: RECORD changes the head and keeps the hash it records, so the rows it updated get their hashes
// again from a statement that changes only them, which the trigger lets through. A hand edit still blanks them.
const SEAL = `UPDATE contents AS t SET version_hash = d.version_hash, file_sha256 = d.file_sha256
FROM json_to_recordset($1::json) AS d(source text, slug text, version_hash text, file_sha256 text)
WHERE t.source = d.source AND t.slug = d.slug`
const FETCH = `${SELECT_FULL} JOIN json_to_recordset($1::json) AS k(source text, slug text) ON c.source = k.source AND c.slug = k.slug`

const sourceColumns: ReadonlyArray<Column> = [
  ["source", "text"],
  ["layout", "text"],
  ["declared", "boolean"],
  ["description", "text"],
  ["original", "text"]
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
        .unsafe<ContentMeta>(`SELECT source, slug, path, version_hash, file_sha256, mode FROM contents`)
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
    /** Writes items with the SHA-256 of the file each is. */
    const upsert = Effect.fn("ContentsRepo.upsert")((items: ReadonlyArray<ContentWrite>) =>
      batched(
        sql,
        UPSERT,
        items.map((w) => toRow(w.item, w.fileSha)),
        "cannot write contents"
      )
    )
    /** Rows now match these files: fields and file hash, for rows still at `expectedHash`; the rows are left trusted. */
    const record = Effect.fn("ContentsRepo.record")(
      (items: ReadonlyArray<ContentWrite & { readonly expectedHash: string }>) =>
        Effect.forEach(
          jsonChunks(items.map((w) => ({ ...toRow(w.item, w.fileSha), expected: w.expectedHash }))),
          (chunk) =>
            Effect.flatMap(sql.unsafe<Record<string, unknown>>(RECORD, [chunk]), (recorded) =>
              recorded.length === 0 ? Effect.void : sql.unsafe(SEAL, [JSON.stringify(recorded)])
            ),
          { discard: true }
        ).pipe(sql.withTransaction, Effect.as(items.length), Effect.mapError(dbError("cannot record file hashes")))
    )
    const remove = Effect.fn("ContentsRepo.remove")((keys: ReadonlyArray<Pick<Content, "source" | "slug">>) =>
      batched(
        sql,
        DELETE,
        keys.map((k) => ({ source: k.source, slug: k.slug })),
        "cannot delete contents"
      )
    )
    /** Sets the mode of each item's file (keyed `source/slug`), nothing else of its row. */
    const setModes = Effect.fn("ContentsRepo.setModes")(
      (modes: ReadonlyArray<{ readonly key: string; readonly mode: number }>) =>
        batched(
          sql,
          SET_MODES,
          modes.map((m) => {
            const at = m.key.indexOf("/")
            return { source: m.key.slice(0, at), slug: m.key.slice(at + 1), mode: m.mode }
          }),
          "cannot write contents"
        )
    )
    const listSources = Effect.fn("ContentsRepo.listSources")(function* () {
      const rows = yield* sql
        .unsafe<Record<string, unknown>>(
          `SELECT source, layout, declared, description, original FROM content_sources ORDER BY source`
        )
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
        sources.map((s) => ({
          source: s.source,
          layout: s.layout,
          declared: s.declared,
          description: s.description,
          original: s.original
        })),
        "cannot write content sources"
      )
    )
    const removeSources = Effect.fn("ContentsRepo.removeSources")((sources: ReadonlyArray<string>) =>
      batched(
        sql,
        DELETE_SOURCES,
        sources.map((source) => ({ source })),
        "cannot delete content sources"
      )
    )
    return {
      list,
      listMeta,
      fetch,
      upsert,
      record,
      setModes,
      remove,
      listSources,
      upsertSources,
      removeSources
    } as const
  })
}) {}

export { contentKey }
