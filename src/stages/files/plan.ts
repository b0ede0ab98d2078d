/** The file-sync plan: local manifest vs the remote head, two-way for display and three-way (with the recorded base) for action. */
import { Effect, Schema } from "effect"
import { FilesDiffCalculator, strictlySortedBy } from "../../domain/diff.js"
import type { Text } from "../../domain/hash.js"
import {
  type DiffCounts,
  type DiffStatus,
  type FileEntry,
  type FilesDiffResult,
  fileVersion
} from "../../domain/model.js"
import type { IoError } from "../../errors.js"
import { stateOf } from "../../services/FileState.js"
import { BASE_FILE } from "../../services/state.js"

/** Local (source) against remote (target): Added is only local, Removed only remote. */
export const diffFiles = (local: ReadonlyArray<FileEntry>, remote: ReadonlyArray<FileEntry>): FilesDiffResult =>
  FilesDiffCalculator.diff(local, remote)

/**
 * The last state both sides agreed on, per path: its `fileVersion` (the SHA-256, `+x` after it when executable;
 * a base recorded before modes travelled holds bare hashes, which read as plain files); recorded after each push
 * and pull.
 */
export interface SyncBase {
  readonly revision: string | null
  readonly files: ReadonlyMap<string, string>
}

export { BASE_FILE } from "../../services/state.js"

/** path → fileVersion (version 1: one JSON object keyed by path, as releases before version 2 wrote it). */
const BaseFiles = Schema.declare(
  (u: unknown): u is Readonly<Record<string, string>> =>
    typeof u === "object" && u !== null && !Array.isArray(u) && Object.values(u).every((v) => typeof v === "string"),
  { identifier: "BaseFiles" }
)
/** A list of strings, checked by one predicate (a base has an entry per file and is read on every run). */
const Strings = Schema.declare(
  (u: unknown): u is ReadonlyArray<string> => Array.isArray(u) && u.every((v) => typeof v === "string"),
  { identifier: "Strings" }
)
const BaseHead = {
  /** The tenant the base was agreed with: another tenant starts from no base. */
  tenant: Schema.String,
  revision: Schema.NullOr(Schema.String)
}
/**
 * Version 2: the paths and their versions as two lists, index for index. JSON.parse and JSON.stringify handle two
 * arrays of strings several times faster than an object with a key per file (10,000 files: read 30 ms instead
 * of 70, written in 2 ms instead of 50), and the base is read and written on every run that changes something.
 */
const BaseFile = Schema.Union(
  Schema.Struct({ version: Schema.Literal(2), ...BaseHead, paths: Strings, versions: Strings }),
  Schema.Struct({ version: Schema.Literal(1), ...BaseHead, files: BaseFiles })
)

const NO_BASE: SyncBase = { revision: null, files: new Map() }

/** The recorded base with this tenant, or an empty one before the first sync with it (or when it does not read). */
export const readBase = Effect.fn("diff.readBase")(function* (projectRoot: string, tenant: string) {
  const text = yield* (yield* stateOf(projectRoot)).read(BASE_FILE)
  const decoded = text === undefined ? undefined : Schema.decodeUnknownOption(Schema.parseJson(BaseFile))(text)
  if (decoded === undefined || decoded._tag === "None" || decoded.value.tenant !== tenant) return NO_BASE
  const value = decoded.value
  if (value.version === 1) return { revision: value.revision, files: new Map(Object.entries(value.files)) } as SyncBase
  if (value.paths.length !== value.versions.length) return NO_BASE
  // In path order, as every run writes it: read as the lists themselves, without a Map of 10,000 inserts (9-40 ms
  // of a push's CPU in a fresh process, against 1-5 for the order's check). Any other order, as a Map.
  if (strictlySortedBy(value.paths, (p) => p))
    return { revision: value.revision, files: new SortedVersions(value.paths, value.versions) } satisfies SyncBase
  const files = new Map<string, string>()
  value.paths.forEach((path, i) => {
    const version = value.versions[i]
    if (version !== undefined) files.set(path, version)
  })
  return { revision: value.revision, files } as SyncBase
})

/** Whether two bases record the same state (a no-change run then leaves the file alone). */
export const sameBase = (a: SyncBase, b: SyncBase): boolean => {
  if (a.revision !== b.revision || a.files.size !== b.files.size) return false
  for (const [p, sha] of a.files) if (b.files.get(p) !== sha) return false
  return true
}

/**
 * The base's text (version 2) made before its revision is known, finished once it is: a push has the lists'
 * JSON while it waits for the server's answer. In pieces, never concatenated (see `Text`): each list's MB of JSON
 * is written as JSON.stringify made it.
 */
