import { FastCheck as fc, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { isRelPath, itemsNamed, RelPath } from "../../src/domain/model.js"

/** The rule as stated: relative, inside the tree, no empty, `.` or `..` segment, no backslash or NUL. */
const segmentRule = (p: string) =>
  p.length > 0 &&
  p.length <= 1024 &&
  !p.startsWith("/") &&
  !p.includes("\\") &&
  !p.includes("\0") &&
  p.split("/").every((s) => s !== "" && s !== "." && s !== "..")

// Paths from the characters that matter to the rule, so the edge cases come up often.
const pathLike = fc
  .array(fc.constantFrom("a", "b", ".", "..", "/", "\\", "\0", "é"), { maxLength: 12 })
  .map((parts) => parts.join(""))

describe("RelPath", () => {
  it("the one-pass predicate and the Schema agree with the segment rule on every path", () => {
    fc.assert(
      fc.property(fc.oneof(pathLike, fc.string()), (p) => {
        expect(isRelPath(p)).toBe(segmentRule(p))
        expect(Schema.is(RelPath)(p)).toBe(segmentRule(p))
      }),
      { numRuns: 5000 }
    )
    expect(isRelPath("a".repeat(1025))).toBe(false)
    expect(["agents/a/config.yaml", ".agentsyncignore", "a/.b/..c"].every(isRelPath)).toBe(true)
  })
})

describe("itemsNamed", () => {
  it("counts the items errors name, not the errors: a file with several problems is one", () => {
    expect(itemsNamed([])).toBe(0)
    expect(
      itemsNamed([
        { item: "content/a.md" },
        { item: "content/a.md" },
        { item: "agents/b.md" },
        { item: "content/a.md" }
      ])
    ).toBe(2)
  })

  it("is the number of distinct items, whatever the order and repetition", () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom("a", "b", "c", "d")), (items) => {
        const n = itemsNamed(items.map((item) => ({ item })))
        expect(n).toBe(new Set(items).size)
        expect(n).toBeLessThanOrEqual(items.length)
        expect(itemsNamed([...items].reverse().map((item) => ({ item })))).toBe(n)
      })
    )
  })
})
