import { FastCheck as fc } from "effect"
import { describe, expect, it } from "vitest"
import { globToRegExp, IGNORE_FILE, isMemberPath, leftOutAtTop, makeMembership } from "../../src/domain/membership.js"

describe("bundle membership", () => {
  it("carries the membership folders and the ignore file, nothing else", () => {
    for (const p of ["agents/a/config.yaml", "content/blog/x/index.md", "hooks/pre.sh", IGNORE_FILE])
      expect(isMemberPath(p)).toBe(true)
    for (const p of [
      "node_modules/x.js",
      "README.md",
      ".git/config",
      "agentsx/a",
      "agents",
      "agents/",
      "agentsync.yaml",
      ".agentsync/files-base.json"
    ]) {
      expect([p, isMemberPath(p)]).toEqual([p, false])
    }
  })

  it("never carries .git (in any case a disk may fold), agentsync's temp files or editor litter, whatever the ignore file says", () => {
    for (const p of [
      "agents/.git/config",
      "skills/s/.GIT/hooks/pre-commit",
      "config/.Git",
      "content/.agentsync-tmp-1-abcdef01-0",
      "web/.DS_Store"
    ]) {
      expect([p, isMemberPath(p), makeMembership("!**\n!.git\n!*.swp").includes(p)]).toEqual([p, false, false])
    }
  })

  it("names what at the top is left out unasked: not a membership folder, the ignore file, litter or an ignored name", () => {
    const m = makeMembership("drafts/\n/scratch.md\n*.bak\n")
    const top = ["agents", "skills", IGNORE_FILE, ".DS_Store", ".git", "notes~", "drafts", "scratch.md", "old.bak"]
    expect(top.filter(m.unasked)).toEqual([])
    expect(["superpowers", "README.md", ".env", "draftsx"].filter(m.unasked)).toEqual([
      "superpowers",
      "README.md",
      ".env",
      "draftsx"
    ])
    // A re-included name is carried only inside a membership folder: at the top it is still left out unasked.
    expect(makeMembership("*\n!keep\n").unasked("keep")).toBe(true)
    expect(makeMembership("*\n").unasked("keep")).toBe(false)
  })

  it("lists what a run leaves out at the top from one listing: sorted, folders ending in /, as unasked decides", () => {
    const entry = (name: string, folder: boolean) => ({ name, folder })
    const m = makeMembership("drafts/\n")
    const listing = [
      entry("skills", true),
      entry("prompts", true),
      entry("notes.md", false),
      entry("drafts", true),
      entry(".DS_Store", false),
      entry(IGNORE_FILE, false),
      entry("Agents", true)
    ]
    expect(leftOutAtTop(m, listing)).toEqual(["Agents/", "notes.md", "prompts/"])
    // Each name unasked leaves out is listed once, marked as a folder when it is one; nothing else is; sorted.
    fc.assert(
      fc.property(
        fc.uniqueArray(
          fc.tuple(fc.constantFrom("agents", "notes.md", "drafts", ".DS_Store", "x", ".env", "web"), fc.boolean()),
          {
            selector: ([n]) => n
          }
        ),
        (names) => {
          const out = leftOutAtTop(
            m,
            names.map(([n, d]) => entry(n, d))
          )
          const expected = names.filter(([n]) => m.unasked(n)).map(([n, d]) => (d ? `${n}/` : n))
          expect([...out].sort()).toEqual(out)
          expect([...out].sort()).toEqual([...expected].sort())
        }
      )
    )
  })

  it("applies .agentsyncignore globs, gitignore style, with ! to re-include", () => {
    const m = makeMembership("# drafts\ncontent/blog/*/draft-*.md\n*.local.yaml\n!config/keep.local.yaml\n")
    expect(m.includes("content/blog/p/draft-1.md")).toBe(false)
    expect(m.includes("content/blog/p/index.md")).toBe(true)
    expect(m.includes("config/deep/x.local.yaml")).toBe(false)
    expect(m.includes("config/keep.local.yaml")).toBe(true)
    expect(m.includes("agents/a/.DS_Store")).toBe(false)
    expect(m.includes("skills/s/.agentsync-tmp-123")).toBe(false)
  })

  it("compiles globs: * stays in a segment, ** crosses them, a pattern with a slash is anchored", () => {
    expect(globToRegExp("*.md").test("a/b/c.md")).toBe(true)
    expect(globToRegExp("content/*.md").test("content/a/b.md")).toBe(false)
    expect(globToRegExp("content/**/b.md").test("content/a/x/b.md")).toBe(true)
    expect(globToRegExp("content/**/b.md").test("content/b.md")).toBe(true)
    expect(globToRegExp("config/").test("config/x/y")).toBe(true)
    expect(globToRegExp("file?.txt").test("file1.txt")).toBe(true)
    expect(globToRegExp("[ab].txt").test("c.txt")).toBe(false)
  })

  it("leaves out editor, OS, git and agentsync litter at any depth", () => {
    const m = makeMembership()
    for (const p of [
      ".DS_Store",
      "agents/.DS_Store",
      "agents/a/b/.DS_Store",
      "skills/s/x.swp",
      "config/a.yaml~",
      "content/.agentsync-tmp-1",
      "agents/a/.git/config",
      "agents/.git/x/y"
    ]) {
      expect([p, m.includes(p)]).toEqual([p, false])
    }
    for (const p of ["agents/a/config.yaml", "agents/a/git/x", "agents/a/x.git", "skills/swp", "content/a~b/c.md"])
      expect([p, m.includes(p)]).toEqual([p, true])
  })

  it("a pattern without a slash matches a whole segment at any depth, as the anchored form of it would", () => {
    const glob = fc
      .array(fc.constantFrom("a", "b", ".", "*", "?", "[ab]", "~", "-", "md"), { minLength: 1, maxLength: 5 })
      .map((p) => p.join(""))
    const path = fc
      .array(fc.constantFrom("a", "b", "a.md", ".b", "ab~", "x", "a-b"), { minLength: 1, maxLength: 4 })
      .map((p) => p.join("/"))
    fc.assert(
      fc.property(glob, path, (g, p) => {
        // The rule as gitignore states it: some segment matches, or a path below a matching folder.
        const segment = globToRegExp(`/${g}`)
        const segments = p.split("/")
        const expected = segments.some((_, i) => segment.test(segments.slice(i).join("/")))
        expect([g, p, globToRegExp(g).test(p)]).toEqual([g, p, expected])
      }),
      { numRuns: 3000 }
    )
  })

  it("decides as the last matching line of the ignore file, whatever the mix of ! lines", () => {
    const glob = fc.constantFrom(
      "*.md",
      "content/",
      "a*",
      "**/b/**",
      "x/*.yaml",
      "*.local.yaml",
      "content/**/c.md",
      "[ab]*"
    )
    const line = fc.tuple(fc.boolean(), glob).map(([negate, g]) => `${negate ? "!" : ""}${g}`)
    const path = fc
      .tuple(
        fc.constantFrom("agents", "content", "config", "x", "node_modules"),
        fc.array(fc.constantFrom("a", "b", "c.md", "x", "a.local.yaml", "b.md"), { minLength: 1, maxLength: 4 })
      )
      .map(([top, rest]) => [top, ...rest].join("/"))
    fc.assert(
      fc.property(fc.array(line, { maxLength: 8 }), fc.array(path, { minLength: 1, maxLength: 10 }), (lines, paths) => {
        const m = makeMembership(lines.join("\n"))
        for (const p of paths) {
          // The rule as written: every line in order, the last match decides.
          let expected = isMemberPath(p) && makeMembership().includes(p)
          if (isMemberPath(p))
            for (const l of lines) if (globToRegExp(l.replace(/^!/, "")).test(p)) expected = l.startsWith("!")
          expect([p, m.includes(p)]).toEqual([p, expected])
        }
      }),
      { numRuns: 2000 }
    )
  })
})
