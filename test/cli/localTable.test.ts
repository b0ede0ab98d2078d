// The tables of `agentsync local diff | sync`: each column counts items, the errors column too.
import { describe, expect, it } from "@effect/vitest"
import { noPaint } from "../../src/cli/color.js"
import { humanDiff, humanSync } from "../../src/cli/local.js"

// One file with a problem on each of three lines, and a second file with one: two items, four problems.
const errors = [
  { item: "blog/a", message: "contents/blog/a.md:2: invalid YAML" },
  { item: "blog/a", message: "contents/blog/a.md:5: invalid YAML" },
  { item: "blog/a", message: "contents/blog/a.md:9: invalid YAML" },
  { item: "blog/b", message: "contents/blog/b.md:1: invalid TOML" }
]

/** The cell under `column` in the row of `kind`. */
const cell = (text: string, kind: string, column: string) => {
  const [head, ...rows] = text.split("\n")
  const names = head!.trim().split(/\s+/)
  const row = rows.find((r) => r.trim().split(/\s+/)[0] === kind)
  return row?.trim().split(/\s+/)[names.indexOf(column)]
}

describe("local sync's tables", () => {
  it("the errors column of a diff counts the items with a problem, not the problems", () => {
    const text = humanDiff(
      {
        kinds: [
          { kind: "content", counts: { added: 0, modified: 0, removed: 0, unchanged: 5 }, changes: [], errors },
          { kind: "agents", counts: { added: 0, modified: 0, removed: 0, unchanged: 1 }, changes: [], errors: [] }
        ],
        unsynced: []
      },
      false,
      noPaint
    )
    expect(cell(text, "content", "errors")).toBe("2")
    expect(cell(text, "agents", "errors")).toBe("0")
    // Each problem is still named.
    expect(text.split("\n").filter((l) => l.startsWith("! "))).toHaveLength(4)
  })

  it("the errors column of a sync counts the items with a problem, not the problems", () => {
    const text = humanSync(
      {
        direction: "ToDatabase",
        dry_run: false,
        results: [
          { kind: "content", direction: "ToDatabase", dry_run: false, synced: 3, skipped: 2, deleted: 0, errors }
        ],
        plan: [],
        unsynced: [],
        unrecorded: []
      },
      false,
      noPaint
    )
    expect(cell(text, "content", "errors")).toBe("2")
    expect(text.split("\n").filter((l) => l.startsWith("! "))).toHaveLength(4)
  })
})
