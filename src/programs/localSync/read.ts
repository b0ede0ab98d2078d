/** Local sync, reading: the tree's files (before the run's transaction) and both sides put together (inside it). */
import * as nodePath from "node:path"
import { Effect } from "effect"
import { contentKey } from "../../domain/hash.js"
import {
  contentRows,
  type DbSide,
  type DiskSide,
  diskSide,
  isStoredPage,
  isTrusted,
  metaKey,
  rowsToFetch,
  storedPages
} from "../../domain/localSides.js"
import type { SyncKind } from "../../domain/model.js"
import { isProjectFile, type RawFile } from "../../domain/project.js"
import * as Repos from "../../services/repos/index.js"
import { type SpecialFile, specialName, specialsOf } from "../../services/state.js"
import { Workspace } from "../../services/Workspace.js"

/** The files local sync reads, with the prefix shown before their paths in messages. */
export interface DiskFiles {
  readonly raw: ReadonlyArray<RawFile>
  readonly prefix: string
  /** Files of the tree local sync does not treat (file sync carries them), sorted. */
  readonly unsynced: ReadonlyArray<string>
  /** Special files of the tree (a FIFO, a socket, a device), never opened and treated by neither sync, sorted. */
  readonly special: ReadonlyArray<SpecialFile>
}

const KIND_OF_FOLDER: Record<string, SyncKind> = {
  agents: "agents",
  skills: "skills",
  content: "content",
  "access-control": "acl"
}

/** Reads the item files of the chosen kinds (and the files beside their items). */
export const readDiskFiles = Effect.fn("LocalSync.readDisk")(function* (kinds: ReadonlyArray<SyncKind>) {
  const ws = yield* Workspace
  // A symbolic link is left to file sync: never read through as an item. A name that is not UTF-8 is refused only
  // where this reads (a chosen kind's item files), not in folders it leaves to file sync.
  const reads = (path: string, link: boolean) => {
    const kind = KIND_OF_FOLDER[path.slice(0, path.indexOf("/"))]
    return kind !== undefined && kinds.includes(kind) && !link && isProjectFile(path)
  }
  const all = yield* ws.listFiles(reads)
  const listed = all.filter((f) => reads(f.path, f.link !== undefined))
  const raw = yield* ws.readRawFiles(listed)
  const shown = nodePath.relative(process.cwd(), ws.root) || "."
  const files: DiskFiles = {
    raw,
    prefix: `${shown}/`,
    unsynced: all.filter((f) => f.link !== undefined || !isProjectFile(f.path)).map((f) => f.path),
    special: specialsOf(all)
  }
  return files
})

const emptyListed = { items: [], invalid: [] }

/**
 * Both sides of the chosen kinds. A content file whose bytes its row was last synced with is not parsed; rows
 * edited by hand (and, for a sync to disk, rows to be written) are fetched and rendered.
 */
export const readSides = Effect.fn("LocalSync.read")(function* (
  files: DiskFiles,
  kinds: ReadonlyArray<SyncKind>,
  toDisk: boolean
) {
  const has = (k: SyncKind) => kinds.includes(k)
  const agents = has("agents") ? yield* (yield* Repos.AgentsRepo).list() : emptyListed
  const skills = has("skills") ? yield* (yield* Repos.SkillsRepo).list() : emptyListed
  const rules = has("acl") ? yield* (yield* Repos.AccessRulesRepo).list() : emptyListed
  const contents = yield* Repos.ContentsRepo
  const meta = has("content") ? yield* contents.listMeta() : []
  const byKey = new Map(meta.map((m) => [metaKey(m), m]))
  const disk: DiskSide = diskSide(
    files.raw,
    files.prefix,
    (f) => {
      const m = byKey.get(f.key)
      return m !== undefined && isTrusted(m) && m.path === f.path && m.file_sha256 === f.sha
    },
    files.special.map((f) => ({ path: f.path, what: specialName(f.kind) }))
  )
  const need = rowsToFetch(meta, disk, toDisk)
  const fetched = need.length > 0 ? yield* contents.fetch(need) : emptyListed
  const withFiles = has("agents") || has("skills") || has("content")
  const itemFiles = yield* Repos.ItemFilesRepo
  const fileRows = withFiles ? yield* itemFiles.list() : []
  // Pages an earlier version stored as files beside items (MDX) are read as the items they now are.
  const pageRows = has("content") ? fileRows.filter(isStoredPage) : []
  const pages = pageRows.length > 0 ? storedPages(pageRows, yield* itemFiles.blobs(pageRows.map((r) => r.sha256))) : []
  const db: DbSide = {
    agents,
    skills,
    rules,
    contents: contentRows(meta, new Map(fetched.items.map((s) => [contentKey(s.item), s])), fetched.invalid),
    contentInvalid: fetched.invalid,
    sources: has("content") ? yield* contents.listSources() : [],
    attachments: fileRows.filter((r) => !isStoredPage(r)),
    storedPages: pages
  }
  return { disk, db }
})
