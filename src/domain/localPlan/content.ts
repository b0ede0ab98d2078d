/** The content part of a local-sync plan: many items, compared by where their file is and its digest; and sources. */
import { stringify } from "yaml"
import { contentPath, sourceConfigPath } from "../formats.js"
import { type ContentRow, contentIdent, type DbSide, type DiskSide, isTrusted } from "../localSides.js"
import { ContentSource } from "../model.js"
import type { ContentFile } from "../project.js"
import { Builder, invalidRowErrors, planAttachments, storable, type Unit, walk } from "./builder.js"
import type { ContentWrite, KindPlan, PlanOptions } from "./ops.js"

export const planContent = (o: PlanOptions, disk: DiskSide, db: DbSide): KindPlan => {
  const b = new Builder("content", o)
  planSources(b, disk, db)
  const diskUnits = disk.contents.map(
    (f): Unit<ContentFile> => ({ key: f.key, ident: contentIdent(f.path, f.sha), item: f, paths: [contentPath(f)] })
  )
  const dbUnits = db.contents.map(
    (r): Unit<ContentRow> => ({ key: r.key, ident: r.ident, item: r, paths: [contentPath(r)] })
  )
  const blocked = new Set([...disk.blocked.content, ...db.contentInvalid.map((r) => r.key)])
  const upserts: Array<ContentWrite> = []
  const deletes: Array<{ source: string; slug: string }> = []
  const onDisk = new Map(disk.contents.map((f) => [f.key, f]))
  walk(b, diskUnits, dbUnits, (k) => blocked.has(k) || disk.blockedSources.has(k.slice(0, k.indexOf("/"))), {
    toDb: (u, status) => {
      const item = u.item.item
      if (item === undefined) throw new Error(`content ${u.key} was planned for the database without being read`)
      if (!storable(b, u.key, item)) return
      b.synced++
      upserts.push({ item, fileSha: u.item.sha })
      b.steps.push({ kind: "content", action: "upsert", key: u.key, status, paths: u.paths })
    },
    toDisk: (u, there, status) => {
      const row = u.item
      if (row.item === undefined || row.text === undefined)
        throw new Error(`content ${u.key} was planned for writing without being read`)
      b.synced++
      const write = contentPath(row.item)
      b.disk.push({ _tag: "WriteText", path: write, text: row.text })
      const moved = there !== undefined && there.paths[0] !== write ? there.paths : []
      for (const p of moved) b.disk.push({ _tag: "Remove", path: p })
      b.steps.push({ kind: "content", action: "write", key: u.key, status, paths: [write, ...moved] })
    },
    deleteRow: (u) => {
      deletes.push({ source: u.item.source, slug: u.item.slug })
      b.steps.push({ kind: "content", action: "delete", key: u.key, status: "Removed", paths: [] })
    },
    removeFile: (u) => {
      b.disk.push({ _tag: "Remove", path: u.paths[0]! })
      b.steps.push({ kind: "content", action: "remove", key: u.key, status: "Removed", paths: u.paths })
    }
  })
  b.db.push({ _tag: "UpsertContents", items: upserts }, { _tag: "DeleteContents", keys: deletes })
  // Rows that were rendered (edited by hand, or never written by this version) learn the file they now match,
  // when it is written now or already on disk; the next run then trusts them without rendering.
  const written = new Set(b.disk.flatMap((op) => (op._tag === "WriteText" ? [op.path] : [])))
  const record: Array<ContentWrite & { expectedHash: string }> = []
  for (const r of db.contents) {
    if (r.item === undefined || r.text === undefined || blocked.has(r.key)) continue
    if (isTrusted(r.meta)) continue
    const file = onDisk.get(r.key)
    if (written.has(contentPath(r.item)) || (file !== undefined && contentIdent(file.path, file.sha) === r.ident)) {
      record.push({
        item: r.item,
        fileSha: r.ident.slice(r.ident.lastIndexOf("\0") + 1),
        expectedHash: r.meta.version_hash
      })
    }
  }
  b.after.push({ _tag: "RecordContents", items: record })
  planAttachments(b, disk, db, "content")
  const errors = [
    ...disk.errors.content,
    ...(o.direction === "ToDisk" ? invalidRowErrors("contents", db.contentInvalid) : [])
  ]
  return b.done(errors)
}

/** Content sources: the database remembers each source's layout; the disk gets a source.yaml where one was declared. */
const planSources = (b: Builder, disk: DiskSide, db: DbSide) => {
  const stored = new Map(db.sources.map((s) => [s.source, s]))
  if (b.options.direction === "ToDatabase") {
    const wanted: Array<ContentSource> = []
    for (const [source, layout] of disk.sources) {
      if (disk.blockedSources.has(source)) continue
      const config = disk.sourceConfigs.get(source)
      const s = new ContentSource({
        source,
        layout,
        declared: config !== undefined,
        description: config?.description ?? null,
        original: config?.original ?? null
      })
      const old = stored.get(source)
      if (
        old !== undefined &&
        old.layout === s.layout &&
        old.declared === s.declared &&
        old.description === s.description &&
        old.original === s.original
      )
        continue
      wanted.push(s)
      b.steps.push({
        kind: "content",
        action: "upsert",
        key: `source:${source}`,
        status: old === undefined ? "Added" : "Modified",
        paths: config === undefined ? [] : [sourceConfigPath(source)]
      })
    }
    b.db.push({ _tag: "UpsertSources", sources: wanted })
    return
  }
  for (const s of db.sources) {
    const path = sourceConfigPath(s.source)
    if (!s.declared || disk.files.has(path) || disk.blockedSources.has(s.source)) continue
    const text =
      s.original ?? stringify({ layout: s.layout, ...(s.description === null ? {} : { description: s.description }) })
    b.disk.push({ _tag: "WriteText", path, text })
    b.steps.push({ kind: "content", action: "write", key: `source:${s.source}`, status: "Added", paths: [path] })
  }
}
