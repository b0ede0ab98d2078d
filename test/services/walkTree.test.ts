import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { FastCheck as fc } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { IGNORE_FILE, isMemberPath, makeMembership } from "../../src/domain/membership.js"
import { builtinSegment, ignoreRulesOf } from "../../src/domain/membershipWalk.js"
import { escapeName, UnreadableName, type UnreadName } from "../../src/services/nameBytes.js"
import { walkTree } from "../../src/services/state.js"
import { bytePath, latin1 } from "../support/rawNames.js"

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
  "keep",
  "x",
  "a.md"
)
const ignoreLine = fc.constantFrom(
  "",
  "*.md",
  "!b.md",
  "keep/",
  "!keep/a",
  "a",
  "/agents/a",
  "**/x~",
  "!.git",
  "*~",
  "x",
  "?",
  "*",
  "!*.md",
  "agents/",
  "!agents/a.md",
  "/agents",
  "!agents/a/b.md"
)
/** How the even-length paths are made: files too, links that name nothing, or links to their own folder. */
type Links = "none" | "dangling" | "folder"
/** One case by hand for each rule a made-up `<top>/x` misjudges, and a folder link beside them. */
const examples: Array<[Array<Array<string>>, Array<string>, Links]> = [
  [
    [
      ["agents", "a.md"],
      ["agents", "b.txt"],
      ["skills", "x"],
      ["skills", "s", "k.md"]
    ],
    ["x"],
    "none"
  ],
  [
    [
      ["agents", "a.md"],
      ["skills", "s", "k.md"]
    ],
    ["?"],
    "none"
  ],
  [
    [
      ["agents", "a.md"],
      ["agents", "b.txt"]
    ],
    ["*", "!*.md"],
    "none"
  ],
  [
    [
      ["agents", "a.md"],
      ["agents", "b.txt"]
    ],
    ["agents/", "!agents/a.md"],
    "none"
  ],
  [
    [
      ["agents", "a.md"],
      ["agents", "b.txt"]
    ],
    ["/agents", "!agents/a.md"],
    "none"
  ],
  [
    [
      ["agents", "a", "b.md"],
      ["agents", "a", "c.txt"]
    ],
    ["a", "!b.md"],
    "none"
  ],
  [
    [
      ["agents", "a", "b.md"],
      ["agents", "keep"],
      ["web", "x", "y.md"]
    ],
    ["x"],
    "folder"
  ]
]

