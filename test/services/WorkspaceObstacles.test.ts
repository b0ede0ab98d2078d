import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { findObstacles } from "../../src/services/WorkspaceObstacles.js"
import { bytePath, latin1 } from "../support/rawNames.js"

const root = mkdtempSync(join(tmpdir(), "agentsync-obstacles-"))
afterAll(() => rmSync(root, { recursive: true, force: true }))

/** A fresh tree: `files` written, `dirs` made, `links` pointing at their targets. */
const treeWith = (
  name: string,
  spec: { files?: Array<string>; dirs?: Array<string>; links?: Record<string, string> }
) => {
  const dir = join(root, name)
  mkdirSync(dir)
  for (const d of spec.dirs ?? []) mkdirSync(join(dir, d), { recursive: true })
  for (const f of spec.files ?? []) {
    mkdirSync(join(dir, f, ".."), { recursive: true })
    writeFileSync(join(dir, f), f)
  }
  for (const [l, target] of Object.entries(spec.links ?? {})) symlinkSync(target, join(dir, l))
  return dir
}

describe("findObstacles", () => {
  it("names a file where a folder must go, a link the pull would write through, a folder with kept files where a file must go", () => {
    const dir = treeWith("blocked", {
      files: ["a", "c/keep.md", "c/gone.md", "e/gone.md"],
      dirs: ["real"],
      links: { b: "real" }
    })
    const found = findObstacles(dir, ["a/x.md", "b/y.md", "c", "e", "new/z.md"], new Set(["e/gone.md", "c/gone.md"]))
    expect(found).toEqual([
      "a is a file here, but the pull would make it a folder (a/x.md)",
      "b is a symbolic link here; a pull never writes through one (b/y.md)",
      "c is a folder here holding c/keep.md, but the pull would make it a file"
    ])
  })

  it("names a file of a folder in the way whose name is not UTF-8 by its bytes", () => {
    const dir = treeWith("bytes", { files: ["c/gone.md"], dirs: [] })
    writeFileSync(bytePath(dir, "c", latin1("café.md")), "x")
    expect(findObstacles(dir, ["c"], new Set(["c/gone.md"]))).toEqual([
      "c is a folder here holding c/caf\\xe9.md, but the pull would make it a file"
    ])
  })

  it("lets through what the pull deletes first: a file or link in a folder's place, a folder emptied of its files", () => {
    const dir = treeWith("cleared", { files: ["a", "c/gone.md"], dirs: ["real"], links: { b: "real" } })
    expect(findObstacles(dir, ["a/x.md", "b/y.md", "c"], new Set(["a", "b", "c/gone.md"]))).toEqual([])
  })

  it("finds nothing in the way of paths under folders that are not there, however deep", () => {
    const dir = treeWith("fresh", { files: ["top.md"] })
    const write = Array.from({ length: 200 }, (_, i) => `n${i % 5}/deep/${i}.md`)
    expect(findObstacles(dir, write, new Set())).toEqual([])
  })
})
