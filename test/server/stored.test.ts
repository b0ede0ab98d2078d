// Stored manifest rows read back from the database: the plain checks of `decodeStoredRows` accept what the `StoredRow`
// schema decodes and refuse what it refuses, over generated rows, well formed and damaged field by field.
import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc, Schema } from "effect"
import { decodeStoredRows, StoredRow } from "../../src/server/files/stored.js"

const viaSchema = Schema.decodeUnknownEither(Schema.Array(StoredRow))
const sha = fc.stringMatching(/^[0-9a-f]{64}$/)
const good = fc.oneof(
  fc.tuple(fc.constantFrom("a.md", "d/b.md", "é/c"), fc.nat(), sha),
  fc.tuple(fc.constantFrom("a.md", "d/b.md"), fc.nat(), sha, fc.constantFrom(1, 2))
)
// Any field put in any place: a path outside the tree, a size that is not a count, a digest not lowercase hex.
const junk = fc.oneof(
  fc.constantFrom("", "/abs", "a/../b", "a//b", "A".repeat(64), "g".repeat(64), -1, 1.5, 2 ** 53, "1", 0, 3, null),
  fc.anything()
)
const damaged = fc
  .tuple(good, fc.nat(4), junk)
  .map(([row, at, value]) => [...row.slice(0, at), value, ...row.slice(at + 1)] as ReadonlyArray<unknown>)
const rows = fc.array(fc.oneof({ weight: 4, arbitrary: good }, { weight: 1, arbitrary: damaged }), { maxLength: 6 })

describe("stored rows read back", () => {
  it("are accepted exactly when the StoredRow schema decodes them, the first bad row named", () =>
    fc.assert(
      fc.property(fc.oneof(rows, fc.anything()), (value) => {
        const got = decodeStoredRows(value)
        const want = viaSchema(value)
        expect("rows" in got).toBe(want._tag === "Right")
        if ("rows" in got) expect(got.rows).toBe(value)
        else if (Array.isArray(value)) {
          const first = value.findIndex((r) => Schema.decodeUnknownEither(StoredRow)(r)._tag === "Left")
          expect(got.problem).toMatch(new RegExp(`^row ${first} `))
        }
      }),
      { numRuns: 3000 }
    ))
})
