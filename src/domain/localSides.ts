/** The two sides of a local sync as pure data: the `services/` tree as parsed, and the project database as read. */
import { Either } from "effect"
import type { InvalidInput } from "../errors.js"
import type { SourceConfig } from "./formats.js"
import { asReadNow, decodeUtf8, parseContent, renderAgent, renderContent, renderSkill, uneditable } from "./formats.js"
import { sha256 } from "./hash.js"
import {
  type AccessRule,
  type Agent,
  type Content,
  type ContentLayout,
  type ContentSource,
  type ItemMode,
  keptMode,
  LocalSyncError,
  type Skill,
  type SyncKind
} from "./model.js"
import {
  type ContentFile,
  type ParseOptions,
  type PathRole,
  type Project,
  parseProject,
  pathRole,
  type RawFile
} from "./project.js"
import type { InvalidRow, Listed } from "./stored.js"

/** Identity of what an item's files say: equal exactly when writing one side's item would not change a byte. */
export const filesIdent = (files: ReadonlyArray<{ readonly path: string; readonly text: string }>): string =>
  sha256(files.map((f) => `${f.path}\0${f.text.length}\0${f.text}`).join("\0"))
export const agentIdent = (a: Agent) => filesIdent(renderAgent(a))
export const skillIdent = (s: Skill) => filesIdent(renderSkill(s))
/** A content item's identity: where its file is and the SHA-256 of its bytes. */
export const contentIdent = (path: string, sha: string) => `${path}\0${sha}`
/** A file beside an item's identity: its bytes and its permission bits, exactly (0600 stays 0600). */
export const attachmentIdent = (sha: string, mode: number) => `${sha}\0${(mode & 0o777).toString(8)}`

/** A file beside an item, on disk: its bytes are read unless it is over the size cap. */
export interface AttachmentFile {
  readonly path: string
  readonly kind: "agents" | "skills" | "content"
  readonly owner: string | undefined
  readonly sha: string
  readonly size: number
  readonly mode: number
  readonly bytes: Uint8Array
}

export interface DiskSide {
  readonly project: Project
  /** Shown before relative paths in messages. */
  readonly prefix: string
  /** Every path local sync reads, relative to services/. */
  readonly files: ReadonlySet<string>
  readonly contents: ReadonlyArray<ContentFile>
  readonly attachments: ReadonlyArray<AttachmentFile>
  readonly sources: ReadonlyMap<string, ContentLayout>
  readonly sourceConfigs: ReadonlyMap<string, SourceConfig>
  /** Keys whose files did not parse, attachments over the cap, or stand on a special file: left alone both ways. */
  readonly blocked: Record<SyncKind, Set<string>>
  /** Per kind, the keys whose file is a special file (never read, never written over), with what a report says. */
  readonly special: Record<SyncKind, Map<string, SpecialAt>>
  readonly blockedSources: ReadonlySet<string>
  readonly errors: Record<SyncKind, Array<LocalSyncError>>
}

export const perKind = <A>(make: () => A): Record<SyncKind, A> => ({
  agents: make(),
  skills: make(),
  content: make(),
  acl: make()
})

/** The kind, key and source a tree path's problems block. */
const blocks = (role: PathRole | undefined, rel: string): { kind: SyncKind; key?: string; source?: string } => {
  if (role === undefined) {
    const top = rel.split("/")[0]
    return {
      kind: top === "skills" ? "skills" : top === "content" ? "content" : top === "access-control" ? "acl" : "agents",
      ...(top === "content" ? { source: rel.split("/")[1] ?? "" } : {})
    }
  }
  switch (role.role) {
    case "config":
    case "body":
    case "file":
      return { kind: role.kind, key: role.id }
    case "source-config":
      return { kind: "content", source: role.source }
    case "content":
      return { kind: "content", key: `${role.source}/${role.slug}` }
    case "acl":
      return { kind: "acl", key: "*" }
    case "attachment":
      return { kind: role.kind, key: `file:${rel}` }
  }
}

/** A special file (a FIFO, a socket, a device) at an item's path: shown with the prefix, and its kind in words. */
export interface SpecialAt {
  readonly file: string
  readonly what: string
}

/**
 * The disk side from the files local sync reads (`isProjectFile`). A content file whose bytes `unchanged`
 * recognises is not parsed. Files over the cap carry no bytes and are reported. An item whose path is a special
 * file (`special`: relative paths and their kind in words, "a FIFO") is blocked: its file was not read, so it is
 * no orphan, and nothing is written over it.
 */
