// The one-shot hash agrees with a Hash object's digest over every input: bytes of any value, text of any code point.
import { createHash } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { sha256 } from "../../src/domain/hash.js"

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
