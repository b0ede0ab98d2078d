/**
 * What a kept tree carries so that the next push over it checks only what the push changed: the hash states of its
 * manifest checksum every `SUM_ROWS` rows, and its totals against the caps.
 */
import * as crypto from "node:crypto"
import { type Caps, entryWireBytes, treeOverCaps } from "../../domain/caps.js"
import { checksumLine } from "../../domain/hash.js"
import { LINK, type StoredEntry } from "./stored.js"
import { type Delta, lowerBound, rowOf } from "./tree.js"

/** Rows between two kept hash states. */
export const SUM_ROWS = 512

/**
 * A tree's manifest checksum (`manifestChecksum` of its rows, which are sorted by path) and the hash states on the way:
 * `states[k]` has hashed the lines of the first `k * SUM_ROWS` rows. A state is only ever copied, never updated.
 */
export interface TreeSums {
  readonly checksum: string
  readonly states: ReadonlyArray<crypto.Hash>
}

/** A row's line of the manifest checksum: `checksumLine` of the row's entry, as `manifestChecksum` writes it. */
const line = (e: StoredEntry): string =>
  checksumLine(e[0], e[1], e[2], e[3] === LINK ? "link" : e[3] === 1 ? "executable" : "file")

/**
 * The checksum of `rows` (sorted by path), and its states. With `base`, the states of a tree whose first `same` rows are
 * those of `rows`, hashing starts from the last of its states within them: the work is that of the rows from there on.
 */
export const treeSums = (rows: ReadonlyArray<StoredEntry>, base?: TreeSums, same = 0): TreeSums => {
  const start = base === undefined ? 0 : Math.min(Math.floor(same / SUM_ROWS), base.states.length - 1)
  const from = base?.states[start]
  const states = from === undefined ? [] : (base?.states.slice(0, start + 1) ?? [])
  const hash = from === undefined ? crypto.createHash("sha256") : from.copy()
  if (from === undefined) states.push(hash.copy())
  const first = from === undefined ? 0 : start * SUM_ROWS
  // The lines are fed a block at a time: one update per line costs more than the hashing itself.
  let batch = ""
  for (let i = first; i < rows.length; i++) {
    if (i > first && i % SUM_ROWS === 0) {
      hash.update(batch)
      batch = ""
      states.push(hash.copy())
    }
    batch += line(rows[i] as StoredEntry) // a row: `i < rows.length`
  }
  return { checksum: hash.update(batch).digest("hex"), states }
}

/** How many rows at the start of `next` are its parent's, at the same places: those before the first path `delta` names. */
export const unchangedRows = (next: ReadonlyArray<StoredEntry>, delta: Delta): number => {
  const set = delta.set[0]?.[0]
  const deleted = delta.delete[0]
  const first = set === undefined || (deleted !== undefined && deleted < set) ? deleted : set
  return first === undefined ? next.length : lowerBound(next, first)
}

/** A tree's totals against the caps: exact sums, and bounds on its largest row (at least its largest). */
export interface TreeTotals {
  readonly bytes: number
  /** The manifest's size on the wire as `treeOverCaps` counts it, but its fixed part. */
  readonly wire: number
  readonly maxSize: number
  readonly maxPathBytes: number
}

const NONE: TreeTotals = { bytes: 0, wire: 0, maxSize: 0, maxPathBytes: 0 }

/** `base`'s totals with rows taken out (`removed`, each a row of it) and rows put in (`added`). */
export const totalsAfter = (
  base: TreeTotals,
  removed: Iterable<StoredEntry>,
  added: Iterable<StoredEntry>
): TreeTotals => {
  let { bytes, wire, maxSize, maxPathBytes } = base
  for (const [path, size] of removed) {
    bytes -= size
    wire -= entryWireBytes(path, size)
  }
  for (const [path, size] of added) {
    bytes += size
    wire += entryWireBytes(path, size)
    if (size > maxSize) maxSize = size
    const pathBytes = Buffer.byteLength(path)
    if (pathBytes > maxPathBytes) maxPathBytes = pathBytes
  }
  return { bytes, wire, maxSize, maxPathBytes }
}

/**
 * The totals of the tree `delta` makes from `base` (whose totals are `totals`, counted here when not known): the rows
 * it changed or deleted taken out, the rows it set put in.
 */
export const totalsAfterDelta = (
  base: ReadonlyArray<StoredEntry>,
  totals: TreeTotals | undefined,
  delta: Delta
): TreeTotals => {
  const removed: Array<StoredEntry> = []
  for (const path of [...delta.set.map((e) => e[0]), ...delta.delete]) {
    const before = rowOf(base, path)
    if (before !== undefined) removed.push(before)
  }
  return totalsAfter(totals ?? totalsOf(base), removed, delta.set)
}

/** A tree's totals, counted over its rows. */
export const totalsOf = (rows: ReadonlyArray<StoredEntry>): TreeTotals => totalsAfter(NONE, [], rows)

/**
 * `treeOverCaps` of `rows`, whose totals are `totals`: undefined at once when the totals are within every cap, else
 * what `treeOverCaps` answers over the rows (a refusal is rare, and names what a walk of the rows finds first).
 */
export const overCaps = (rows: ReadonlyArray<StoredEntry>, totals: TreeTotals, caps: Caps): string | undefined =>
  rows.length <= caps.maxEntries &&
  totals.maxSize <= caps.maxFileBytes &&
  totals.maxPathBytes <= caps.maxPathBytes &&
  totals.bytes <= caps.maxTotalBytes &&
  200 + totals.wire <= caps.maxManifestBytes
    ? undefined
    : treeOverCaps(
        rows.map(([path, size]) => [path, size] as const),
        caps
      )
