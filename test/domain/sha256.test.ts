// The one-shot hash agrees with a Hash object's digest over every input: bytes of any value, text of any code point;
// and text fed as its UTF-8 bytes (`updateText`) hashes as the text itself, lone surrogates and all.
import { createHash } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { eachUtf8Chunk, sha256, updateText } from "../../src/domain/hash.js"

describe("sha256", () => {
  it("is the hex digest of the bytes, or of the text as UTF-8", () =>
    fc.assert(
      fc.property(
        fc.oneof(fc.uint8Array({ maxLength: 20_000 }), fc.string({ unit: "binary", maxLength: 300 })),
        (x) => {
          expect(sha256(x)).toBe(createHash("sha256").update(x).digest("hex"))
          expect(sha256(x)).toMatch(/^[0-9a-f]{64}$/)
        }
      ),
      { numRuns: 200 }
    ))
})

/** Text of any code point, lone surrogate halves included, some of it across the encoder's chunks of 16,384 units. */
const piece = fc.oneof(
  fc.string({ unit: "binary", maxLength: 300 }),
  fc.string({ unit: "grapheme-ascii", maxLength: 3000 }),
  fc.constantFrom("\uD83D", "\uDE00", "\u{1F600}", ""),
  fc
    .tuple(fc.integer({ min: 16_370, max: 16_390 }), fc.string({ unit: "binary", maxLength: 40 }), fc.nat(3))
    .map(([n, tail, k]) => `${"a".repeat(n)}${tail}${"\u{1F600}".repeat(k)}${"b".repeat(16_384 - (n % 16_384))}`)
)

describe("eachUtf8Chunk", () => {
  it("hands on the UTF-8 bytes of the pieces joined, as Buffer.from has them, pairs split between pieces too", () =>
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 6 }), (pieces) => {
        const chunks: Array<Buffer> = []
        // Copied: the chunk's buffer is written again for the next one.
        eachUtf8Chunk(pieces, (bytes) => void chunks.push(Buffer.from(bytes)))
        expect(Buffer.concat(chunks).equals(Buffer.from(pieces.join(""), "utf8"))).toBe(true)
        const digest = updateText(createHash("sha256"), pieces).digest("hex")
        expect(digest).toBe(createHash("sha256").update(pieces.join("")).digest("hex"))
      }),
      { numRuns: 300 }
    ))
})

describe("updateText", () => {
  it("digests as update(text) does, in pieces too", () =>
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.string({ unit: "binary", maxLength: 300 }),
            fc.string({ unit: "grapheme-ascii", maxLength: 3000 }),
            // Across the chunks it is encoded in (16,384 units), a surrogate pair or a lone half at the boundary.
            fc
              .tuple(fc.integer({ min: 16_370, max: 16_390 }), fc.string({ unit: "binary", maxLength: 40 }), fc.nat(3))
              .map(
                ([n, tail, k]) => `${"a".repeat(n)}${tail}${"\u{1F600}".repeat(k)}${"b".repeat(16_384 - (n % 16_384))}`
              )
          ),
          { maxLength: 4 }
        ),
        (pieces) => {
          const byText = createHash("sha256")
          const byBytes = createHash("sha256")
          for (const p of pieces) {
            byText.update(p)
            expect(updateText(byBytes, p)).toBe(byBytes)
          }
          expect(byBytes.digest("hex")).toBe(byText.digest("hex"))
        }
      ),
      { numRuns: 300 }
    ))
})
