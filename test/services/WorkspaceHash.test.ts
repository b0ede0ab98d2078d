import { createHash } from "node:crypto"
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { make } from "../../src/services/Workspace.js"
import { tempDirs } from "../support/tree.js"

const tempDir = tempDirs("treehash")
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex")

describe("Workspace.hashFiles", () => {
  it.effect("hashes small, empty, buffer-sized and large files (streamed) to the SHA-256 of their bytes", () =>
    Effect.gen(function* () {
      const root = tempDir("tree")
      mkdirSync(join(root, "a/b"), { recursive: true })
      const files = [
        ["a/empty", Buffer.alloc(0)],
        ["a/small.md", Buffer.from("hello\n")],
        // Exactly the read buffer's size, and one byte over: the short-read rule must still see the end.
        ["a/b/one-mib", Buffer.alloc(1 << 20, 1)],
        ["a/b/one-mib-and-one", Buffer.alloc((1 << 20) + 1, 2)],
        ["a/b/large", Buffer.alloc((8 << 20) + 3, 3)]
      ] as const
      for (const [p, bytes] of files) writeFileSync(join(root, p), bytes)
      const expected = files.map(([p, bytes]) => [p, bytes.length, sha(bytes)])
      const workspace = make(root)
      const counted: Array<number> = []
      // With the sizes as listed, and without (a stat each).
      const listed = yield* workspace.hashFiles(
        files.map(([path, bytes]) => ({ path, size: bytes.length })),
        (n) => counted.push(n)
      )
      const unlisted = yield* workspace.hashFiles(files.map(([path]) => ({ path })))
      expect(listed.map((e) => [e.path, e.size, e.sha256])).toEqual(expected)
      expect(unlisted.map((e) => [e.path, e.size, e.sha256])).toEqual(expected)
      expect(counted).toEqual([files.length])
    })
  )

  it.effect("hashes in batches, in the order given, and tells the progress after each", () =>
    Effect.gen(function* () {
      const root = tempDir("batches")
      const paths = Array.from({ length: 300 }, (_, i) => `f${299 - i}.md`)
      for (const p of paths) writeFileSync(join(root, p), p)
      const counted: Array<number> = []
      const entries = yield* make(root).hashFiles(
        paths.map((path) => ({ path })),
        (n) => counted.push(n)
      )
      expect(entries.map((e) => [e.path, e.sha256])).toEqual(paths.map((p) => [p, sha(Buffer.from(p))]))
      expect(counted).toEqual([128, 128, 44])
    })
  )

  it.effect("a file that cannot be read, or a path outside the tree, is an IoError naming it", () =>
    Effect.gen(function* () {
      const root = tempDir("missing")
      const workspace = make(root)
      const gone = yield* Effect.flip(workspace.hashFiles([{ path: "gone.md", size: 10 }]))
      expect([gone._tag, gone.path, gone.reason]).toEqual([
        "IoError",
        join(root, "gone.md"),
        expect.stringMatching(/^cannot hash/)
      ])
      const large = yield* Effect.flip(workspace.hashFiles([{ path: "gone.bin", size: 9 << 20 }]))
      expect(large.path).toBe(join(root, "gone.bin"))
      const outside = yield* Effect.flip(workspace.hashFiles([{ path: "../outside.md" }]))
      expect([outside.path, outside.reason]).toEqual(["../outside.md", "path escapes the services tree"])
    })
  )
})
