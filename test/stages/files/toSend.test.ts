import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import type { FileEntry } from "../../../src/domain/model.js"
import { toSend } from "../../../src/stages/files/upload.js"

// Few hashes, so that a tree and a push share some and a push repeats some; links among both.
const entry = fc.record({
  path: fc.constantFrom("a", "b", "c/d", "e"),
  size: fc.nat(9),
  sha256: fc.constantFrom("1", "2", "3", "4", "5").map((h) => h.repeat(64)),
  link: fc.option(fc.constant(true), { nil: undefined })
})
const entries = fc.array(entry, { maxLength: 12 }).map((es) => es.map((e): FileEntry => ({ ...e })))

/** What is sent, by its definition: every link; a file whose hash no tree entry and no earlier file sent has. */
const reference = (remote: ReadonlyArray<FileEntry>, set: ReadonlyArray<FileEntry>) => {
  const sent: Array<FileEntry> = []
  for (const e of set) {
    const held = remote.some((r) => r.sha256 === e.sha256)
    const again = sent.some((s) => s.link !== true && s.sha256 === e.sha256)
    if (e.link === true || (!held && !again)) sent.push(e)
  }
  return sent
}

describe("the files an upload sends", () => {
  it("are every link and, once per hash, each file whose hash no entry of the tree has (a link's included)", () => {
    fc.assert(
      fc.property(entries, entries, (remote, set) => {
        const sent = toSend(remote, set)
        expect(sent).toEqual(reference(remote, set))
        // The entries themselves, in the push's order.
        expect(sent.every((e) => set.includes(e))).toBe(true)
      }),
      { numRuns: 3000 }
    )
  })
})
