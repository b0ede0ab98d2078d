// writeFileAtomic writes bytes as they are, whatever realm made their Uint8Array (a vm context, a test runner's
// sandbox), and a text in pieces as the UTF-8 of the pieces joined.
import * as fs from "node:fs"
import * as nodePath from "node:path"
import * as vm from "node:vm"
import { Effect, FastCheck as fc } from "effect"
import { describe, expect, it } from "vitest"
import { writeFileAtomic } from "../../src/services/WorkspaceWrite.js"
import { tempDirs } from "../support/tree.js"

const tempDir = tempDirs("write-file-atomic-bytes")

describe("writeFileAtomic", () => {
  it("writes a Uint8Array of another realm as its bytes", async () => {
    const file = nodePath.join(tempDir("realm"), "f.bin")
    // A Uint8Array made in another context: `instanceof Uint8Array` is false here, yet it is bytes.
    const bytes: Uint8Array = vm.runInNewContext("new Uint8Array([104, 105, 0, 255])")
    await Effect.runPromise(writeFileAtomic(file, bytes))
    expect([...fs.readFileSync(file)]).toEqual([104, 105, 0, 255])
  })

  it("writes pieces as the UTF-8 of their concatenation", async () => {
    const dir = tempDir("pieces")
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(fc.string({ unit: "binary", maxLength: 50 }), fc.constantFrom("\uD83D", "\uDE00", "")), {
          maxLength: 6
        }),
        async (pieces) => {
          const file = nodePath.join(dir, "t.txt")
          await Effect.runPromise(writeFileAtomic(file, pieces))
          expect(fs.readFileSync(file).equals(Buffer.from(pieces.join(""), "utf8"))).toBe(true)
        }
      ),
      { numRuns: 200 }
    )
  })
})
