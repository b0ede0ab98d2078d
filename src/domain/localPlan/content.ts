/** The content part of a local-sync plan: many items, compared by where their file is and its digest; and sources. */
import { Either } from "effect"
import { stringify } from "yaml"
import { contentPath, parseContent, sourceConfigPath, unwritableContent } from "../formats.js"
import { contentHash } from "../hash.js"
import { type ContentRow, contentIdent, type DbSide, type DiskSide, isTrusted, type StoredPage } from "../localSides.js"
import { Content, ContentSource, type ItemMode, LocalSyncError, withMode } from "../model.js"
import type { ContentFile } from "../project.js"
import {
  Builder,
  invalidRowErrors,
  modeOnly,
  modeWords,
  planAttachments,
  storable,
  toDatabase,
  type Unit,
  walk
} from "./builder.js"
import type { ContentWrite, KindPlan, PlanOptions } from "./ops.js"

export const planContent = (o: PlanOptions, disk: DiskSide, db: DbSide): KindPlan => {
  const b = new Builder("content", o)
  planSources(b, disk, db)
  const diskUnits = disk.contents.map(
    (f): Unit<ContentFile> => ({
      key: f.key,
      ident: contentIdent(f.path, f.sha),
      mode: f.mode,
      item: f,
      paths: [contentPath(f)]
    })
  )
  const pages = standIns(db)
  const dbUnits = [...db.contents, ...[...pages.values()].map((s) => s.row)].map(
    (r): Unit<ContentRow> => ({ key: r.key, ident: r.ident, mode: r.meta.mode, item: r, paths: [contentPath(r)] })
  )
  const blocked = new Set([...disk.blocked.content, ...db.contentInvalid.map((r) => r.key)])
  // A stored page whose bytes do not parse holds its key: a sync to disk neither writes nor removes that file.
  if (o.direction === "ToDisk") for (const p of db.storedPages) if (Either.isLeft(p.parsed)) blocked.add(p.key)
  // So does a row whose edit cannot be written into its page (front matter that is code, a value its format
  // cannot hold): refused, file kept.
  const unwritable: Array<LocalSyncError> = []
  if (o.direction === "ToDisk")
    for (const r of db.contents) {
      const why =
        r.refused ?? (r.item !== undefined && r.text !== undefined ? unwritableContent(r.item, r.text) : undefined)
      if (why === undefined || r.item === undefined) continue
      blocked.add(r.key)
      unwritable.push(new LocalSyncError({ item: contentPath(r.item), message: why }))
    }
  const isBlocked = (k: string) => blocked.has(k) || disk.blockedSources.has(k.slice(0, k.indexOf("/")))
  const upserts: Array<ContentWrite> = []
  const modes: Array<{ key: string; mode: ItemMode }> = []
  const deletes: Array<{ source: string; slug: string }> = []
  const superseded = new Set<string>()
  const onDisk = new Map(disk.contents.map((f) => [f.key, f]))
  const same = new Set<string>()
  walk(b, diskUnits, dbUnits, isBlocked, {
    // A chmod alone of a row (a stored page has no row to set the mode of: it becomes one).
    toDb: (u, there, status) =>
      toDatabase(
        b,
        u,
        there,
        status,
        modes,
        () => {
          const item = u.item.item
          if (item === undefined) throw new Error(`content ${u.key} was planned for the database without being read`)
          if (!storable(b, u.key, item)) return false
          upserts.push({ item, fileSha: u.item.sha })
          superseded.add(u.key)
          return true
        },
        modeOnly(u, there) && !pages.has(u.key)
      ),
    toDisk: (u, there, status) => {
      const row = u.item
      if (row.item === undefined || row.text === undefined)
        throw new Error(`content ${u.key} was planned for writing without being read`)
      b.synced++
      const write = contentPath(row.item)
      // A row read again (`contentRows`) differs from its file only in identity: its bytes and mode are the file's,
      // so it is recorded, not written (a write of the same bytes would touch the file and wake a site's server).
      if (there?.paths[0] === write && there.item.sha === shaOf(row) && there.mode === u.mode) same.add(write)
      else b.disk.push({ _tag: "WriteText", path: write, text: row.text, mode: u.mode })
      const moved = there !== undefined && there.paths[0] !== write ? there.paths : []
      for (const p of moved) b.disk.push({ _tag: "Remove", path: p })
      b.steps.push({
        kind: "content",
        action: "write",
        key: u.key,
        status,
        paths: [write, ...moved],
        ...modeWords(u, there)
      })
    },
    deleteRow: (u) => {
      if (pages.has(u.key)) superseded.add(u.key)
      else deletes.push({ source: u.item.source, slug: u.item.slug })
      b.steps.push({ kind: "content", action: "delete", key: u.key, status: "Removed", paths: [] })
    },
    removeFile: (u) => {
      for (const p of u.paths) b.disk.push({ _tag: "Remove", path: p })
      b.steps.push({ kind: "content", action: "remove", key: u.key, status: "Removed", paths: u.paths })
    }
  })
  const { migrated, dropped } = planStoredPages(b, disk, db, pages, superseded, upserts, isBlocked)
  b.db.push(
    { _tag: "UpsertContents", items: [...upserts, ...migrated] },
    { _tag: "SetModes", kind: "content", modes },
    { _tag: "DeleteContents", keys: deletes },
    { _tag: "DeleteFiles", paths: dropped }
  )
  // Rows that were rendered (edited by hand, never written by this version, or recorded by an older one with the head
  // they were read with) learn the file they now match,
  // when it is written now or already on disk; the next run then trusts them without rendering, writing their
  // head and body as they are: so the row records the head the file has, not the one it was read with.
  const written = new Set(b.disk.flatMap((op) => (op._tag === "WriteText" ? [op.path] : [])))
  const record: Array<ContentWrite & { expectedHash: string }> = []
  for (const r of db.contents) {
    if (r.item === undefined || r.text === undefined || blocked.has(r.key)) continue
    if (isTrusted(r.meta) && !r.rendered) continue
    const file = onDisk.get(r.key)
    const path = contentPath(r.item)
    if (written.has(path) || same.has(path) || (file !== undefined && contentIdent(file.path, file.sha) === r.ident)) {
      // Recorded with the head its written file has (an edit's front matter, not the one read): else the next tree
      // written from the row would get the page from before the edit.
      const item = asWritten(r.item, r.text)
      if (item === undefined) {
        // Left untrusted: rendered again each run, which is always right, and said, since each run pays for it.
        b.unrecorded.push(path)
        continue
      }
      record.push({ item, fileSha: shaOf(r), expectedHash: r.meta.version_hash })
    }
  }
  b.after.push({ _tag: "RecordContents", items: record })
  planAttachments(b, disk, db, "content")
  const errors = [
    ...disk.errors.content,
    ...unwritable,
    ...(o.direction === "ToDisk" ? invalidRowErrors("contents", db.contentInvalid) : [])
  ]
  return b.done(errors)
}

