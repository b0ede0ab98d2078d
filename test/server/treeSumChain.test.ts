// Review: carried checksum over long chains of pushes, forks from the same parent, and block-boundary sizes.
import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { manifestChecksum } from "../../src/domain/hash.js"
import { type StoredEntry, storedPathOrder, toEntries } from "../../src/server/files/stored.js"
import { applyDelta } from "../../src/server/files/tree.js"
import { SUM_ROWS, type TreeSums, treeSums, unchangedRows } from "../../src/server/files/treeSum.js"

const SHAS = ["a", "b"].map((c) => c.repeat(64))
const SPACE = SUM_ROWS * 3
const pathOf = (i: number) => `p${String(i).padStart(5, "0")}`
const rowAt = (i: number, size: number, x: number): StoredEntry =>
  x === 0 ? [pathOf(i), size, SHAS[size % 2] as string] : [pathOf(i), size, SHAS[0] as string, x === 1 ? 1 : 2]
const blockTree = (n: number): ReadonlyArray<StoredEntry> => Array.from({ length: n }, (_, i) => rowAt(i * 2, 1, 0))
const op = fc.oneof(
  // a few sets (adds or changes) and deletes by index into the current tree
  fc.record({
    set: fc.array(fc.tuple(fc.nat(SPACE * 2), fc.nat(5), fc.constantFrom(0, 0, 1, 2)), { maxLength: 6 }),
    del: fc.array(fc.nat(SPACE), { maxLength: 6 }),
    readd: fc.boolean()
  }),
  fc.constant({ set: [] as Array<[number, number, number]>, del: [] as Array<number>, readd: false, all: true })
)

const step = (
  rows: ReadonlyArray<StoredEntry>,
  sums: TreeSums,
  o: { set: Array<[number, number, number]>; del: Array<number>; readd: boolean; all?: boolean }
) => {
  const deletes =
    o.all === true
      ? rows.map((r) => r[0])
      : [...new Set(o.del.filter((i) => i < rows.length).map((i) => (rows[i] as StoredEntry)[0]))]
  const set = o.set.map(([i, size, x]) => rowAt(i, size, x))
  // a path deleted and re-added in the same push
  if (o.readd && deletes[0] !== undefined) set.push([deletes[0], 99, SHAS[1] as string])
  const applied = applyDelta(rows, set, deletes)
  if ("missing" in applied) throw new Error(applied.missing)
  const next = treeSums(applied.next, sums, unchangedRows(applied.next, applied.delta))
  return { rows: applied.next, sums: next }
}

describe("review: carried checksum", () => {
  it("stays manifestChecksum over chains of 12 pushes, each over the carried states, from block-boundary sizes", () =>
    fc.assert(
      fc.property(
        fc.constantFrom(0, 1, SUM_ROWS - 1, SUM_ROWS, SUM_ROWS + 1, 2 * SUM_ROWS, 2 * SUM_ROWS + 1, 3 * SUM_ROWS),
        fc.array(op, { minLength: 1, maxLength: 12 }),
        (n, ops) => {
          let rows = blockTree(n)
          let sums = treeSums(rows)
          const history: Array<{ rows: ReadonlyArray<StoredEntry>; sums: TreeSums }> = [{ rows, sums }]
          for (const o of ops) {
            ;({ rows, sums } = step(rows, sums, o))
            expect(sums.checksum).toBe(manifestChecksum(toEntries(rows)))
            history.push({ rows, sums })
          }
          // every tree's kept states still hash on to its own checksum (no state mutated by a later push)
          for (const h of history) {
            expect(treeSums(h.rows, h.sums, h.rows.length).checksum).toBe(manifestChecksum(toEntries(h.rows)))
            expect(treeSums(h.rows, h.sums, 0).checksum).toBe(manifestChecksum(toEntries(h.rows)))
            const counted = treeSums(h.rows).states.map((s) => s.copy().digest("hex"))
            expect(h.sums.states.map((s) => s.copy().digest("hex"))).toEqual(counted)
          }
          expect([...rows].sort(storedPathOrder)).toEqual(rows)
        }
      ),
      { numRuns: 200 }
    ))

  it("forks from one parent do not disturb each other", () => {
    const base = blockTree(3 * SUM_ROWS)
    const parent = treeSums(base)
    // Spread rows, and each row next to a kept state's block boundary (where an off-by-one in the state taken shows).
    const places = [
      ...Array.from({ length: 40 }, (_, k) => (k * 37) % base.length),
      SUM_ROWS - 1,
      SUM_ROWS,
      2 * SUM_ROWS - 1
    ]
    for (const [k, at] of places.entries()) {
      const a = applyDelta(base, [[(base[at] as StoredEntry)[0], 1000 + k, SHAS[1] as string]], [])
      if ("missing" in a) throw new Error("x")
      const s = treeSums(a.next, parent, unchangedRows(a.next, a.delta))
      expect(s.checksum).toBe(manifestChecksum(toEntries(a.next)))
    }
    expect(treeSums(base, parent, base.length).checksum).toBe(manifestChecksum(toEntries(base)))
  })
})
