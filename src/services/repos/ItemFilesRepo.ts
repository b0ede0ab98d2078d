/** The files beside items (item_files) and their bytes, stored once per SHA-256 (item_blobs). */
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"
import type { AttachmentFile, ItemFileRow } from "../../domain/localSides.js"
import { batched, type Column, dbError, deleteStatement, jsonChunks, upsertStatement } from "./shared.js"

const columns: ReadonlyArray<Column> = [
  ["path", "text"],
  ["kind", "text"],
  ["owner", "text"],
  ["sha256", "text"],
  ["mode", "integer"]
]
const UPSERT = upsertStatement("item_files", columns, ["path"])
const DELETE = deleteStatement("item_files", [["path", "text"]])
const INSERT_BLOBS = `INSERT INTO item_blobs (sha256, size, bytes)
SELECT r.sha256, r.size, decode(r.b64, 'base64') FROM json_to_recordset($1::json) AS r(sha256 text, size bigint, b64 text)
ON CONFLICT (sha256) DO NOTHING`
// Bytes nothing refers to any more: removed at the end of a run that deleted or replaced files.
const COLLECT = `DELETE FROM item_blobs b WHERE NOT EXISTS (SELECT 1 FROM item_files f WHERE f.sha256 = b.sha256)`

/** Blob bytes per statement: base64 text of at most about this much (the JSON chunks cap the rest). */
const BLOB_BATCH_BYTES = 8 * 1024 * 1024

export class ItemFilesRepo extends Effect.Service<ItemFilesRepo>()("agentsync/ItemFilesRepo", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const list = Effect.fn("ItemFilesRepo.list")(function* () {
      const rows = yield* sql
        .unsafe<{
          path: string
          kind: ItemFileRow["kind"]
          owner: string | null
          sha256: string
          mode: number
          size: string | number
        }>(
          `SELECT f.path, f.kind, f.owner, f.sha256, f.mode, b.size FROM item_files f JOIN item_blobs b USING (sha256) ORDER BY f.path`
        )
        .pipe(Effect.mapError(dbError("cannot read item files")))
      return rows.map((r): ItemFileRow => ({ ...r, size: Number(r.size) }))
    })
    /** Stores files: the bytes of digests the database does not have yet, then one row per path. */
    const upsert = Effect.fn("ItemFilesRepo.upsert")(function* (files: ReadonlyArray<AttachmentFile>) {
      if (files.length === 0) return 0
      const shas = [...new Set(files.map((f) => f.sha))]
      const present = yield* sql
        .unsafe<{ sha256: string }>(`SELECT sha256 FROM item_blobs WHERE sha256 = ANY($1::text[])`, [shas])
        .pipe(Effect.mapError(dbError("cannot read item files")))
      const have = new Set(present.map((r) => r.sha256))
      const missing = new Map<string, AttachmentFile>()
      for (const f of files) if (!have.has(f.sha) && !missing.has(f.sha)) missing.set(f.sha, f)
      let batch: Array<Record<string, unknown>> = []
      let size = 0
      const flush = () => {
        const rows = batch
        batch = []
        size = 0
        return Effect.forEach(jsonChunks(rows), (chunk) => sql.unsafe(INSERT_BLOBS, [chunk]), { discard: true }).pipe(
          Effect.mapError(dbError("cannot store item files"))
        )
      }
      for (const f of missing.values()) {
        batch.push({
          sha256: f.sha,
          size: f.bytes.length,
          b64: Buffer.from(f.bytes.buffer, f.bytes.byteOffset, f.bytes.byteLength).toString("base64")
        })
        size += f.bytes.length
        if (size >= BLOB_BATCH_BYTES) yield* flush()
      }
      if (batch.length > 0) yield* flush()
      return yield* batched(
        sql,
        UPSERT,
        files.map((f) => ({ path: f.path, kind: f.kind, owner: f.owner ?? null, sha256: f.sha, mode: f.mode })),
        "cannot store item files"
      )
    })
    const remove = Effect.fn("ItemFilesRepo.remove")((paths: ReadonlyArray<string>) =>
      batched(
        sql,
        DELETE,
        paths.map((path) => ({ path })),
        "cannot delete item files"
      )
    )
    /** Drops bytes no file refers to. */
    const collectGarbage = Effect.fn("ItemFilesRepo.collectGarbage")(() =>
      sql.unsafe(COLLECT).pipe(Effect.asVoid, Effect.mapError(dbError("cannot clean item files")))
    )
    /** The bytes of the given digests. */
    const blobs = Effect.fn("ItemFilesRepo.blobs")(function* (shas: ReadonlyArray<string>) {
      const out = new Map<string, Uint8Array>()
      const unique = [...new Set(shas)]
      for (let i = 0; i < unique.length; i += 256) {
        const rows = yield* sql
          .unsafe<{ sha256: string; bytes: Uint8Array }>(
            `SELECT sha256, bytes FROM item_blobs WHERE sha256 = ANY($1::text[])`,
            [unique.slice(i, i + 256)]
          )
          .pipe(Effect.mapError(dbError("cannot read item files")))
        for (const r of rows) out.set(r.sha256, r.bytes)
      }
      return out
    })
    return { list, upsert, remove, collectGarbage, blobs } as const
  })
}) {}
