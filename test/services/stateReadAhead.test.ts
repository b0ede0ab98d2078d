// A state file read ahead (the settled start path's, while the files bundle loads) is used only while the file at
// its path is still the one read: replaced since (as every state write replaces it, by rename), it is read again.
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { describe, expect, it } from "vitest"
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
