// Review: a change at every row around the kept states' block boundaries, in trees whose length is at a boundary.
import { describe, expect, it } from "@effect/vitest"
import { manifestChecksum } from "../../src/domain/hash.js"
import { type StoredEntry, toEntries } from "../../src/server/files/stored.js"
import { applyDelta } from "../../src/server/files/tree.js"
import { SUM_ROWS, treeSums, unchangedRows } from "../../src/server/files/treeSum.js"

const SHA = "a".repeat(64)
// Even numbers: a path between two rows (odd) and before/after all of them exists.
const pathOf = (i: number) => `p${String(i).padStart(6, "0")}`
const treeOf = (n: number): ReadonlyArray<StoredEntry> =>
  Array.from({ length: n }, (_, i) => [pathOf(2 * i + 2), 1, SHA])

describe("review: carried checksum at block boundaries", () => {
  it("equals manifestChecksum for a change, an add before, a delete at each row next to a boundary", () => {
    for (const n of [0, 1, SUM_ROWS - 1, SUM_ROWS, SUM_ROWS + 1, 2 * SUM_ROWS, 2 * SUM_ROWS + 1]) {
      const base = treeOf(n)
      const parent = treeSums(base)
      const at = new Set([
        0,
        1,
        SUM_ROWS - 2,
        SUM_ROWS - 1,
        SUM_ROWS,
        SUM_ROWS + 1,
        2 * SUM_ROWS - 1,
        2 * SUM_ROWS,
        n - 1,
        n
      ])
      for (const k of [...at].filter((k) => k >= 0 && k <= n)) {
        const pushes: Array<[ReadonlyArray<StoredEntry>, ReadonlyArray<string>]> = [
          [[[pathOf(2 * k + 1), 7, SHA]], []], // added just before row k (after all rows when k = n)
          ...(k < n
            ? ([
                [[[pathOf(2 * k + 2), 9, SHA]], []], // row k changed
                [[], [pathOf(2 * k + 2)]], // row k deleted
                [[[pathOf(2 * k + 2), 1, SHA, 1]], []] // row k's mode changed
              ] as Array<[ReadonlyArray<StoredEntry>, ReadonlyArray<string>]>)
            : [])
        ]
        for (const [set, del] of pushes) {
          const applied = applyDelta(base, set, del)
          if ("missing" in applied) throw new Error(applied.missing)
          const got = treeSums(applied.next, parent, unchangedRows(applied.next, applied.delta)).checksum
          expect({ n, k, got }).toEqual({ n, k, got: manifestChecksum(toEntries(applied.next)) })
        }
      }
      // tree to empty
      const empty = applyDelta(
        base,
        [],
        base.map((r) => r[0])
      )
      if ("missing" in empty) throw new Error(empty.missing)
      expect(treeSums(empty.next, parent, unchangedRows(empty.next, empty.delta)).checksum).toBe(manifestChecksum([]))
    }
  })
})
