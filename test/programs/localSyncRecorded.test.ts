// A row edited in the database and written to its file is recorded as that file: its head is the one written, so
// a later sync to disk, into an empty tree too, writes the edited page, never the page as it was first read.
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { errorsOf, sha, localSync as sync, writeTree } from "../support/localSync.js"
import { scopedDatabase, sqlRows } from "../support/pg.js"
import { tempDirs, treeFiles } from "../support/tree.js"

const tempDir = tempDirs("recorded")

const TREE: Record<string, string> = {
  "content/docs/guide.md": "---\ntitle: Guide # shown in the menu\n---\n\nPlain.\n",
  "content/docs/toml.md": "+++\r\ntitle = 'Toml'\r\n+++\r\nBody\r\n",
  "content/docs/bare.md": "# Bare\n\nNo front matter.\n"
}

describe("an edit written to disk is recorded as its file", () => {
  it.scopedLive(
    "the row's head is the edited one: an empty tree gets the edited pages, and nothing is left to do",
    () =>
      Effect.gen(function* () {
        const url = yield* scopedDatabase("recorded")
        const src = writeTree(join(tempDir("src"), "services"), TREE)
        expect(errorsOf(yield* sync(url, src, { direction: "ToDatabase" }))).toEqual([])
        yield* sqlRows(url, "UPDATE contents SET title = 'Edited'")
        expect(errorsOf(yield* sync(url, src, { direction: "ToDisk" }))).toEqual([])
        const files = treeFiles(src, "latin1")
        expect(files).toEqual({
          "content/docs/guide.md": TREE["content/docs/guide.md"]!.replace("title: Guide", "title: Edited"),
          "content/docs/toml.md": TREE["content/docs/toml.md"]!.replace("'Toml'", "'Edited'"),
          "content/docs/bare.md": `---\ntitle: Edited\n---\n\n${TREE["content/docs/bare.md"]}`
        })
        expect(yield* sqlRows(url, "SELECT path, format, file_sha256 FROM contents ORDER BY path")).toEqual(
          ["bare.md", "guide.md", "toml.md"].map((path) => ({
            path,
            format: path === "toml.md" ? "toml" : "yaml",
            file_sha256: sha(files[`content/docs/${path}`]!)
          }))
        )
        const out = join(tempDir("out"), "services")
        expect(errorsOf(yield* sync(url, out, { direction: "ToDisk" }))).toEqual([])
        expect(treeFiles(out, "latin1")).toEqual(files)
        for (const d of ["ToDatabase", "ToDisk"] as const)
          expect((yield* sync(url, src, { direction: d })).plan).toEqual([])
      })
  )
})