/** The digest of a row's text, which ends its identity. */
const shaOf = (r: ContentRow) => r.ident.slice(r.ident.lastIndexOf("\0") + 1)

/**
 * The item a row's rendered text reads back as (its head now the file's: front matter an edit added or changed), where
 * it says what the row says; a page that had none has YAML front matter now, so its format may be all that differs.
 */
const asWritten = (row: Content, text: string): Content | undefined => {
  const back = parseContent({ path: contentPath(row), text }, row.source, row.path)
  if (Either.isLeft(back)) return undefined
  return contentHash(new Content({ ...back.right, format: row.format })) === contentHash(row) ? back.right : undefined
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

/** A stored page that stands for its key's item (no row of `contents` holds that key), as a row of the database side. */
interface StandIn {
  readonly row: ContentRow & { readonly item: Content }
  readonly page: StoredPage
}

/** The stored pages standing for their items: per key without a row, the first page (by path) whose bytes parse. */
const standIns = (db: DbSide): Map<string, StandIn> => {
  const rows = new Set(db.contents.map((r) => r.key))
  const out = new Map<string, StandIn>()
  for (const page of db.storedPages) {
    if (Either.isLeft(page.parsed) || rows.has(page.key) || out.has(page.key)) continue
    const { text } = page.parsed.right
    const item = withMode(page.parsed.right.item, page.mode)
    // Never stored as a row: nothing recorded, so it is compared by its file and written as its stored text.
    const meta = {
      source: item.source,
      slug: item.slug,
      path: item.path,
      version_hash: "",
      file_sha256: null,
      mode: page.mode
    }
    const ident = contentIdent(item.path, page.sha256)
    const row = { ...meta, key: page.key, ident, hash: "", meta, item, text, rendered: false }
    out.set(page.key, { row, page })
  }
  return out
}

/**
 * Stored pages move to `contents` in any run that does not replace them: each becomes the row of the item it is
 * (its file is what was stored, or is written from it now), and its item_files row goes. One a run replaced
 * (written from the disk, or deleted as an orphan) just goes. A page that is not its key's item (another file
 * holds the slug, or its bytes do not parse) stays until a sync to the database stores its own file or, with
 * --delete-orphans, finds it gone.
 */
const planStoredPages = (
  b: Builder,
  disk: DiskSide,
  db: DbSide,
  pages: ReadonlyMap<string, StandIn>,
  superseded: ReadonlySet<string>,
  upserted: ReadonlyArray<ContentWrite>,
  isBlocked: (key: string) => boolean
) => {
  const o = b.options
  const stored = new Set(upserted.map((w) => contentPath(w.item)))
  const migrated: Array<ContentWrite> = []
  const dropped: Array<string> = []
  for (const p of db.storedPages) {
    if (isBlocked(p.key)) continue
    const standIn = pages.get(p.key)
    if (standIn?.page === p) {
      if (superseded.has(p.key)) dropped.push(p.path)
      else if (storable(b, p.key, standIn.row.item)) {
        migrated.push({ item: standIn.row.item, fileSha: p.sha256 })
        dropped.push(p.path)
      }
    } else if (stored.has(p.path) || (o.direction === "ToDatabase" && o.deleteOrphans && !disk.files.has(p.path)))
      dropped.push(p.path)
    else if (o.direction === "ToDisk" && Either.isLeft(p.parsed))
      b.errors.push(
        new LocalSyncError({
          item: `database item_files ${p.path}`,
          message: `${p.path} is stored as a file beside items but is a content item now, and its stored bytes do not parse (${p.parsed.left}); left alone`
        })
      )
  }
  return { migrated, dropped }
}
