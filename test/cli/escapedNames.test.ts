// A name read from disk reaches a terminal with its control characters shown by their bytes, never raw: local sync's
// and validate's list of unsynced files, file sync's table and left-out note, skill sync's ignored paths, error text.
import { describe, expect, it } from "@effect/vitest"
import { noPaint } from "../../src/cli/color.js"
import { human, leftOutLine } from "../../src/cli/filesText.js"
import { unsyncedLines } from "../../src/cli/local.js"
import { Conflict, InvalidInput, IoError } from "../../src/errors.js"
import type { FilesReport } from "../../src/programs/files/report.js"

// A newline would forge a line of its own; ESC [ 2 J clears the screen; U+202E reverses the text after it.
const NAME = "a\nforged line\x1b[2J\u202eb.txt"
const SHOWN = "a\\x0aforged line\\x1b[2J\\xe2\\x80\\xaeb.txt"
// biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to find them
const RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/

const lines = (text: string) => {
  expect(text).not.toMatch(RAW)
  return text.split("\n")
}

describe("names with control characters in human output", () => {
  it("local sync --verbose lists an unsynced file escaped, on one line", () => {
    const out = lines(unsyncedLines([`web/${NAME}`, "web/plain.txt"], true).join("\n"))
    expect(out).toEqual([
      `not synced by local sync: web/${SHOWN} (carried by file sync)`,
      "not synced by local sync: web/plain.txt (carried by file sync)"
    ])
  })

  it("file sync's table and left-out note show such a path escaped", () => {
    const report: FilesReport = {
      command: "push",
      dry_run: true,
      remote_revision: null,
      revision: null,
      counts: { added: 1, modified: 0, removed: 0, unchanged: 0 },
      actions: { upload: 1 },
      conflicts: [],
      files: [
        { path: `config/${NAME}`, status: "Added", action: "upload" },
        {
          path: "config/link",
          status: "NotCarried",
          action: "skip",
          note: `symbolic link not carried: absolute (/tmp/${NAME})`
        }
      ],
      local_files: 1,
      remote_files: 0,
      remote_manifest: "downloaded"
    }
    const out = lines(human(report)(noPaint))
    expect(out.some((l) => l.includes(`config/${SHOWN}`))).toBe(true)
    expect(out.some((l) => l.includes(`absolute (/tmp/${SHOWN})`))).toBe(true)
    expect(lines(leftOutLine({ left_out: [NAME] }) ?? "")).toHaveLength(1)
  })

  it("an error naming such a file shows it escaped", () => {
    expect(lines(new IoError({ path: `/srv/${NAME}`, reason: "cannot read" }).message)).toEqual([
      `/srv/${SHOWN}: cannot read`
    ])
    expect(lines(new InvalidInput({ file: `agents/${NAME}`, line: 3, reason: "invalid YAML" }).message)).toEqual([
      `agents/${SHOWN}:3: invalid YAML`
    ])
    expect(
      lines(new Conflict({ reason: "1 file(s) changed on both sides", items: [`config/${NAME}`] }).message)
    ).toEqual(["conflict: 1 file(s) changed on both sides", `  config/${SHOWN}`])
  })
})
