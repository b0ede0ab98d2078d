import { isUtf8 } from "node:buffer"
import { FastCheck as fc } from "effect"
import { describe, expect, it } from "vitest"
import { escapeName } from "../../src/services/nameBytes.js"

// How a name is shown where it cannot travel: its bytes one to one, so that no name shows as another and none can
// break the quotes or the line it is shown in.

/** The inverse of `escapeName`: each `\xNN` the byte, anything else its UTF-8. */
const unescapeName = (shown: string): Buffer => {
  const parts: Array<Buffer> = []
  for (const m of shown.matchAll(/\\x([0-9a-f]{2})|[^\\]/gsu)) {
    parts.push(m[1] === undefined ? Buffer.from(m[0]) : Buffer.from([Number.parseInt(m[1], 16)]))
  }
  return Buffer.concat(parts)
}
const hidden = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u
const show = (...bytes: Array<number>) => escapeName(Uint8Array.from(bytes))

describe("escapeName", () => {
  it("shows a UTF-8 name as it is, unless it holds a backslash, a quote or a control, format or separator character", () => {
    fc.assert(
      fc.property(
        fc.fullUnicodeString().filter((s) => !/[\\"]/.test(s) && !hidden.test(s)),
        (s) => {
          expect(escapeName(Buffer.from(s))).toBe(s)
        }
      ),
      { numRuns: 500 }
    )
  })

  it("shows any bytes one to one: unescaped they are the same bytes, with no quote or hidden character and no bare backslash", () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 24 }),
      // Valid UTF-8 with bytes that break it put in, where the escapes must still be told from the text.
      fc
        .tuple(fc.fullUnicodeString({ maxLength: 8 }), fc.uint8Array({ maxLength: 4 }), fc.nat(8))
        .map(([s, bad, at]) => {
          const u = Buffer.from(s)
          const i = Math.min(at, u.length)
          return Buffer.concat([u.subarray(0, i), bad, u.subarray(i)])
        })
    )
    fc.assert(
      fc.property(bytes, (raw) => {
        const shown = escapeName(raw)
        expect(unescapeName(shown).equals(Buffer.from(raw))).toBe(true)
        expect(shown).not.toMatch(/["\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u)
        expect(shown.replace(/\\x[0-9a-f]{2}/g, "")).not.toContain("\\")
      }),
      { numRuns: 1000 }
    )
  })

  it("shows bytes that are not UTF-8 by their bytes: Latin-1, CESU-8 surrogates, overlong and truncated sequences", () => {
    expect(show(0x63, 0x61, 0x66, 0xe9)).toBe("caf\\xe9")
    // A real name `a\xe9` (a backslash) is not the byte name `a` 0xe9.
    expect(escapeName(Buffer.from("a\\xe9"))).toBe("a\\x5cxe9")
    expect(show(0x61, 0xe9)).toBe("a\\xe9")
    // CESU-8: a surrogate's three bytes, which UTF-8 forbids.
    expect(show(0xed, 0xa0, 0x80)).toBe("\\xed\\xa0\\x80")
    // Overlong forms of `/` and of NUL.
    expect(show(0xc0, 0xaf)).toBe("\\xc0\\xaf")
    expect(show(0xe0, 0x80, 0xaf)).toBe("\\xe0\\x80\\xaf")
    expect(show(0xc1, 0x80)).toBe("\\xc1\\x80")
    // Truncated: the first two bytes of `€` (e2 82 ac), at the end and before ASCII.
    expect(show(0x61, 0xe2, 0x82)).toBe("a\\xe2\\x82")
    expect(show(0xe2, 0x82, 0x61)).toBe("\\xe2\\x82a")
    expect(show(0xf0, 0x9f, 0x98)).toBe("\\xf0\\x9f\\x98")
    // Beyond U+10FFFF.
    expect(show(0xf4, 0x90, 0x80, 0x80)).toBe("\\xf4\\x90\\x80\\x80")
  })

  it("shows by their bytes the characters that would spoof the quoted name or its line", () => {
    expect(escapeName(Buffer.from('a" b'))).toBe("a\\x22 b")
    // Right-to-left override, next line, zero-width joiner, line separator, a tab, DEL.
    expect(escapeName(Buffer.from("x\u202Egpj.exe"))).toBe("x\\xe2\\x80\\xaegpj.exe")
    expect(escapeName(Buffer.from("a\u0085b"))).toBe("a\\xc2\\x85b")
    expect(escapeName(Buffer.from("a\u200Db"))).toBe("a\\xe2\\x80\\x8db")
    expect(escapeName(Buffer.from("a\u2028b"))).toBe("a\\xe2\\x80\\xa8b")
    expect(escapeName(Buffer.from("a\tb\u007f"))).toBe("a\\x09b\\x7f")
    // Valid UTF-8 otherwise as it is, a real U+FFFD included.
    expect(escapeName(Buffer.from("résumé \uFFFD 日本 😀"))).toBe("résumé \uFFFD 日本 😀")
    expect(isUtf8(Buffer.from(escapeName(Uint8Array.from([0xff]))))).toBe(true)
  })
})
