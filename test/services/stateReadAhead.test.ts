// A state file read ahead (the settled start path's, while the files bundle loads) is used only while the file at
// its path is still the one read: replaced since (as every state write replaces it, by rename), it is read again.
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { make } from "../../src/services/FileState.js"
import { readAhead, readingAhead, takeStateText } from "../../src/services/state.js"
import { tempDirs } from "../support/tree.js"

const tempDir = tempDirs("state-read-ahead")

/** Replaces `file` as a state write does: a temp file of the same size renamed over it. */
const replace = (file: string, text: string) => {
  fs.writeFileSync(`${file}.tmp`, text)
  fs.renameSync(`${file}.tmp`, file)
}

describe("readAhead and takeStateText", () => {
  it("give the text read ahead while the file is unchanged, once", async () => {
    const file = nodePath.join(tempDir("s"), "files-base.json")
    fs.writeFileSync(file, '{"a":"é"}')
    readAhead([file, nodePath.join(tempDir("t"), "none.json")])
    expect(readingAhead(file)).toBe(true)
    expect(await takeStateText(file)).toBe('{"a":"é"}')
    expect(readingAhead(file)).toBe(false)
  })

  it("read the file again when it was replaced after the read ahead, even at the same size", async () => {
    const file = nodePath.join(tempDir("s"), "remote-manifest.json")
    fs.writeFileSync(file, "old text")
    readAhead([file])
    replace(file, "new text")
    expect(await takeStateText(file)).toBe("new text")
    readAhead([file])
    fs.rmSync(file)
    expect(await takeStateText(file)).toBeUndefined()
  })
})

describe("the read-ahead map", () => {
  // The map lives on globalThis under a registered symbol (shared by the two bundles of one process), untyped there.
  const held = () =>
    (globalThis as { [k: symbol]: Map<string, unknown> | undefined })[Symbol.for("agentsync.files.readAhead")]?.size ??
    0

  it("drops an entry once taken, once its file is written or removed, and when a later run reads ahead", async () => {
    const root = tempDir("p")
    const state = make(root)
    fs.mkdirSync(state.dir)
    for (const name of ["files-base.json", "remote-manifest.json", "files-settled-listing.txt"] as const)
      fs.writeFileSync(state.path(name), `${name} text`)
    const [base, head, listing] = [
      state.path("files-base.json"),
      state.path("remote-manifest.json"),
      state.path("files-settled-listing.txt")
    ]
    const all = [base, head, listing]
    // Many runs in one process, each taking one file, writing one and removing one: none of them is kept.
    for (let run = 0; run < 20; run++) {
      readAhead(all)
      expect(held()).toBe(3)
      expect(await Effect.runPromise(state.read("files-base.json"))).toBe(
        run === 0 ? "files-base.json text" : `base ${run - 1}`
      )
      await Effect.runPromise(state.write("files-base.json", `base ${run}`))
      await Effect.runPromise(state.write("remote-manifest.json", `head ${run}`))
      await Effect.runPromise(state.remove("files-settled-listing.txt"))
      expect(all.map(readingAhead)).toEqual([false, false, false])
      expect(held()).toBe(0)
      fs.writeFileSync(state.path("files-settled-listing.txt"), "listing")
    }
    // A read ahead nobody takes lasts only until the next one.
    readAhead([base])
    readAhead([head])
    expect([readingAhead(base), readingAhead(head), held()]).toEqual([false, true, 1])
    expect(await takeStateText(head)).toBe("head 19")
    expect(held()).toBe(0)
  })
})
