import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { makeMembership } from "../../src/domain/membership.js"
import { FileEntry } from "../../src/domain/model.js"
import { visibleEntries } from "../../src/programs/files/prepare.js"

/** Paths inside and outside the membership, and the rules of an ignore file over them. */
const path = fc
  .tuple(
    fc.constantFrom("agents", "skills", "content", "config", "other"),
    fc.constantFrom("a", "b", "a.md", "b.tmp", ".DS_Store", "x/a.md")
  )
  .map(([top, rest]) => `${top}/${rest}`)
const ignoreText = fc
  .array(fc.constantFrom("*.tmp", "skills/", "!skills/a", "content/x/", "a.md", "!config/a.md", "# note"), {
    maxLength: 4
  })
  .map((lines) => lines.join("\n"))
const byPath = (x: { readonly path: string }, y: { readonly path: string }) => (x.path < y.path ? -1 : 1)

describe("visibleEntries", () => {
  it("takes a remote path the local listing holds without asking the membership, with the same answer as asking it: sorted or not, links not carried left out", () => {
    fc.assert(
      fc.property(
        ignoreText,
        fc.uniqueArray(path, { maxLength: 14 }),
        fc.uniqueArray(path, { maxLength: 14 }),
        fc.boolean(),
        fc.nat(),
        (text, remotePaths, localPaths, shuffle, k) => {
          const membership = makeMembership(text)
          const entries = remotePaths.map((p) => new FileEntry({ path: p, size: 1, sha256: "a".repeat(64) }))
          const remote = shuffle ? entries : [...entries].sort(byPath)
          // A listing holds only what the membership takes, sorted by path.
          const listed = localPaths
            .filter((p) => membership.includes(p))
            .map((p) => ({ path: p }))
            .sort(byPath)
          const notCarried =
            listed.length === 0 ? [] : [{ path: listed[k % listed.length]!.path, target: "/x", reason: "absolute" }]
          expect(visibleEntries(remote, membership, notCarried, listed)).toEqual(
            visibleEntries(remote, membership, notCarried)
          )
        }
      ),
      { numRuns: 300 }
    )
  })

  it("a listed path is taken even where the membership, asked now, would not (the listing's answer stands)", () => {
    const membership = makeMembership("*.tmp")
    const entries = ["agents/a.md", "agents/b.tmp"].map(
      (p) => new FileEntry({ path: p, size: 1, sha256: "a".repeat(64) })
    )
    expect(visibleEntries(entries, membership, []).map((e) => e.path)).toEqual(["agents/a.md"])
    expect(visibleEntries(entries, membership, [], [{ path: "agents/b.tmp" }]).map((e) => e.path)).toEqual([
      "agents/a.md",
      "agents/b.tmp"
    ])
  })
})