export const baseTextFor = (
  tenant: string,
  files: ReadonlyMap<string, string>
): ((revision: string | null) => ReadonlyArray<string>) => {
  const open = `{"version":2,"tenant":${JSON.stringify(tenant)},"revision":`
  const close = [
    ',"paths":',
    JSON.stringify([...files.keys()]),
    ',"versions":',
    JSON.stringify([...files.values()]),
    "}"
  ]
  return (revision) => [open, JSON.stringify(revision), ...close]
}

/** Records a base's text as `baseTextFor` makes it, atomically. */
export const writeBaseText = (projectRoot: string, text: Text): Effect.Effect<void, IoError> =>
  Effect.flatMap(stateOf(projectRoot), (state) => state.write(BASE_FILE, text))

/** Records the base (version 2), atomically. */
export const writeBase = (projectRoot: string, tenant: string, base: SyncBase): Effect.Effect<void, IoError> =>
  writeBaseText(projectRoot, baseTextFor(tenant, base.files)(base.revision))

/** What a run does with one path. */
export type FileAction = "upload" | "delete-remote" | "write" | "delete-local" | "skip" | "conflict" | "none"

export interface PlannedFile {
  readonly path: string
  /** Two-way status, from the side synced from (local on push and diff, remote on pull). */
  readonly status: DiffStatus
  readonly action: FileAction
  /** Why a changed path is skipped or in conflict. */
  readonly note?: string
  readonly local?: FileEntry
  readonly remote?: FileEntry
}

export interface FilePlan {
  readonly direction: "push" | "pull"
  readonly items: ReadonlyArray<PlannedFile>
  readonly counts: FilesDiffResult["counts"]
  readonly conflicts: ReadonlyArray<string>
  /** The base to record once the plan has been carried out. */
  readonly nextBase: (revision: string | null) => SyncBase
}

export interface PlanOptions {
  readonly delete: boolean
  /** Take this side's version where both sides changed. */
  readonly force: boolean
}

/** Whether each path of `entries` sorts after the one before it (manifests and listings come so: by UTF-16 code units). */
export const strictlySorted = (entries: ReadonlyArray<FileEntry>): boolean => strictlySortedBy(entries, (e) => e.path)

/** One path of a two-way diff, source against target, as `visit` is handed it. */
type Visit = (key: string, status: DiffStatus, source: FileEntry | undefined, target: FileEntry | undefined) => void

/**
 * Visits every path of `source` and `target` in path order with its two-way status, as `diffFiles` would list
 * it, and counts the statuses. Both sides strictly sorted (the usual case) are walked side by side, with no map,
 * sort or item per path; anything else goes through `diffFiles`.
 */
export const visitDiff = (
  source: ReadonlyArray<FileEntry>,
  target: ReadonlyArray<FileEntry>,
  visit: Visit
): DiffCounts => {
  if (!strictlySorted(source) || !strictlySorted(target)) {
    const diff = diffFiles(source, target)
    for (const i of diff.items) visit(i.key, i.status, i.source, i.target)
    return diff.counts
  }
  let added = 0
  let modified = 0
  let removed = 0
  let unchanged = 0
  let i = 0
  let j = 0
  for (;;) {
    // Past its end a side reads undefined.
    const s = source[i]
    const t = target[j]
    if (s !== undefined && (t === undefined || s.path < t.path)) {
      added++
      i++
      visit(s.path, "Added", s, undefined)
    } else if (t !== undefined && (s === undefined || t.path < s.path)) {
      removed++
      j++
      visit(t.path, "Removed", undefined, t)
    } else if (s !== undefined && t !== undefined) {
      i++
      j++
      if (fileVersion(s) === fileVersion(t)) {
        unchanged++
        visit(s.path, "Unchanged", s, t)
      } else {
        modified++
        visit(s.path, "Modified", s, t)
      }
    } else break
  }
  return { added, modified, removed, unchanged }
}

/** A planned item, built field by field (an absent side or note is no field). */
const plannedFile = (
  path: string,
  status: DiffStatus,
  action: FileAction,
  note: string | undefined,
  l: FileEntry | undefined,
  r: FileEntry | undefined
): PlannedFile => {
  const planned: { -readonly [K in keyof PlannedFile]: PlannedFile[K] } = { path, status, action }
  if (note !== undefined) planned.note = note
  if (l !== undefined) planned.local = l
  if (r !== undefined) planned.remote = r
  return planned
}

/**
 * Three-way plan: a path changed on one side only since the base goes that way; changed on both is a
 * Conflict unless forced. Deletions travel only with `delete`. Pure.
 */
