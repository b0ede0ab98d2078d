import { FastCheck as fc } from "effect"
import { describe, expect, it } from "vitest"
import { ManifestRefused, makeManifestDecoder } from "../../src/domain/manifestDecoder.js"

const options = (maxBytes = 1 << 20, maxEntries = 1000) => ({
  arrayKey: "entries",
  maxBytes,
  maxEntries,
  element: (u: unknown) => (typeof u === "object" && u !== null && "path" in u ? u : "an entry without a path")
})

/** Feeds the text to a decoder cut at the given byte offsets. */
const decode = (text: string, cuts: ReadonlyArray<number>, o = options()) => {
  const bytes = Buffer.from(text)
  const d = makeManifestDecoder(o)
  let at = 0
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    d.push(bytes.subarray(at, Math.max(at, Math.min(cut, bytes.length))))
    at = Math.max(at, Math.min(cut, bytes.length))
  }
  d.push(bytes.subarray(at))
  return d.end()
}

const refusal = (f: () => unknown) => {
  try {
    f()
  } catch (e) {
    return e instanceof ManifestRefused ? e.kind : "other"
  }
  return undefined
}

const text = fc.string({ unit: fc.constantFrom("a", "\\", '"', "é", "💡", "/", " ", "{", "]", ":", ",") })
const entry = fc.record({
  path: text,
  size: fc.nat(),
  sha256: fc.hexaString({ minLength: 0, maxLength: 8 }),
  extra: fc.option(fc.array(fc.nat(), { maxLength: 3 }))
})
const manifest = fc.record({
  tenant: text,
  revision: fc.option(text),
  entries: fc.array(entry, { maxLength: 20 }),
  checksum: text
})

describe("manifest decoder", () => {
  it("decodes what JSON.parse decodes, however the bytes are cut and whatever order or spacing the keys have", () => {
    fc.assert(
      fc.property(
        manifest,
        fc.array(fc.nat({ max: 4000 }), { maxLength: 12 }),
        fc.boolean(),
        fc.boolean(),
        (m, cuts, reversed, spaced) => {
          const ordered = reversed ? Object.fromEntries(Object.entries(m).reverse()) : m
          const json = JSON.stringify(ordered, null, spaced ? 2 : undefined)
          const { fields, elements } = decode(json, cuts)
          expect(elements).toEqual(JSON.parse(json).entries)
          expect(fields).toEqual({ ...JSON.parse(json), entries: [] })
        }
      )
    )
  })

  it("refuses a body cut short as truncated, never as a smaller manifest", () => {
    fc.assert(
      fc.property(manifest, fc.nat(), (m, n) => {
        const json = JSON.stringify(m)
        const cut = n % json.length
        const kind = refusal(() => decode(json.slice(0, cut), []))
        expect(kind === "truncated" || kind === "invalid").toBe(true)
      })
    )
  })

  it("stops an endless or huge body at the byte cap and a long array at the entry cap", () => {
    const d = makeManifestDecoder(options(100_000, 1_000_000))
    const chunk = Buffer.from(`{"tenant":"t","entries":[${'{"path":"a","size":1,"sha256":"x"},'.repeat(100)}`)
    expect(
      refusal(() => {
        for (let i = 0; i < 1_000_000; i++) d.push(chunk)
      })
    ).toBe("cap")
    const many = JSON.stringify({ entries: Array.from({ length: 11 }, (_, i) => ({ path: `${i}` })) })
    expect(refusal(() => decode(many, [], options(1 << 20, 10)))).toBe("cap")
  })

  it("refuses elements that are not objects, or that the element check refuses", () => {
    expect(refusal(() => decode('{"entries":["a"]}', []))).toBe("invalid")
    expect(refusal(() => decode('{"entries":[1,2]}', []))).toBe("invalid")
    expect(refusal(() => decode('{"entries":[{"size":1}]}', []))).toBe("invalid")
    expect(refusal(() => decode('{"entries":[{"path":"a"}],"entries":[]}', []))).toBe("invalid")
    expect(refusal(() => decode("[]", []))).not.toBeUndefined()
  })
})