export const diskSide = (
  files: ReadonlyArray<RawFile>,
  prefix: string,
  unchanged?: ParseOptions["unchanged"],
  special: ReadonlyArray<{ readonly path: string; readonly what: string }> = []
): DiskSide => {
  const blocked = perKind(() => new Set<string>())
  const blockedSources = new Set<string>()
  const errors = perKind((): Array<LocalSyncError> => [])
  const report = (e: InvalidInput) => {
    const file = e.file ?? ""
    const rel = file.startsWith(prefix) ? file.slice(prefix.length) : file
    const b = blocks(pathRole(rel), rel)
    errors[b.kind].push(new LocalSyncError({ item: file, message: e.message }))
    if (b.key !== undefined) blocked[b.kind].add(b.key)
    if (b.source !== undefined) blockedSources.add(b.source)
  }
  const project = parseProject(files, { prefix, ...(unchanged === undefined ? {} : { unchanged }) })
  project.errors.forEach(report)
  // A duplicate slug reports its key; the first file of that key still syncs.
  for (const f of project.contentFiles) blocked.content.delete(f.key)
  const specialKeys = perKind(() => new Map<string, SpecialAt>())
  for (const f of special) {
    const role = pathRole(f.path)
    if (role === undefined) continue
    const b = blocks(role, f.path)
    if (b.key !== undefined) {
      blocked[b.kind].add(b.key)
      specialKeys[b.kind].set(b.key, { file: `${prefix}${f.path}`, what: f.what })
    }
    if (b.source !== undefined) blockedSources.add(b.source)
  }
  const attachments: Array<AttachmentFile> = project.attachments.map((a) => ({
    path: a.path,
    kind: a.kind,
    owner: a.owner,
    sha: sha256(a.bytes),
    size: a.bytes.length,
    mode: a.mode & 0o777,
    bytes: a.bytes
  }))
  return {
    project,
    prefix,
    files: new Set(files.map((f) => f.path)),
    contents: project.contentFiles,
    attachments,
    sources: project.sources,
    sourceConfigs: project.sourceConfigs,
    blocked,
    blockedSources,
    special: specialKeys,
    errors
  }
}

// ---------------------------------------------------------------------------------------------------------
// The database side

/** A content row's key, place and recorded hashes: enough to diff without reading bodies. */
export interface ContentMeta {
  readonly source: string
  readonly slug: string
  readonly path: string
  /** Empty when the row was edited by hand since its last sync. */
  readonly version_hash: string
  /** The SHA-256 of the file the row renders to, while the row is as its last sync left it; else null. */
  readonly file_sha256: string | null
  /** The mode of its file (compared on its own: an edit of it by hand leaves the row trusted). */
  readonly mode: ItemMode
}

/** Whether a row's recorded file hash can be trusted without rendering the row (then it has one). */
export const isTrusted = (m: ContentMeta): m is ContentMeta & { readonly file_sha256: string } =>
  m.version_hash !== "" && m.file_sha256 !== null

/** A file beside an item as the database holds it (its bytes apart, by digest). */
export interface ItemFileRow {
  readonly path: string
  readonly kind: "agents" | "skills" | "content"
  readonly owner: string | null
  readonly sha256: string
  readonly mode: number
  readonly size: number
}

/** A content row ready to diff: its identity, and its item and text where the row was fetched. */
export interface ContentRow {
  readonly key: string
  readonly source: string
  readonly slug: string
  readonly path: string
  readonly ident: string
  readonly hash: string
  readonly meta: ContentMeta
  /** The fetched item and the text it renders to (what a sync to disk writes). */
  readonly item: Content | undefined
  readonly text: string | undefined
  /** Whether `text` was rendered from the item's fields (untrusted, or its head and body not the file it records). */
  readonly rendered: boolean
  /** Why the item's edit cannot be written into its file (`uneditable`); its `text` is then the file as it was read. */
  readonly refused?: string
}

export interface DbSide {
  readonly agents: Listed<Agent>
  readonly skills: Listed<Skill>
  readonly rules: Listed<AccessRule>
  readonly contents: ReadonlyArray<ContentRow>
  readonly contentInvalid: ReadonlyArray<InvalidRow>
  readonly sources: ReadonlyArray<ContentSource>
  /** The files beside items, without stored pages. */
  readonly attachments: ReadonlyArray<ItemFileRow>
  readonly storedPages: ReadonlyArray<StoredPage>
}

/**
 * A row of item_files whose path is now an item's (an MDX page, which earlier versions stored as a file beside
 * items): the item its stored bytes are, which the next sync moves to `contents`.
 */
export interface StoredPage {
  /** Below services/, as item_files keys it. */
  readonly path: string
  readonly key: string
  readonly sha256: string
  readonly mode: ItemMode
  /** The item the bytes parse to and their text, or why they do not parse. */
  readonly parsed: Either.Either<{ readonly item: Content; readonly text: string }, string>
}