export const planFiles = (
  direction: "push" | "pull",
  local: ReadonlyArray<FileEntry>,
  remote: ReadonlyArray<FileEntry>,
  base: SyncBase,
  options: PlanOptions
): FilePlan => {
  // Statuses read from the side being synced from: on a pull, Added is a file the remote has and we lack.
  const items: Array<PlannedFile> = []
  const conflicts: Array<string> = []
  const agreed = new Map<string, string>()
  const visit: Visit = (key, status, source, target) => {
    const l = direction === "push" ? source : target
    const r = direction === "push" ? target : source
    // Most files of a tree: an item and no closure (this runs for every file).
    if (status === "Unchanged" && l !== undefined) {
      agreed.set(key, fileVersion(l))
      items.push(plannedFile(key, status, "none", undefined, l, r))
      return
    }
    const common = (p: { readonly action: FileAction; readonly note?: string }): PlannedFile =>
      plannedFile(key, status, p.action, p.note, l, r)
    const b = base.files.get(key)
    // A change of content or of the executable bit alike (a chmod is a change, as in git).
    const localChanged = (l === undefined ? undefined : fileVersion(l)) !== b
    const remoteChanged = (r === undefined ? undefined : fileVersion(r)) !== b
    const mine = direction === "push" ? localChanged : remoteChanged
    const theirs = direction === "push" ? remoteChanged : localChanged
    const keep = () => {
      if (b !== undefined) agreed.set(key, b)
    }
    if (mine && theirs && !options.force) {
      conflicts.push(key)
      keep()
      items.push(
        common({
          action: "conflict",
          note: "changed on both sides since the last sync; --force takes this side's version"
        })
      )
      return
    }
    if (!mine) {
      keep()
      items.push(
        common({
          action: "skip",
          note: direction === "push" ? "changed remotely: pull it" : "changed locally: push it"
        })
      )
      return
    }
    const from = direction === "push" ? l : r
    if (from === undefined) {
      if (!options.delete) {
        keep()
        items.push(
          common({
            action: "skip",
            note: `deleted ${direction === "push" ? "locally" : "remotely"}; --delete carries deletions`
          })
        )
        return
      }
      items.push(common({ action: direction === "push" ? "delete-remote" : "delete-local" }))
      return
    }
    agreed.set(key, fileVersion(from))
    items.push(common({ action: direction === "push" ? "upload" : "write" }))
  }
  const counts = direction === "push" ? visitDiff(local, remote, visit) : visitDiff(remote, local, visit)
  planShapeChanges(direction, items, direction === "push" ? remote : local, base, options, conflicts, agreed)
  return {
    direction,
    items,
    counts,
    conflicts,
    nextBase: (revision) => ({ revision, files: agreed })
  }
}

/**
 * A file that became a folder, or a folder that became a file: a path created on the side being written
 * whose parent is a file there, or which is a folder there. What stands in the way is deleted in the same run
 * (even without `delete`, since the creation needs it; counted by the delete guard like any deletion) when
 * that side has not changed it since the base; otherwise both are a conflict unless forced. Mutates the plan.
 */
