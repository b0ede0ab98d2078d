/**
 * Revisions' trees kept parsed in the server process, keyed by tenant and revision id. A revision never changes
 * once committed, so an entry is right on every replica whatever the others commit: which revision is the head is
 * always read from the database, only its tree comes from here. Bounded by the rows held, least recently used first.
 */
import type { StoredEntry } from "./stored.js"
import type { TreeSums, TreeTotals } from "./treeSum.js"

/** A revision's tree as its chain of deltas left it. */
export interface CachedTree {
  readonly entries: ReadonlyArray<StoredEntry>
  /** Deltas since the last whole manifest stored (0: this revision stores its whole manifest). */
  readonly depth: number
  /** Rows those deltas carry in all. */
  readonly chain: number
  /** Whether no path of the tree is both a file and a folder (checked at its commit, or when read). */
  readonly clean: boolean
  /** Its checksum's hash states and its totals against the caps, when counted (a push over it counts them else). */
  readonly sums?: TreeSums
  readonly totals?: TreeTotals
}

/** Rows held at most by default: about 100 MiB of parsed rows; consecutive revisions share most of theirs. */
export const CACHE_ROWS = 500_000

export interface ManifestCache {
  readonly get: (tenantId: string, revision: string) => CachedTree | undefined
  /** Keeps `tree` for a committed revision; a tree larger than the whole budget is not kept. */
  readonly set: (tenantId: string, revision: string, tree: CachedTree) => void
}

export const manifestCache = (maxRows = CACHE_ROWS): ManifestCache => {
  // A Map iterates in insertion order: a hit is moved to the end, the first key is the least recently used.
  const trees = new Map<string, CachedTree>()
  let rows = 0
  // The tenant id's length first: no tenant and revision pair spells another's key.
  const keyOf = (tenantId: string, revision: string) => `${tenantId.length}:${tenantId}${revision}`
  return {
    get: (tenantId, revision) => {
      const key = keyOf(tenantId, revision)
      const tree = trees.get(key)
      if (tree !== undefined) {
        trees.delete(key)
        trees.set(key, tree)
      }
      return tree
    },
    set: (tenantId, revision, tree) => {
      if (tree.entries.length > maxRows) return
      const key = keyOf(tenantId, revision)
      const old = trees.get(key)
      if (old !== undefined) {
        trees.delete(key)
        rows -= old.entries.length
      }
      trees.set(key, tree)
      rows += tree.entries.length
      for (const [k, t] of trees) {
        if (rows <= maxRows) break
        trees.delete(k)
        rows -= t.entries.length
      }
    }
  }
}