describe("walkTree", () => {
  it("lists what the membership includes, the same as asking it of every path", () => {
    let n = 0
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.array(segment, { minLength: 1, maxLength: 4 }), { maxLength: 14 }),
        fc.array(ignoreLine, { maxLength: 4 }),
        fc.constantFrom<Links>("none", "dangling", "folder"),
        (paths, lines, links) => {
          const root = nodePath.join(scratch, `t${n++}`)
          fs.mkdirSync(root)
          // Always the fixed case `agents/a/b.md` (one of the rules `a` then `!b.md` re-includes), first.
          for (const segments of [["agents", "a", "b.md"], ...paths]) {
            const file = nodePath.join(root, ...segments)
            // A path that runs through an earlier file, or ends at an earlier folder, is left out.
            try {
              fs.mkdirSync(nodePath.dirname(file), { recursive: true })
              if (links !== "none" && segments.length % 2 === 0)
                fs.symlinkSync(links === "folder" ? "." : "target", file)
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
          // The rules alone the walk asks below the top equal `includes` on every path below a member folder whose
          // folders no built-in ignore names.
          const rules = ignoreRulesOf.get(member)
          expect(rules).toBeDefined()
          for (const p of everything(root)) {
            const parts = p.split("/")
            if (parts.length < 2) continue
            const name = parts[parts.length - 1] ?? ""
            if (isMemberPath(`${parts[0]}/x`) && !parts.slice(1, -1).some(builtinSegment))
              expect([p, !builtinSegment(name) && rules?.(p) === true]).toEqual([p, member.includes(p)])
          }
        }
      ),
      { numRuns: 150, examples }
    )
  })

  it("refuses a name that is not UTF-8 where it would take it, naming its folder and bytes; one it leaves out is no obstacle", () => {
    const root = fs.mkdtempSync(nodePath.join(scratch, "bytes-"))
    fs.mkdirSync(nodePath.join(root, "skills/a"), { recursive: true })
    // A name that is U+FFFD itself (valid UTF-8) beside bytes that decode to it: only the bytes are refused.
    fs.writeFileSync(nodePath.join(root, "skills/a/\uFFFD.md"), "fffd")
    expect(walkTree(root, makeMembership()).map((f) => f.path)).toEqual(["skills/a/\uFFFD.md"])
    fs.writeFileSync(bytePath(root, "skills/a", Buffer.from([0xff, 0x2e, 0x6d, 0x64])), "ff")
    const refused = (member: ReturnType<typeof makeMembership>) => {
      try {
        walkTree(root, member)
      } catch (e) {
        return e instanceof UnreadableName ? [e.folder, e.shown] : e
      }
      return "listed"
    }
    expect(refused(makeMembership())).toEqual(["skills/a", "\\xff.md"])
    expect(refused(makeMembership("*.md\n"))).toBe("listed")
    // A folder so named is refused unless the rules leave out what is below it.
    fs.rmSync(bytePath(root, "skills/a", Buffer.from([0xff, 0x2e, 0x6d, 0x64])))
    fs.mkdirSync(bytePath(root, "skills", latin1("vieux-é")))
    fs.writeFileSync(bytePath(root, "skills", latin1("vieux-é"), "SKILL.md"), "old")
    expect(refused(makeMembership())).toEqual(["skills", "vieux-\\xe9"])
    expect(refused(makeMembership("skills/vieux-*/\n"))).toBe("listed")
    // At the top nothing but the membership folders is taken: such a name there is left out, as any other.
    fs.rmSync(bytePath(root, "skills", latin1("vieux-é")), { recursive: true })
    fs.mkdirSync(bytePath(root, latin1("brouillé")))
    expect(walkTree(root, makeMembership()).map((f) => f.path)).toEqual(["skills/a/\uFFFD.md"])
  })
  it("refuses a folder not UTF-8 by every path below it: a re-included file is refused, a folder with none taken is left out", () => {
    const root = fs.mkdtempSync(nodePath.join(scratch, "folder-"))
    fs.mkdirSync(bytePath(root, "skills", latin1("café")), { recursive: true })
    fs.writeFileSync(bytePath(root, "skills", latin1("café"), "SKILL.md"), "pushed as skills/café/SKILL.md")
    fs.writeFileSync(bytePath(root, "skills", latin1("café"), "notes.tmp"), "scratch")
    const refused = (ignore: string) => {
      try {
        return walkTree(root, makeMembership(ignore)).map((f) => f.path)
      } catch (e) {
        return e instanceof UnreadableName ? [e.folder, e.shown] : e
      }
    }
    // The rules leave out the folder's made-up paths but re-include its SKILL.md: left out, it would be deleted.
    expect(refused("skills/*/*\n!skills/*/SKILL.md\n")).toEqual(["skills", "caf\\xe9"])
    // Deeper below it, the same.
    fs.mkdirSync(bytePath(root, "skills", latin1("café"), "ref"))
    fs.renameSync(
      bytePath(root, "skills", latin1("café"), "SKILL.md"),
      bytePath(root, "skills", latin1("café"), "ref", "a.md")
    )
    expect(refused("*.tmp\n")).toEqual(["skills", "caf\\xe9"])
    // Rules that take nothing below it: nothing there travels, so nothing is refused.
    expect(refused("*.tmp\n*.md\n")).toEqual([])
    // Nor is a folder a built-in ignore names entered.
    fs.mkdirSync(bytePath(root, "skills", "s", latin1("café"), ".git"), { recursive: true })
    fs.writeFileSync(bytePath(root, "skills", "s", latin1("café"), ".git", "HEAD"), "x")
    expect(refused("*.tmp\n*.md\n")).toEqual([])
  })

  it("refuses a folder not UTF-8 exactly when its UTF-8 twin would list a path below it, and otherwise lists the rest", () => {
    let n = 0
    const below = fc.constantFrom("SKILL.md", "a.md", "x.tmp", "keep", "x", "ref", ".git", "x~")
    const line = fc.oneof(
      ignoreLine,
      fc.constantFrom("skills/*/*", "!skills/*/SKILL.md", "*.tmp", "skills/caf*/", "!**/ref/**", "*/*/ref/")
    )
    fc.assert(
      fc.property(
        fc.constantFrom(["skills"], ["agents", "a"]),
        fc.uniqueArray(fc.array(below, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 6 }),
        fc.array(line, { maxLength: 4 }),
        fc.boolean(),
        (parent, paths, lines, links) => {
          const twin = nodePath.join(scratch, `u${n}`)
          const bad = nodePath.join(scratch, `b${n++}`)
          fs.mkdirSync(nodePath.join(twin, ...parent), { recursive: true })
          fs.mkdirSync(nodePath.join(twin, "agents"), { recursive: true })
          fs.writeFileSync(nodePath.join(twin, "agents", "beside.md"), "beside")
          for (const segments of paths) {
            const file = nodePath.join(twin, ...parent, "café", ...segments)
            try {
              fs.mkdirSync(nodePath.dirname(file), { recursive: true })
              if (links && segments.length === 2) fs.symlinkSync("target", file)
              else fs.writeFileSync(file, segments.join("/"))
            } catch {}
          }
          fs.cpSync(twin, bad, { recursive: true, verbatimSymlinks: true })
          fs.renameSync(bytePath(bad, ...parent, "café"), bytePath(bad, ...parent, latin1("café")))
          const member = makeMembership(lines.join("\n"))
          const listed = walkTree(twin, member).map((f) => f.path)
          const under = `${parent.join("/")}/café/`
          let got: Array<string> | [string, string]
          try {
            got = walkTree(bad, member).map((f) => f.path)
          } catch (e) {
            if (!(e instanceof UnreadableName)) throw e
            got = [e.folder, e.shown]
          }
          expect(got).toEqual(
            listed.some((p) => p.startsWith(under))
              ? [parent.join("/"), "caf\\xe9"]
              : listed.filter((p) => !p.startsWith(under))
          )
        }
      ),
      { numRuns: 120 }
    )
  })

  it("with a reader, refuses exactly where a name not UTF-8 has, at or below it, a path the reader reads, and hands over exactly the rest file sync refuses: with those gone, file sync lists what the reader got", () => {
    let n = 0
    const names = ["café.md", "été", "naïve.yaml", "SKILL.md", "x.tmp"]
    // Each name's Latin-1 bytes, by how the walk shows them.
    const rawOf = new Map(names.map((x) => [escapeName(latin1(x)), latin1(x)]))
    const entry = fc.record({
      parent: fc.constantFrom(["agents"], ["skills", "s"], ["config"], ["hooks", "h"], ["content", "docs"]),
      name: fc.constantFrom(...names),
      bad: fc.boolean(),
      // The name a file or link itself, or a folder of one to three of them (so that one folder may hold what the
      // reader reads beside what only file sync takes).
      below: fc.option(
        fc.uniqueArray(
          fc.record({ path: fc.constantFrom(["SKILL.md"], ["x.tmp"], ["ref", "a.md"]), link: fc.boolean() }),
          {
            selector: (c) => c.path.join("/"),
            minLength: 1,
            maxLength: 3
          }
        ),
        { nil: undefined }
      ),
      // A symbolic link rather than a file (which the `skills` reader does not read).
      link: fc.boolean()
    })
    const mixed = (...below: Array<{ readonly path: Array<string>; readonly link: boolean }>) => ({
      parent: ["skills", "s"],
      name: "café.md",
      bad: true,
      below,
      link: false
    })
    const line = fc.oneof(ignoreLine, fc.constantFrom("*.tmp", "hooks/", "!hooks/*/SKILL.md", "config/*/", "*.md"))
    const readers = {
      none: () => false,
      markdown: (path) => path.endsWith(".md"),
      skills: (path, link) => !link && path.startsWith("skills/")
    } satisfies Record<string, (path: string, link: boolean) => boolean>
    type Outcome = { readonly listed: Array<string> } | { readonly refused: [string, string] }
    const outcome = (walk: () => Array<{ readonly path: string }>): Outcome => {
      try {
        return { listed: walk().map((f) => f.path) }
      } catch (e) {
        if (!(e instanceof UnreadableName)) throw e
        return { refused: [e.folder, e.shown] }
      }
    }
    fc.assert(
      fc.property(
        fc.array(entry, { minLength: 1, maxLength: 6 }),
        fc.array(line, { maxLength: 3 }),
        fc.constantFrom<keyof typeof readers>("none", "markdown", "skills"),
        (entries, lines, reader) => {
          const root = nodePath.join(scratch, `r${n}`)
          // The tree's UTF-8 twin: each name that is not UTF-8 as the walk judges it, decoded (each bad byte a U+FFFD,
          // a name no UTF-8 one of the tree has).
          const twin = nodePath.join(scratch, `r${n++}-twin`)
          for (const at of [root, twin]) {
            fs.mkdirSync(nodePath.join(at, "agents"), { recursive: true })
            fs.writeFileSync(nodePath.join(at, "agents", "beside.md"), "beside")
            for (const e of entries) {
              const name = e.bad ? (at === root ? latin1(e.name) : latin1(e.name).toString("utf8")) : e.name
              for (const c of e.below ?? [{ path: [], link: e.link }]) {
                const segments = [...e.parent, name, ...c.path]
                // A path that runs through an earlier file, or ends at an earlier folder, is left out.
                try {
                  fs.mkdirSync(bytePath(at, ...segments.slice(0, -1)), { recursive: true })
                  if (c.link) fs.symlinkSync("target", bytePath(at, ...segments))
                  else fs.writeFileSync(bytePath(at, ...segments), "x")
                } catch {}
              }
            }
          }
          const member = makeMembership(lines.join("\n"))
          const handed: Array<UnreadName> = []
          const read = readers[reader]
          const got = outcome(() => walkTree(root, member, read, (x) => handed.push(x)))
          const fileSync = outcome(() => walkTree(root, member))
          // The names not UTF-8 (by their twin's path) with a path at or below them that file sync lists and the
          // reader reads: exactly those the reader's walk refuses, whatever order the folder lists them in.
          const readTwin = walkTree(twin, member)
            .filter((f) => read(f.path, f.link !== undefined))
            .map((f) => f.path)
          const refusable = new Set(
            entries
              .filter((e) => e.bad && !latin1(e.name).equals(Buffer.from(e.name)))
              .map((e) => [...e.parent, latin1(e.name).toString("utf8")].join("/"))
              .filter((bad) => readTwin.some((p) => p === bad || p.startsWith(`${bad}/`)))
          )
          if ("refused" in got) {
            const [folder, shown] = got.refused
            expect(refusable).toContain(`${folder}/${rawOf.get(shown)?.toString("utf8")}`)
            // What the reader reads, file sync takes: a name refused to the reader is refused to file sync.
            expect("refused" in fileSync).toBe(true)
            return
          }
          expect([...refusable]).toEqual([])
          expect(handed.length > 0).toBe("refused" in fileSync)
          if ("refused" in fileSync) expect(handed.map((x) => [x.folder, x.shown])).toContainEqual(fileSync.refused)
          for (const x of handed) {
            const at = bytePath(root, ...x.folder.split("/"), rawOf.get(x.shown) ?? Buffer.from(x.shown))
            expect(fs.lstatSync(at).isDirectory()).toBe(x.isFolder)
            fs.rmSync(at, { recursive: true })
          }
          // The names handed over are all that stood between file sync and the listing the reader got.
          expect(outcome(() => walkTree(root, member))).toEqual(got)
        }
      ),
      {
        numRuns: 150,
        // A Latin-1 folder holding a link the `skills` reader does not read beside a file it reads, either way round,
        // so that whichever of the two the folder lists first, one case lists the link first: still refused.
        examples: [
          [[mixed({ path: ["SKILL.md"], link: true }, { path: ["x.tmp"], link: false })], [], "skills"],
          [[mixed({ path: ["SKILL.md"], link: false }, { path: ["x.tmp"], link: true })], [], "skills"]
        ]
      }
    )
  })
})
