import { describe, expect, it } from "vitest"
import { globToRegExp, IGNORE_FILE, isMemberPath, makeMembership } from "../../src/domain/membership.js"

describe("bundle membership", () => {
  it("carries the membership folders and the ignore file, nothing else", () => {
    for (const p of ["agents/a/config.yaml", "content/blog/x/index.md", "hooks/pre.sh", IGNORE_FILE]) expect(isMemberPath(p)).toBe(true)
    for (const p of ["node_modules/x.js", "README.md", ".git/config", "agentsx/a"]) expect(isMemberPath(p)).toBe(false)
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
})
