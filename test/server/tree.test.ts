// A revision's tree from its parent's and a delta, against the plain model (a Map written path by path, then
// sorted), over generated trees and pushes; and the cache of trees, bounded and keyed by tenant and revision.
import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { fileAndFolder } from "../../src/domain/caps.js"
import { manifestCache } from "../../src/server/files/manifestCache.js"
import { type StoredEntry, storedPathOrder } from "../../src/server/files/stored.js"
import { applyDelta, fileAndFolderAfter, treeFileAndFolder } from "../../src/server/files/tree.js"

const SHAS = ["a", "b", "c"].map((c) => c.repeat(64))
// Few names over few levels, so that generated pushes hit the same paths, and files and folders clash.
const path = fc
  .array(fc.constantFrom("a", "b", "c", "d"), { minLength: 1, maxLength: 3 })
  .map((parts) => parts.join("/"))
const row = fc
  .tuple(path, fc.nat(3), fc.constantFrom(...SHAS), fc.constantFrom(0, 1, 2))
  .map(([p, size, sha, x]): StoredEntry => (x === 0 ? [p, size, sha] : [p, size, sha, x === 1 ? 1 : 2]))
const tree = fc
  .array(row)
  .map((rows) => [...new Map(rows.map((r) => [r[0], r])).values()].sort(storedPathOrder) as ReadonlyArray<StoredEntry>)

/** What the server did before deltas: the base in a Map, each delete (refused if absent), each set, then sorted. */
const model = (base: ReadonlyArray<StoredEntry>, set: ReadonlyArray<StoredEntry>, deletes: ReadonlyArray<string>) => {
  const m = new Map(base.map((e) => [e[0], e]))
  for (const p of deletes) if (!m.delete(p)) return { missing: p }
  for (const e of set) m.set(e[0], e)
  return { next: [...m.values()].sort(storedPathOrder) }
}

describe("a tree from its parent's and a delta", () => {
  it("is the tree the path-by-path model makes, refuses the same delete, and its delta rebuilds it", () =>
    fc.assert(
      fc.property(tree, fc.array(row, { maxLength: 6 }), fc.array(path, { maxLength: 4 }), (base, set, deletes) => {
        const got = applyDelta(base, set, deletes)
        const want = model(base, set, deletes)
        if ("missing" in want) {
          expect(got).toEqual({ missing: want.missing })
          return
        }
        if ("missing" in got) throw new Error(`refused ${got.missing}`)
        expect(got.next).toEqual(want.next)
        // The stored delta makes the same tree from the parent, and its counts are what `files revisions` shows.
        const again = applyDelta(base, got.delta.set, got.delta.delete)
        if ("missing" in again) throw new Error(`the stored delta deletes ${again.missing}, not in the parent`)
        expect(again.next).toEqual(want.next)
        const before = new Map(base.map((e) => [e[0], JSON.stringify(e)]))
        const after = new Map(want.next.map((e) => [e[0], JSON.stringify(e)]))
        expect(got.added).toBe([...after.keys()].filter((p) => !before.has(p)).length)
        expect(got.deleted).toBe([...before.keys()].filter((p) => !after.has(p)).length)
        expect(got.changed).toBe([...after].filter(([p, e]) => before.has(p) && before.get(p) !== e).length)
        expect(got.delta.set.length).toBe(got.added + got.changed)
        // Looking only at the rows written finds the clash the whole tree has, and names the same path.
        expect(fileAndFolderAfter(got.next, got.delta.set, fileAndFolder(base.map((e) => e[0])) === undefined)).toBe(
          fileAndFolder(want.next.map((e) => e[0]))
        )
      }),
      { numRuns: 3000 }
    ))

  it("over an empty tree (a first push), is the model's tree whether the rows come sorted, repeated or not", () =>
    fc.assert(
      fc.property(fc.array(row, { maxLength: 12 }), fc.boolean(), (rows, sort) => {
        const set = sort ? [...new Map(rows.map((r) => [r[0], r])).values()].sort(storedPathOrder) : rows
        const got = applyDelta([], set, [])
        const want = model([], set, [])
        if ("missing" in got || "missing" in want) throw new Error("nothing to delete, nothing missing")
        expect(got.next).toEqual(want.next)
        expect(got.delta).toEqual({ set: want.next, delete: [] })
        expect([got.added, got.changed, got.deleted]).toEqual([want.next.length, 0, 0])
      }),
      { numRuns: 2000 }
    ))

  it("finds the same file-and-folder path over a sorted tree as over a set of its paths", () => {
    // Names that sort between a file and its folder's rows (`a-b`, `a.b` come before `a/`).
    const name = fc.constantFrom("a", "b", "a-b", "a.b", "a b", "c")
    const paths = fc.array(
      fc.array(name, { minLength: 1, maxLength: 4 }).map((parts) => parts.join("/")),
      { maxLength: 14 }
    )
    fc.assert(
      fc.property(paths, (ps) => {
        const rows = [...new Set(ps)].sort().map((p): StoredEntry => [p, 1, SHAS[0] as string])
        expect(treeFileAndFolder(rows)).toBe(fileAndFolder(rows.map((r) => r[0])))
      }),
      { numRuns: 5000 }
    )
  })

  it("refuses a path deleted twice, as deleting one by one did", () => {
    expect(applyDelta([["a", 1, SHAS[0] as string]], [], ["a", "a"])).toEqual({ missing: "a" })
  })
})

describe("the cache of trees", () => {
  const t = (rows: number) => ({
    entries: Array.from({ length: rows }, (_, i): StoredEntry => [`f${i}`, 1, SHAS[0] as string]),
    depth: 0,
    chain: 0,
    clean: true
  })

  it("answers only for the tenant and revision a tree was kept under", () => {
    const cache = manifestCache(100)
    const one = t(1)
    cache.set("tenant-a", "r1", one)
    expect(cache.get("tenant-a", "r1")).toBe(one)
    expect(cache.get("tenant-b", "r1")).toBeUndefined()
    expect(cache.get("tenant-a", "r2")).toBeUndefined()
    // A key made of the two is not fooled by where one ends.
    cache.set("a", "b\0c", t(1))
    expect(cache.get("a\0b", "c")).toBeUndefined()
  })

  it("holds at most its rows, dropping the least recently used first, and never a tree larger than all", () => {
    const cache = manifestCache(10)
    cache.set("t", "r1", t(4))
    cache.set("t", "r2", t(4))
    expect(cache.get("t", "r1")).toBeDefined()
    cache.set("t", "r3", t(4))
    expect(cache.get("t", "r2")).toBeUndefined()
    expect(cache.get("t", "r1")).toBeDefined()
    expect(cache.get("t", "r3")).toBeDefined()
    cache.set("t", "big", t(11))
    expect(cache.get("t", "big")).toBeUndefined()
    expect(cache.get("t", "r3")).toBeDefined()
  })
})
