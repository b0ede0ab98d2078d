import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { byPath } from "../../../src/domain/hash.js"
import type { FileEntry } from "../../../src/domain/model.js"
import { resultingTree } from "../../../src/stages/files/upload.js"

const path = fc
  .array(fc.constantFrom("a", "a-b", "b", "\u00e9", "\ud835\udcb3"), { minLength: 1, maxLength: 3 })
  .map((s) => `agents/${s.join("/")}`)
const side = (hash: string) =>
  fc
    .uniqueArray(path, { maxLength: 15 })
    .map((paths): Array<FileEntry> => paths.map((p) => ({ path: p, size: 1, sha256: hash.repeat(64) })))

/** The tree as a map of the remote tree, less the deletions, with the set put in, sorted by path. */
const reference = (remote: ReadonlyArray<FileEntry>, set: ReadonlyArray<FileEntry>, deleted: ReadonlyArray<string>) => {
  const tree = new Map(remote.map((e) => [e.path, e]))
  for (const p of deleted) tree.delete(p)
  for (const e of set) tree.set(e.path, e)
  return [...tree.values()].sort(byPath)
}

describe("the tree a push makes", () => {
  it("is the remote tree less the deletions with the set put in, sorted; both sides sorted or not", () => {
    fc.assert(
      fc.property(
        side("a"),
        side("b"),
        fc.array(path, { maxLength: 6 }),
        fc.boolean(),
        (remote, set, deleted, sort) => {
          const r = sort ? [...remote].sort(byPath) : remote
          const s = sort ? [...set].sort(byPath) : set
          expect(resultingTree(r, s, deleted)).toEqual(reference(remote, set, deleted))
        }
      ),
      { numRuns: 2000 }
    )
  })
})
