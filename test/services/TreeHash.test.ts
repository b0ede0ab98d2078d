import { createHash } from "node:crypto"
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { hashFile, hashTree } from "../../src/services/TreeHash.js"
import { tempDirs } from "../support/tree.js"

const tempDir = tempDirs("treehash")
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex")

describe("TreeHash", () => {
  it.effect("hashes small, empty, buffer-sized and large files (streamed) to the SHA-256 of their bytes", () =>
    Effect.gen(function* () {
      const root = tempDir("tree")
      mkdirSync(join(root, "a/b"), { recursive: true })
      const files: Record<string, Buffer> = {
        "a/empty": Buffer.alloc(0),
        "a/small.md": Buffer.from("hello\n"),
        // Exactly the read buffer's size, and one byte over: the short-read rule must still see the end.
        "a/b/one-mib": Buffer.alloc(1 << 20, 1),
        "a/b/one-mib-and-one": Buffer.alloc((1 << 20) + 1, 2),
        "a/b/large": Buffer.alloc((8 << 20) + 3, 3)
      }
      for (const [p, bytes] of Object.entries(files)) writeFileSync(join(root, p), bytes)
      const paths = Object.keys(files)
      const entries = yield* hashTree(root, paths)
      expect(entries.map((e) => [e.path, e.size, e.sha256])).toEqual(
        paths.map((p) => [p, files[p]!.length, sha(files[p]!)])
      )
      for (const p of paths) {
        expect(yield* hashFile(join(root, p), files[p]!.length)).toEqual({
          size: files[p]!.length,
          sha256: sha(files[p]!)
        })
        expect(yield* hashFile(join(root, p))).toEqual({
          size: files[p]!.length,
          sha256: sha(files[p]!)
        })
      }
    })
  )

  it.effect("a file that cannot be read is an Io error naming it", () =>
    Effect.gen(function* () {
      const root = tempDir("missing")
      const result = yield* Effect.either(hashTree(root, ["gone.md"]))
      expect(Either.isLeft(result) && [result.left._tag, result.left.path]).toEqual(["IoError", join(root, "gone.md")])
      const one = yield* Effect.either(hashFile(join(root, "gone.md"), 10))
      expect(Either.isLeft(one) && one.left.path).toBe(join(root, "gone.md"))
    })
  )
})