/** Whether a row of item_files is a stored page rather than a file beside an item. */
export const isStoredPage = (r: Pick<ItemFileRow, "kind" | "path">): boolean =>
  r.kind === "content" && pathRole(r.path)?.role === "content"

/** Stored pages from their rows and bytes: each parsed as the same file on disk would be. */
export const storedPages = (
  rows: ReadonlyArray<ItemFileRow>,
  blobs: ReadonlyMap<string, Uint8Array>
): Array<StoredPage> =>
  rows.flatMap((r) => {
    const role = pathRole(r.path)
    if (r.kind !== "content" || role?.role !== "content") return []
    const bytes = blobs.get(r.sha256)
    const parsed: StoredPage["parsed"] =
      bytes === undefined
        ? Either.left(`its stored bytes (sha256 ${r.sha256}) are missing`)
        : Either.mapLeft(
            Either.flatMap(decodeUtf8(r.path, bytes), (text) =>
              Either.map(parseContent({ path: r.path, text }, role.source, role.path), (item) => ({ item, text }))
            ),
            (errors) => errors.map((e) => e.message).join("; ")
          )
    return [{ path: r.path, key: `${role.source}/${role.slug}`, sha256: r.sha256, mode: keptMode(r.mode), parsed }]
  })

export const metaKey = (m: Pick<ContentMeta, "source" | "slug">) => `${m.source}/${m.slug}`

/**
 * The text a fetched row is written as, and its digest: its head and body where it is trusted and they are the file
 * it records, else rendered. A row an older version recorded after writing an edit kept the head it was read with,
 * so its head and body are the page before the edit: rendered, it is the page it records.
 */
export const rowText = (
  meta: ContentMeta,
  item: Content
): { readonly text: string; readonly sha: string; readonly rendered: boolean; readonly refused?: string } => {
  if (isTrusted(meta) && item.head !== null) {
    const text = item.head + item.body
    const sha = sha256(text)
    if (sha === meta.file_sha256) return { text, sha, rendered: false }
  }
  const text = renderContent(item)
  if (text === undefined) {
    // The page as read, under a digest no file has: it differs from its file, and a sync to disk refuses it.
    const read = (item.head ?? "") + item.body
    return { text: read, sha: sha256(`${read}\0cannot be written`), rendered: true, refused: uneditable(item) }
  }
  return { text, sha: sha256(text), rendered: true }
}

/** Content rows from their metadata and whichever rows were fetched (every untrusted one must be). */
export const contentRows = (
  meta: ReadonlyArray<ContentMeta>,
  fetched: ReadonlyMap<string, { readonly item: Content; readonly hash: string }>,
  invalid: ReadonlyArray<InvalidRow>
): Array<ContentRow> => {
  const bad = new Set(invalid.map((r) => r.key))
  const out: Array<ContentRow> = []
  for (const m of meta) {
    const key = metaKey(m)
    if (bad.has(key)) continue
    const row = fetched.get(key)
    if (row === undefined) {
      if (!isTrusted(m)) continue // not fetched: never planned on (the reader fetches every untrusted row)
      out.push({
        key,
        source: m.source,
        slug: m.slug,
        path: m.path,
        ident: contentIdent(m.path, m.file_sha256),
        hash: m.version_hash,
        meta: m,
        item: undefined,
        text: undefined,
        rendered: false
      })
      continue
    }
    // A row an earlier version stored with its front matter in its body is that page as read now, and differs
    // from its file once (whose bytes it is): the file's fields reach the row, or the row is written and recorded.
    const item = asReadNow(row.item)
    const { text, sha, rendered, refused } = rowText(m, item)
    out.push({
      key,
      source: m.source,
      slug: m.slug,
      path: item.path,
      ident: contentIdent(item === row.item ? item.path : `${item.path}\0read again`, sha),
      hash: row.hash,
      meta: m,
      item,
      text,
      rendered,
      ...(refused === undefined ? {} : { refused })
    })
  }
  return out
}

/** Which content rows a run must fetch: every untrusted one, and for a sync to disk every one it writes. */
export const rowsToFetch = (
  meta: ReadonlyArray<ContentMeta>,
  disk: Pick<DiskSide, "contents">,
  toDisk: boolean
): Array<ContentMeta> => {
  const onDisk = new Map(disk.contents.map((f) => [f.key, f]))
  // A trusted row is written unless its file is there with its bytes and its mode.
  const written = (m: ContentMeta & { readonly file_sha256: string }) => {
    const f = onDisk.get(metaKey(m))
    return f === undefined || contentIdent(f.path, f.sha) !== contentIdent(m.path, m.file_sha256) || f.mode !== m.mode
  }
  return meta.filter((m) => !isTrusted(m) || (toDisk && written(m)))
}
