// A name read from disk reaches a terminal with its control characters shown by their bytes, never raw: local sync's
// and validate's list of unsynced files, file sync's table and left-out note, skill sync's ignored paths, error text.
import { describe, expect, it } from "@effect/vitest"
import { defaultGlobals } from "../../src/cli/argv.js"
import { errorLine, noPaint } from "../../src/cli/color.js"
import { human, leftOutLine } from "../../src/cli/filesText.js"
import { humanSync, unrecordedLines, unsyncedLines } from "../../src/cli/local.js"
import { failureDocument } from "../../src/cli/output.js"
import { describeReport, statusText } from "../../src/cli/skill.js"
import { inventoryLine } from "../../src/cli/validate.js"
import { Conflict, InvalidInput, IoError, messageLines, ServerLacks, type SyncError } from "../../src/errors.js"
import type { FilesReport } from "../../src/programs/files/report.js"
import type { SyncReport } from "../../src/programs/skillSync.js"

// A newline would forge a line of its own; ESC [ 2 J clears the screen; U+202E reverses the text after it.
const NAME = "a\nforged line\x1b[2J\u202eb.txt"
const SHOWN = "a\\x0aforged line\\x1b[2J\\xe2\\x80\\xaeb.txt"
// biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to find them
const RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/

const GLOBALS = { ...defaultGlobals, color: "never" as const }

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

  it("local sync names a page left unrecorded escaped with --verbose, else counts them", () => {
    expect(lines(unrecordedLines([`content/${NAME}.md`], true).join("\n"))).toEqual([
      `the written page does not read back as its row; it stays unrecorded: content/${SHOWN}.md`
    ])
    expect(unrecordedLines(["a.md", "b.md"], false)).toEqual([
      "2 written pages do not read back as their rows and stay unrecorded (rendered again each run); --verbose lists them"
    ])
    expect(unrecordedLines([], true)).toEqual([])
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

  it("an error naming such a file: its error line escaped, its message and --json raw", () => {
    const shown = (e: SyncError) => lines(errorLine(GLOBALS, messageLines(e)))
    const io = new IoError({ path: `/srv/${NAME}`, reason: "cannot read" })
    expect(shown(io)).toEqual([`error: /srv/${SHOWN}: cannot read`])
    const invalid = new InvalidInput({ file: `agents/${NAME}`, line: 3, reason: "invalid YAML\nsecond line" })
    expect(shown(invalid)).toEqual([`error: agents/${SHOWN}:3: invalid YAML`, "second line"])
    const conflict = new Conflict({ reason: "1 file(s) changed on both sides", items: [`config/${NAME}`] })
    expect(shown(conflict)).toEqual(["error: conflict: 1 file(s) changed on both sides", `  config/${SHOWN}`])
    const lacks = new ServerLacks({ reason: "the server keeps no empty folders", items: [`config/${NAME}`] })
    expect(shown(lacks)).toEqual(["error: the server keeps no empty folders; nothing was sent", `  config/${SHOWN}`])
    // The message is the error's own text, as --json and the logs carry it (JSON escapes a control character itself).
    expect(io.message).toBe(`/srv/${NAME}: cannot read`)
    expect(conflict.message).toBe(`conflict: 1 file(s) changed on both sides\n  config/${NAME}`)
    expect(JSON.parse(failureDocument(invalid)).error).toMatchObject({
      file: `agents/${NAME}`,
      message: `agents/${NAME}:3: invalid YAML\nsecond line`
    })
  })

  it("a plain message's control characters are escaped on the error line, the colour codes it adds are not", () => {
    const coloured = errorLine({ ...defaultGlobals, color: "always" }, `x\x1b[2J${NAME}`)
    expect(coloured.startsWith("\x1b[1m\x1b[31merror:\x1b[0m\x1b[0m ")).toBe(true)
    expect(coloured.slice(coloured.indexOf(" ") + 1)).toBe(`x\\x1b[2J${SHOWN}`)
  })

  it("skill sync's plan and skill status: units, reasons, skips, backups and findings escaped", () => {
    const unit = `skills/${NAME}`
    const report: SyncReport = {
      dryRun: false,
      actions: [
        {
          source: "team",
          unit,
          tool: "claude",
          direction: "ToRepo",
          status: "home-changed",
          reason: `home changed: sub\x07/f\x1b.md`,
          home: "h",
          repo: "r",
          base: "b"
        }
      ],
      summary: { toHome: 0, toRepo: 1, noOp: 0, conflicts: 0 },
      applied: [],
      skipped: [{ source: "team", unit, tool: "codex", reason: `home ${NAME} changed since the plan` }],
      commits: [{ source: "team", unit, commit: "0123456789abcdef", pushed: true }],
      errors: [{ source: "team", reason: `cannot read ${NAME}` }],
      withheld: [{ source: "team", unit, repo: ["a", "b"], reason: `a and b map to ${NAME};\nthen ${NAME}` }],
      ignored: [],
      notes: [{ source: "team", note: `put aside ${NAME}` }],
      backups: [{ source: "team", unit, side: "home", path: `/backups/${NAME}` }]
    }
    const out = lines(describeReport(report))
    expect(out).toContain(`home → repo  team:skills/${SHOWN} [claude]  home changed: sub\\x07/f\\x1b.md`)
    expect(out).toContain(`skipped team:skills/${SHOWN} [codex]: home ${SHOWN} changed since the plan`)
    expect(out).toContain(`kept the replaced copy of team:skills/${SHOWN} (home) in /backups/${SHOWN}`)
    expect(out).toContain(`note: team: put aside ${SHOWN}`)
    expect(out).toContain(`error in source team: cannot read ${SHOWN}`)
    // The advice's consequences on a line of their own.
    expect(out).toContain(`left out team:skills/${SHOWN}: a and b map to ${SHOWN};`)
    expect(out).toContain(`  then ${SHOWN}`)
    const status = lines(
      statusText({
        rows: [{ source: "team", unit, tool: "claude", state: "home changed", direction: "ToRepo", reason: `${NAME}` }],
        ignored: [],
        notes: [],
        errors: [],
        withheld: []
      })
    )
    expect(status.some((l) => l.includes(`skills/${SHOWN}`) && l.endsWith(SHOWN))).toBe(true)
  })

  it("validate's summary names a content source escaped; local sync's dry-run plan its keys and paths", () => {
    const inventory = { agents: 0, skills: 0, contents: 1, access_rules: 0, attachments: 0 }
    expect(
      lines(inventoryLine("services", { ...inventory, sources: { [NAME]: { layout: "flat", items: 1 } } }))
    ).toEqual([`services: 0 agents, 0 skills, 1 content items in ${SHOWN} (flat, 1), 0 access rules`])
    const plan = lines(
      humanSync(
        {
          direction: "ToDatabase",
          dry_run: true,
          results: [],
          plan: [
            {
              kind: "content",
              action: "upsert",
              key: `docs/${NAME}`,
              status: "Added",
              paths: [`contents/docs/${NAME}.md`]
            }
          ],
          unsynced: [],
          unrecorded: []
        },
        false,
        noPaint
      )
    )
    expect(plan).toContain(`  upsert content docs/${SHOWN} (Added) contents/docs/${SHOWN}.md`)
  })
})
