// What a kept tree carries for the next push's checks, against what the push checked before over the whole tree: the
// checksum hashed on from the parent's hash states is `manifestChecksum` of the new tree, and the totals answer the caps
// as `treeOverCaps` does; over generated trees of several blocks of rows and generated pushes.
import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { CAPS, type Caps, treeOverCaps } from "../../src/domain/caps.js"
import { manifestChecksum } from "../../src/domain/hash.js"
import { type StoredEntry, storedPathOrder, toEntries } from "../../src/server/files/stored.js"
import { applyDelta } from "../../src/server/files/tree.js"
import {
  overCaps,
  SUM_ROWS,
  totalsAfterDelta,
  totalsOf,
  treeSums,
  unchangedRows
} from "../../src/server/files/treeSum.js"

const SHAS = ["a", "b", "c"].map((c) => c.repeat(64))
// Paths over a space a few blocks of rows wide, so that a push lands before, inside and after the kept states.
const SPACE = SUM_ROWS * 4
const pathOf = (i: number) => `d${Math.floor(i / 97)}/${i % 3 === 0 ? "é" : "f"}${i}`
const row = fc
  .tuple(fc.nat(SPACE), fc.nat(2000), fc.constantFrom(...SHAS), fc.constantFrom(0, 0, 0, 1, 2))
  .map(([i, size, sha, x]): StoredEntry => {
    const p = pathOf(i)
    return x === 0 ? [p, size, sha] : [p, size, sha, x === 1 ? 1 : 2]
  })
const tree = fc
  .array(row, { maxLength: SUM_ROWS * 3 })
  .map((rows) => [...new Map(rows.map((r) => [r[0], r])).values()].sort(storedPathOrder) as ReadonlyArray<StoredEntry>)
const push = fc.tuple(fc.array(row, { maxLength: 8 }), fc.array(fc.nat(SUM_ROWS * 3), { maxLength: 4 }))

/** Each kept hash state's digest: two lists of states are the same when these are. */
const digests = (states: ReturnType<typeof treeSums>["states"]) => states.map((s) => s.copy().digest("hex"))

describe("a tree's checksum and totals, carried from its parent's", () => {
  it("sum to manifestChecksum of the new tree, with the states a count from scratch keeps", () =>
    fc.assert(
      fc.property(tree, push, (base, [set, picks]) => {
        const deletes = [...new Set(picks.filter((i) => i < base.length).map((i) => (base[i] as StoredEntry)[0]))]
        const applied = applyDelta(base, set, deletes)
        if ("missing" in applied) throw new Error(`refused ${applied.missing}`)
        const parent = treeSums(base)
        expect(parent.checksum).toBe(manifestChecksum(toEntries(base)))
        const same = unchangedRows(applied.next, applied.delta)
        expect(applied.next.slice(0, same)).toEqual(base.slice(0, same))
        const carried = treeSums(applied.next, parent, same)
        const counted = treeSums(applied.next)
        expect(carried.checksum).toBe(manifestChecksum(toEntries(applied.next)))
        expect(counted.checksum).toBe(carried.checksum)
        expect(digests(carried.states)).toEqual(digests(counted.states))
        // A second push over the carried states sums as well.
        const again = applyDelta(applied.next, set.slice(0, 1), [])
        if ("missing" in again) throw new Error(`refused ${again.missing}`)
        expect(treeSums(again.next, carried, unchangedRows(again.next, again.delta)).checksum).toBe(
          manifestChecksum(toEntries(again.next))
        )
      }),
      { numRuns: 300 }
    ))

  it("answer the caps as treeOverCaps over the whole tree does, refusal and reason", () =>
    fc.assert(
      fc.property(
        tree,
        push,
        fc.record({
          maxEntries: fc.integer({ min: 1, max: SUM_ROWS * 3 }),
          maxFileBytes: fc.integer({ min: 1, max: 2000 }),
          maxPathBytes: fc.integer({ min: 5, max: 12 }),
          maxTotalBytes: fc.integer({ min: 1, max: 2_000_000 }),
          maxManifestBytes: fc.integer({ min: 1, max: 300_000 })
        }),
        (base, [set, picks], limits) => {
          const caps: Caps = { ...CAPS, ...limits }
          const deletes = [...new Set(picks.filter((i) => i < base.length).map((i) => (base[i] as StoredEntry)[0]))]
          const applied = applyDelta(base, set, deletes)
          if ("missing" in applied) throw new Error(`refused ${applied.missing}`)
          const whole = (rows: ReadonlyArray<StoredEntry>) =>
            treeOverCaps(
              rows.map(([p, size]) => [p, size] as const),
              caps
            )
          const totals = totalsAfterDelta(base, totalsOf(base), applied.delta)
          const counted = totalsOf(applied.next)
          expect([totals.bytes, totals.wire]).toEqual([counted.bytes, counted.wire])
          expect(totals.maxSize).toBeGreaterThanOrEqual(counted.maxSize)
          expect(totals.maxPathBytes).toBeGreaterThanOrEqual(counted.maxPathBytes)
          expect(overCaps(applied.next, totals, caps)).toBe(whole(applied.next))
          // Not knowing the parent's totals, they are counted: the same answer.
          expect(overCaps(applied.next, totalsAfterDelta(base, undefined, applied.delta), caps)).toBe(
            whole(applied.next)
          )
        }
      ),
      { numRuns: 500 }
    ))
})
