import { createHash } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { FastCheck } from "effect"
import { editScript, type SideFile, unifiedHunks, unitDiff } from "../../../src/domain/skills/unitDiff.js"

const file = (text: string | Uint8Array, mode: "" | "+x" | "+l" = ""): SideFile => {
  const bytes = typeof text === "string" ? new TextEncoder().encode(text) : text
  return { digest: `${createHash("sha256").update(bytes).digest("hex")}${mode}`, bytes }
}

const pair = (path: string, repo: SideFile | undefined, home: SideFile | undefined) => ({
  path,
  repoName: `skills/pdf/${path}`,
  homeName: `skills/pdf/${path}`,
  repo,
  home
})

describe("a unit's diff, repo against home", () => {
  it("unified hunks with three lines of context; distant changes make separate hunks", () => {
    const a = `${Array.from({ length: 20 }, (_, i) => `l${i + 1}`).join("\n")}\n`
    const b = a.replace("l2\n", "L2\n").replace("l18\n", "l18\nnew\n")
    expect(unifiedHunks(a, b)).toEqual([
      "@@ -1,5 +1,5 @@",
      " l1",
      "-l2",
      "+L2",
      " l3",
      " l4",
      " l5",
      "@@ -16,5 +16,6 @@",
      " l16",
      " l17",
      " l18",
      "+new",
      " l19",
      " l20"
    ])
  })

  it("a file added or removed, a missing final newline, an empty side", () => {
    expect(unitDiff([pair("notes.md", undefined, file("one\ntwo"))])).toEqual([
      "--- /dev/null",
      "+++ home/skills/pdf/notes.md",
      "@@ -0,0 +1,2 @@",
      "+one",
      "+two (no newline at end)"
    ])
    expect(unitDiff([pair("old.md", file("gone\n"), undefined)])).toEqual([
      "--- repo/skills/pdf/old.md",
      "+++ /dev/null",
      "@@ -1,1 +0,0 @@",
      "-gone"
    ])
  })

  it("binary files by size and hash; a mode change and a link named; identical copies said so", () => {
    const bin = (n: number) => Uint8Array.from({ length: n }, (_, i) => i % 256)
    expect(unitDiff([pair("a.bin", file(bin(300)), file(bin(301)))])[2]).toMatch(
      /^binary or link: repo 300 bytes, sha256 [0-9a-f]{12}; home 301 bytes, sha256 [0-9a-f]{12}$/
    )
    expect(unitDiff([pair("run.sh", file("echo\n"), file("echo\n", "+x"))])[2]).toBe("mode: repo file, home executable")
    expect(unitDiff([pair("l", file("a.md", "+l"), file("b.md", "+l"))])[2]).toBe(
      "binary or link: repo link to a.md; home link to b.md"
    )
    expect(unitDiff([])).toEqual(["home and repo copies are identical"])
  })

  it.prop(
    "the edit script is a valid, minimal-enough path: it rebuilds both sides",
    [
      FastCheck.array(FastCheck.constantFrom("a", "b", "c", "d"), { maxLength: 40 }),
      FastCheck.array(FastCheck.constantFrom("a", "b", "c", "d"), { maxLength: 40 })
    ],
    ([a, b]) => {
      const ops = editScript(a, b)
      expect(ops.filter((o) => o.op !== "+").map((o) => o.line)).toEqual(a)
      expect(ops.filter((o) => o.op !== "-").map((o) => o.line)).toEqual(b)
      // No kept line is ever written as a removal and re-addition when the sides are equal.
      if (a.join() === b.join()) expect(ops.every((o) => o.op === " ")).toBe(true)
    }
  )

  it.prop(
    "hunks rebuild the new text from the old one",
    [
      FastCheck.array(FastCheck.constantFrom("x", "y", "z", ""), { maxLength: 30 }),
      FastCheck.array(FastCheck.constantFrom("x", "y", "z", ""), { maxLength: 30 })
    ],
    ([a, b]) => {
      const ta = a.map((l) => `${l}\n`).join("")
      const tb = b.map((l) => `${l}\n`).join("")
      const lines = [...a]
      let shift = 0
      for (const h of unifiedHunksParsed(unifiedHunks(ta, tb))) {
        lines.splice(h.start - 1 + shift + (h.oldCount === 0 ? 1 : 0), h.oldCount, ...h.added)
        shift += h.added.length - h.oldCount
      }
      expect(lines).toEqual(b)
    }
  )
})

/** The hunks as (old start, old count, the new lines of the hunk). */
const unifiedHunksParsed = (lines: ReadonlyArray<string>) => {
  const out: Array<{ start: number; oldCount: number; added: Array<string> }> = []
  for (const l of lines) {
    const m = /^@@ -(\d+),(\d+) \+\d+,\d+ @@$/.exec(l)
    if (m) out.push({ start: Number(m[1]), oldCount: Number(m[2]), added: [] })
    else if (!l.startsWith("-")) out[out.length - 1]!.added.push(l.slice(1))
  }
  return out
}
