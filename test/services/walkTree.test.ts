import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { FastCheck as fc } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { builtinSegment, IGNORE_FILE, isMemberPath, makeMembership } from "../../src/domain/membership.js"
import { walkTree } from "../../src/services/state.js"

// The walk asks a file below the top by its name and does not enter a folder a built-in ignore names: its listing
// must be every file and link of the tree that `includes` takes, whatever the names and the ignore file say.
const scratch = fs.mkdtempSync(nodePath.join(os.tmpdir(), "walk-tree-"))
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }))

/** Every file and link under `root` (links never followed), by POSIX path, with no membership test. */
const everything = (root: string): Array<string> => {
  const out: Array<string> = []
  const go = (dir: string, rel: string) => {
    for (const d of fs.readdirSync(dir, { withFileTypes: true })) {
      const r = rel === "" ? d.name : `${rel}/${d.name}`
      if (d.isDirectory()) go(nodePath.join(dir, d.name), r)
      else out.push(r)
    }
  }
  go(root, "")
  return out
}

const segment = fc.constantFrom(
  "agents",
  "skills",
  "web",
  "notes",
  "a",
  "b.md",
  ".git",
  ".GIT",
  "x~",
  "y.swp",
  ".DS_Store",
  ".agentsync-tmp-1",
  ".hidden",
  "keep"
)
const ignoreLine = fc.constantFrom("", "*.md", "!b.md", "keep/", "!keep/a", "a", "/agents/a", "**/x~", "!.git", "*~")

describe("walkTree", () => {
  it("lists what the membership includes, the same as asking it of every path", () => {
    let n = 0
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.array(segment, { minLength: 1, maxLength: 4 }), { maxLength: 14 }),
        fc.array(ignoreLine, { maxLength: 4 }),
        fc.boolean(),
        (paths, lines, link) => {
          const root = nodePath.join(scratch, `t${n++}`)
          fs.mkdirSync(root)
          for (const segments of paths) {
            const file = nodePath.join(root, ...segments)
            // A path that runs through an earlier file, or ends at an earlier folder, is left out.
            try {
              fs.mkdirSync(nodePath.dirname(file), { recursive: true })
              if (link && segments.length % 2 === 0) fs.symlinkSync("target", file)
              else fs.writeFileSync(file, segments.join("/"))
            } catch {}
          }
          const ignore = lines.join("\n")
          fs.writeFileSync(nodePath.join(root, IGNORE_FILE), ignore)
          const member = makeMembership(ignore)
          const listed = walkTree(root, member).map((f) => f.path)
          const expected = everything(root)
            .filter((p) => member.includes(p))
            .sort()
          expect(listed).toEqual(expected)
          // Equal to `includes` on every path below a member folder whose folders no built-in ignore names.
          for (const p of everything(root)) {
            const parts = p.split("/")
            if (parts.length < 2) continue
            const name = parts[parts.length - 1] ?? ""
            if (isMemberPath(`${parts[0]}/x`) && !parts.slice(1, -1).some(builtinSegment))
              expect([p, member.includesBelow(p, name)]).toEqual([p, member.includes(p)])
          }
        }
      ),
      { numRuns: 150 }
    )
  })
})