const planShapeChanges = (
  direction: "push" | "pull",
  items: Array<PlannedFile>,
  destination: ReadonlyArray<FileEntry>,
  base: SyncBase,
  options: PlanOptions,
  conflicts: Array<string>,
  agreed: Map<string, string>
) => {
  // Only the destination's entries can stand in the way, so an empty destination list (a first upload, a pull into
  // an empty folder; ignored paths and not-carried links are never in it) has nothing to search: building the
  // lookups below for 100,000 created paths cost about a third of the plan.
  if (destination.length === 0) return
  const create = direction === "push" ? "upload" : "write"
  const remove: FileAction = direction === "push" ? "delete-remote" : "delete-local"
  // Created: written to a side that has no such path (each item holds the entry of each side that has it).
  const created = items.filter(
    (i) => i.action === create && (direction === "push" ? i.remote === undefined : i.local === undefined)
  )
  if (created.length === 0) return
  const there = new Map(destination.map((e) => [e.path, e]))
  // Folders of the destination side, each with the files beneath it.
  const under = new Map<string, Array<FileEntry>>()
  for (const e of destination) {
    for (let i = e.path.indexOf("/"); i !== -1; i = e.path.indexOf("/", i + 1)) {
      const dir = e.path.slice(0, i)
      const list = under.get(dir)
      if (list === undefined) under.set(dir, [e])
      else list.push(e)
    }
  }
  // Made at the first shape change found, which most plans have none of.
  let index: Map<string, number> | undefined
  /** Replaces the planned item at `path` by what `change` makes of it (undefined: left as it is). */
  const update = (path: string, change: (item: PlannedFile) => PlannedFile | undefined) => {
    index ??= new Map(items.map((item, i) => [item.path, i]))
    const at = index.get(path)
    const item = at === undefined ? undefined : items[at]
    const changed = item === undefined ? undefined : change(item)
    if (at !== undefined && changed !== undefined) items[at] = changed
    return changed !== undefined
  }
  const side = direction === "push" ? "remotely" : "here"
  for (const c of created) {
    const blocking: Array<FileEntry> = [...(under.get(c.path) ?? [])]
    for (let i = c.path.indexOf("/"); i !== -1; i = c.path.indexOf("/", i + 1)) {
      const file = there.get(c.path.slice(0, i))
      if (file !== undefined) blocking.push(file)
    }
    if (blocking.length === 0) continue
    const note = (q: string) =>
      q.startsWith(`${c.path}/`)
        ? `a folder ${side}, replaced by the file ${c.path}`
        : `a file ${side}, replaced by the folder holding ${c.path}`
    const edited = blocking
      .filter((e) => !options.force && fileVersion(e) !== base.files.get(e.path))
      .map((e) => e.path)
    if (edited.length > 0) {
      // Changed on the side being written since the base: replacing it would lose that change.
      for (const path of [c.path, ...edited]) {
        const marked = update(path, (item) =>
          item.action === "conflict"
            ? undefined
            : {
                ...item,
                action: "conflict",
                note: `${path === c.path ? `needs ${edited[0]} gone, which` : "this file"} changed ${side} since the last sync; --force replaces it`
              }
        )
        if (!marked) continue
        conflicts.push(path)
        const b = base.files.get(path)
        if (b === undefined) agreed.delete(path)
        else agreed.set(path, b)
      }
      continue
    }
    for (const { path } of blocking) {
      const removed = update(path, (item) =>
        item.action === remove ? undefined : { ...item, action: remove, note: note(path) }
      )
      if (removed) agreed.delete(path)
    }
  }
}

export const actionsOf = (plan: FilePlan, action: FileAction) => plan.items.filter((i) => i.action === action)

/** The entries of one side of planned items (an upload's local file, a write's remote one): the items that have it. */
export const entriesOf = (items: ReadonlyArray<PlannedFile>, side: "local" | "remote"): Array<FileEntry> =>
  items.flatMap((i) => {
    const entry = i[side]
    return entry === undefined ? [] : [entry]
  })

/**
 * Whether a planned write changes only the executable bit: the same bytes on both sides (neither a link). Such a
 * file is not downloaded: its mode is changed in place.
 */
export const modeOnly = (i: PlannedFile): boolean =>
  i.local !== undefined &&
  i.remote !== undefined &&
  i.local.link !== true &&
  i.remote.link !== true &&
  i.local.sha256 === i.remote.sha256 &&
  i.local.size === i.remote.size

/**
 * A base's files as two lists in path order, paths strictly increasing (a version 2 base as read, when its paths
 * are: as every run writes them; the delta's next base, the unchanged files and the planned paths merged), read as a
 * map: what a Map of the 10,000 paths would answer, without the 10,000
 * inserts (a fifth of a one-file push's program time before, with its garbage); `baseTextFor` spreads the lists.
 */
export class SortedVersions implements ReadonlyMap<string, string> {
  constructor(
    private readonly paths: ReadonlyArray<string>,
    private readonly versions: ReadonlyArray<string>
  ) {}
  get size(): number {
    return this.paths.length
  }
  /** The index of `path`, or -1 (binary search: the paths are strictly increasing). */
  private indexOf(path: string): number {
    let lo = 0
    let hi = this.paths.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      const at = this.paths[mid] ?? ""
      if (at === path) return mid
      if (at < path) lo = mid + 1
      else hi = mid - 1
    }
    return -1
  }
  get(path: string): string | undefined {
    const i = this.indexOf(path)
    return i < 0 ? undefined : this.versions[i]
  }
  has(path: string): boolean {
    return this.indexOf(path) >= 0
  }
  forEach(f: (version: string, path: string, map: ReadonlyMap<string, string>) => void, thisArg?: unknown): void {
    for (let i = 0; i < this.paths.length; i++) f.call(thisArg, this.versions[i] ?? "", this.paths[i] ?? "", this)
  }
  *entries(): MapIterator<[string, string]> {
    for (let i = 0; i < this.paths.length; i++) yield [this.paths[i] ?? "", this.versions[i] ?? ""]
  }
  // The lists' own iterators: `baseTextFor` spreads both, and a generator's steps cost several times an array's.
  keys(): MapIterator<string> {
    return this.paths[Symbol.iterator]()
  }
  values(): MapIterator<string> {
    return this.versions[Symbol.iterator]()
  }
  [Symbol.iterator](): MapIterator<[string, string]> {
    return this.entries()
  }
}
