import { describe, expect, it } from "@effect/vitest"
import { Effect, FastCheck as fc } from "effect"
import { RemoteManifest } from "../../src/api/files.js"
import { fileAndFolder } from "../../src/domain/caps.js"
import { isMemberPath } from "../../src/domain/membership.js"
import type { FileEntry } from "../../src/domain/model.js"
import { checkRemote, unsafeAdded } from "../../src/programs/files/guards.js"

/** Paths inside and outside the membership, files and folders of one another, and names that sort beside a folder. */
const path = fc
  .tuple(
    fc.constantFrom("agents", "skills", "other", ".git"),
    fc.array(fc.constantFrom("a", "a-b", "a.md", "b", "\u00e9"), { minLength: 0, maxLength: 3 })
  )
  .map(([top, rest]) => [top, ...rest].join("/"))
const entry = (p: string): FileEntry => ({ path: p, size: 1, sha256: "0".repeat(64) })
const sorted = (paths: Iterable<string>) => [...new Set(paths)].sort((x, y) => (x < y ? -1 : 1)).map(entry)
/** What `checkRemote` asks of a whole tree. */
const unsafeWhole = (tree: ReadonlyArray<FileEntry>) =>
  tree.some((e) => !isMemberPath(e.path)) || fileAndFolder(tree.map((e) => e.path)) !== undefined

describe("the remote tree check, asked of the added paths only", () => {
  it("says what the check of the whole tree says, for every tree that passed it with paths added", () => {
    fc.assert(
      fc.property(fc.array(path, { maxLength: 12 }), fc.array(path, { maxLength: 4 }), (before, added) => {
        const checked = sorted(before)
        fc.pre(!unsafeWhole(checked))
        const tree = sorted([...before, ...added])
        expect(unsafeAdded(tree, added) !== undefined).toBe(unsafeWhole(tree))
      }),
      { numRuns: 3000 }
    )
  })

  it.effect("a vouched tree is refused for an added file below a file, a folder made a file, or a path outside", () =>
    Effect.gen(function* () {
      const head = (paths: Array<string>) =>
        new RemoteManifest(
          { tenant: "t", revision: "r", entries: sorted(paths), checksum: "0".repeat(64) },
          { disableValidation: true }
        )
      const url = "http://127.0.0.1:1/api/v1/sync"
      const refused = (paths: Array<string>, added?: Array<string>) =>
        Effect.map(Effect.either(checkRemote(head(paths), url, added)), (r) => r._tag === "Left")
      expect(yield* refused(["agents/a", "agents/a/b"], ["agents/a/b"])).toBe(true)
      expect(yield* refused(["agents/a", "agents/a-b", "agents/a/b"], ["agents/a"])).toBe(true)
      expect(yield* refused(["agents/a", ".git/config"], [".git/config"])).toBe(true)
      expect(yield* refused(["agents/a", "agents/a-b", "agents/a.md"], ["agents/a"])).toBe(false)
      // Vouched: a path not added is not asked (the tree passed the check with it).
      expect(yield* refused(["agents/a", ".git/config"], ["agents/a"])).toBe(false)
      expect(yield* refused(["agents/a", ".git/config"], [])).toBe(false)
      // Not vouched: every path is asked.
      expect(yield* refused(["agents/a", ".git/config"])).toBe(true)
    })
  )
})
