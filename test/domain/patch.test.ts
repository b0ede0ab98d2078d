import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { applyHunks, editScript, hunksOf, isText, linesOf, unified } from "../../src/domain/patch.js"

/** Texts over few distinct lines, so that old and new share many lines (as real edits do), ending with or without "\n". */
const text = fc
  .tuple(fc.array(fc.constantFrom("a", "b", "c", "d", "", "x y"), { maxLength: 40 }), fc.boolean())
  .map(([lines, trailing]) => (lines.length === 0 ? "" : `${lines.join("\n")}${trailing ? "\n" : ""}`))

/** Longest common subsequence length, by dynamic programming: what a shortest edit script keeps. */
const lcs = (a: ReadonlyArray<string>, b: ReadonlyArray<string>) => {
  const row = new Array<number>(b.length + 1).fill(0)
  for (let i = 1; i <= a.length; i++) {
    let diag = 0
    for (let j = 1; j <= b.length; j++) {
      const up = row[j]!
      row[j] = a[i - 1] === b[j - 1] ? diag + 1 : Math.max(row[j]!, row[j - 1]!)
      diag = up
    }
  }
  return row[b.length]!
}

describe("patch", () => {
  it.prop("applying the hunks to the old text gives the new text", [text, text], ([a, b]) => {
    expect(applyHunks(a, hunksOf(linesOf(a), linesOf(b)))).toBe(b)
  })

  it.prop("with any context, including none", [text, text, fc.nat({ max: 5 })], ([a, b, context]) => {
    expect(applyHunks(a, hunksOf(linesOf(a), linesOf(b), context))).toBe(b)
  })

  it.prop("the edit script is a shortest one: it keeps a longest common subsequence", [text, text], ([a, b]) => {
    const x = linesOf(a)
    const y = linesOf(b)
    const script = editScript(x, y)
    expect(script.filter((l) => l.op === " ").length).toBe(lcs(x, y))
    expect(script.filter((l) => l.op !== "+").map((l) => l.text)).toEqual(x)
    expect(script.filter((l) => l.op !== "-").map((l) => l.text)).toEqual(y)
  })

  it.prop("a text against itself has no hunks", [text], ([a]) => {
    expect(hunksOf(linesOf(a), linesOf(a))).toEqual([])
    expect(unified({ old: "f", new: "f" }, a, a)).toBe("")
  })

  it.prop("lines join back to the text", [text], ([a]) => {
    expect(linesOf(a).join("")).toBe(a)
  })

  it("renders as git diff does, with context, line ranges and a missing final newline", () => {
    const old = "one\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\nten\n"
    const now = "one\ntwo\nthree\nfour\nFIVE\nsix\nseven\neight\nnine\nten"
    expect(unified({ old: "n.txt", new: "n.txt" }, old, now)).toBe(
      [
        "--- a/n.txt",
        "+++ b/n.txt",
        "@@ -2,9 +2,9 @@",
        " two",
        " three",
        " four",
        "-five",
        "+FIVE",
        " six",
        " seven",
        " eight",
        " nine",
        "-ten",
        "+ten",
        "\\ No newline at end of file",
        ""
      ].join("\n")
    )
    expect(unified({ old: undefined, new: "new.md" }, "", "hi\n")).toBe(
      "--- /dev/null\n+++ b/new.md\n@@ -0,0 +1 @@\n+hi\n"
    )
    expect(unified({ old: "gone.md", new: undefined }, "a\nb\n", "")).toBe(
      "--- a/gone.md\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-a\n-b\n"
    )
  })

  it("tells text from binary", () => {
    expect(isText(new TextEncoder().encode("héllo\n"))).toBe(true)
    expect(isText(new Uint8Array([104, 0, 105]))).toBe(false)
    expect(isText(new Uint8Array([0xff, 0xfe, 0x41]))).toBe(false)
  })
})
