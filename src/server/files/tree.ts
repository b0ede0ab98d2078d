/**
 * A revision's tree made from its parent's and a push's delta, with the work of the checks and the stored delta
 * in proportion to the change: the parent's rows are merged once (they are sorted), never sorted or rebuilt.
 */
import { strictlySortedBy } from "../../domain/diff.js"
import { type StoredEntry, storedPathOrder } from "./stored.js"

/** What a revision stores instead of its whole manifest: the rows set and the paths deleted against its parent. */
export interface Delta {
  readonly set: ReadonlyArray<StoredEntry>
  readonly delete: ReadonlyArray<string>
}

/** A revision's tree and what it changed against its parent (as `files revisions` counts it). */
export interface Applied {
  readonly next: ReadonlyArray<StoredEntry>
  /** The change that makes `next` from the parent: only rows that differ, only paths that were there. */
  readonly delta: Delta
  readonly added: number
  readonly changed: number
  readonly deleted: number
}

/** The index of `path` in `rows` (sorted by path), or of where it would go (the first row after it); from `lo` on. */
export const lowerBound = (rows: ReadonlyArray<StoredEntry>, path: string, lo = 0): number => {
  let hi = rows.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    // mid < hi <= rows.length: the row is there.
    const row = rows[mid]
    if (row !== undefined && row[0] < path) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** The row of `path` in `rows` (sorted by path), or undefined. */
export const rowOf = (rows: ReadonlyArray<StoredEntry>, path: string): StoredEntry | undefined => {
  const at = rows[lowerBound(rows, path)]
  return at !== undefined && at[0] === path ? at : undefined
}

const sameRow = (a: StoredEntry, b: StoredEntry) => a[0] === b[0] && a[1] === b[1] && a[2] === b[2] && a[3] === b[3]

/**
 * The paths of `deletes` that are not in `base`, in their order (the push is refused for the first); otherwise
 * the tree `base` with `deletes` removed and then `set` written (the last row of a path wins), as one merge.
 */
export const applyDelta = (
  base: ReadonlyArray<StoredEntry>,
  set: ReadonlyArray<StoredEntry>,
  deletes: ReadonlyArray<string>
): { readonly missing: string } | Applied => {
  // A path deleted twice is refused at its second mention, as a tree deleting one by one would.
  const seen = new Set<string>()
  for (const p of deletes) {
    if (seen.has(p) || rowOf(base, p) === undefined) return { missing: p }
    seen.add(p)
  }
  // Over an empty tree (a first push) the rows as sent, when strictly sorted (as a client sends them), are the tree.
  if (base.length === 0 && strictlySortedBy(set, (e) => e[0])) {
    return { next: set, delta: { set, delete: [] }, added: set.length, changed: 0, deleted: 0 }
  }
  const written = new Map<string, StoredEntry>()
  for (const e of set) written.set(e[0], e)
  const sets = [...written.values()].sort(storedPathOrder)
  const gone = [...seen].filter((p) => !written.has(p)).sort()
  const changedRows: Array<StoredEntry> = []
  let added = 0
  let changed = 0
  // Its length known, the tree is written into an array of that length: pushed row by row, it grew by copies (a
  // 100,000-row tree took three times its memory, and this machine pays for fresh memory at its first touch).
  let length = base.length - gone.length
  for (const e of sets) if (rowOf(base, e[0]) === undefined) length++
  const next = new Array<StoredEntry>(length)
  let w = 0
  // The base's rows in order: `i` is the first not yet taken or left out; `g` the first path of `gone` not yet met.
  let i = 0
  let g = 0
  /** The base's rows from `i` up to `end`, but those deleted (each is a row of the base: met on the way, in order). */
  const copyTo = (end: number) => {
    while (i < end) {
      const path = gone[g]
      const cut = path === undefined ? end : Math.min(end, lowerBound(base, path, i))
      // A row of the base: `i < cut <= base.length`.
      for (; i < cut; i++) next[w++] = base[i] as StoredEntry
      if (cut < end) {
        // Left out, with any row of the same path after it (a tree is never stored so, but one read back is not trusted).
        while (i < end && base[i]?.[0] === path) i++
        g++
      }
    }
  }
  for (const e of sets) {
    copyTo(lowerBound(base, e[0], i))
    const b = base[i]
    const before = b !== undefined && b[0] === e[0] ? b : undefined
    if (before !== undefined) i++
    if (before === undefined) {
      added++
      changedRows.push(e)
      next[w++] = e
    } else if (sameRow(before, e)) {
      // Unchanged: the parent's row is kept (and shared with the parent's cached tree).
      next[w++] = before
    } else {
      changed++
      changedRows.push(e)
      next[w++] = e
    }
  }
  copyTo(base.length)
  // Written to its end, but for a base holding a path twice, which the count above took once.
  next.length = w
  return {
    next,
    delta: { set: changedRows, delete: gone },
    added,
    changed,
    deleted: gone.length
  }
}

/**
 * A path that is both a file and a folder of `next`, or undefined, as `fileAndFolder` over the whole tree answers.
 * When the parent's tree holds no such path (`baseClean`), a new one involves a row the push wrote, so only those
 * rows are looked at (each prefix of theirs, and whether a row lies under them); when one is found, or the parent's
 * tree is not known to be clean, the whole tree is checked, so that the answer names the same path as before. So is
 * it when the push wrote most of the tree (a first push): one pass over a set of its paths costs less than a few
 * searches of the sorted tree for each row.
 */
export const fileAndFolderAfter = (
  next: ReadonlyArray<StoredEntry>,
  written: ReadonlyArray<StoredEntry>,
  baseClean: boolean
): string | undefined => {
  if (baseClean && written.length * 4 < next.length && !written.some((e) => clashes(next, e[0]))) return undefined
  return treeFileAndFolder(next)
}

/**
 * `fileAndFolder` over a sorted tree's paths, the same answer: each path's prefixes in turn, shortest first, looked
 * up by a search of the tree, and only for a path whose folder differs from the one before it (the rows of a folder
 * come together, with the same prefixes), instead of a set of every path.
 */
export const treeFileAndFolder = (rows: ReadonlyArray<StoredEntry>): string | undefined => {
  let folder = ""
  for (const [p] of rows) {
    const end = p.lastIndexOf("/")
    if (end === -1 || (folder.length === end && p.startsWith(folder))) continue
    folder = p.slice(0, end)
    for (let i = p.indexOf("/"); i !== -1; i = p.indexOf("/", i + 1)) {
      if (rowOf(rows, p.slice(0, i)) !== undefined) return p.slice(0, i)
    }
  }
  return undefined
}

const clashes = (next: ReadonlyArray<StoredEntry>, path: string): boolean => {
  for (let i = path.indexOf("/"); i !== -1; i = path.indexOf("/", i + 1)) {
    if (rowOf(next, path.slice(0, i)) !== undefined) return true
  }
  const under = next[lowerBound(next, `${path}/`)]
  return under?.[0].startsWith(`${path}/`) === true
}

/** Deltas at most between a revision and the last one that stores its whole manifest. */
export const MAX_DEPTH = 50

/**
 * Whether a revision stores its whole manifest rather than its delta: the first of a tenant, or when reading it
 * back would otherwise apply more than `MAX_DEPTH` deltas, or deltas carrying more rows than half its tree.
 */
export const storesWhole = (base: { readonly depth: number; readonly chain: number } | undefined, applied: Applied) =>
  base === undefined ||
  base.depth >= MAX_DEPTH ||
  base.chain + applied.delta.set.length + applied.delta.delete.length > applied.next.length / 2
