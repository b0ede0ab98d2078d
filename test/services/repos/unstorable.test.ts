import { it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { describe, expect } from "vitest"
import { unstorable, unstorableJson } from "../../../src/services/repos/shared.js"

/** Any UTF-16 code units, lone surrogates and NUL included. */
const units = fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 8 }).map((cs) => String.fromCharCode(...cs))
const nasty = fc.oneof(units, fc.constantFrom("", "\u0000", "\ud800", "\udc00x", "🚀", "a\u0000\ud800"), fc.string())
const valueArb = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    nasty,
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.constant(undefined),
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(nasty, tie("value"), { maxKeys: 4 })
  )
})).value

describe("unstorable", () => {
  it.prop(
    "agrees with the check on the JSON text the database receives",
    [valueArb],
    ([v]) => {
      expect(unstorable(v)).toBe(unstorableJson(v))
    },
    { fastCheck: { numRuns: 3000 } }
  )

  it("finds NUL and lone surrogates anywhere, keys included", () => {
    expect(unstorable({ a: ["x", { b: "\u0000" }] })).toMatch(/NUL/)
    expect(unstorable({ "\ud800": 1 })).toMatch(/surrogate/)
    expect(unstorable({ a: "🚀", b: undefined })).toBeUndefined()
    expect(unstorable({ toJSON: () => "\u0000" })).toMatch(/NUL/)
  })
})
