// A page whose front matter follows blank lines (Hugo reads it) on the real PostgreSQL: its fields are rows, it
// comes back byte for byte, and a row an earlier version stored with the page as body is read again on the first
// run after the upgrade: one plain update, the file untouched, no second block.
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { contentHash } from "../../src/domain/hash.js"
import { LocalSync } from "../../src/programs/localSync.js"
import { blankContent } from "../support/content.js"
import { errorsOf, mtimes, localRun as run, sha, localSync as sync, writeTree } from "../support/localSync.js"
import { scopedDatabase, sqlRows } from "../support/pg.js"
import { tempDirs, treeFiles } from "../support/tree.js"

const tempDir = tempDirs("blanks")

const INSTALL = "\n\n---\ntitle: Install\nweight: 20\n---\n\n# Install guide\n\nSteps.\n"
const TREE: Record<string, string> = {
  "content/docs/install.md": INSTALL,
  "content/docs/toml.md": "\r\n+++\r\ntitle = 'Toml'\r\n+++\r\nBody\r\n",
  "content/docs/guide.md": "---\ntitle: Guide\n---\n\nPlain.\n"
}

const row = (url: string) =>
  sqlRows(url, "SELECT format, head, title, description, extra, body, file_sha256 FROM contents WHERE slug = 'install'")
const asNow = {
  format: "yaml",
  head: "\n\n---\ntitle: Install\nweight: 20\n---\n\n",
  title: "Install",
  description: "",
  extra: { weight: 20 },
  body: "# Install guide\n\nSteps.\n",
  file_sha256: sha(INSTALL)
}

/**
 * The row as an earlier version left it, synced and trusted: no front matter, the whole page its body, the
 * title from its heading. Then the project's migrations are as they were before this version's.
 */
const asStoredBefore = (url: string) =>
  Effect.gen(function* () {
    yield* sqlRows(
      url,
      "UPDATE contents SET format = 'none', head = '', title = 'Install guide', extra = '{}', body = $1 WHERE slug = 'install'",
      [INSTALL]
    )
    const old = blankContent({
      source: "docs",
      slug: "install",
      path: "install.md",
      title: "Install guide",
      body: INSTALL
    })
    // Only the hashes: the trigger leaves them as set (a sync records them so).
    yield* sqlRows(url, "UPDATE contents SET version_hash = $1, file_sha256 = $2 WHERE slug = 'install'", [
      contentHash(old),
      sha(INSTALL)
    ])
    yield* sqlRows(url, "DELETE FROM agentsync_migrations WHERE migration_id = 6")
  })

describe("front matter after blank lines", () => {
  it.scopedLive("its fields are columns, and it comes back byte for byte; an edit keeps the blank lines", () =>
    Effect.gen(function* () {
      const url = yield* scopedDatabase("blanks")
      const src = writeTree(join(tempDir("src"), "services"), TREE)
      expect(errorsOf(yield* sync(url, src, { direction: "ToDatabase" }))).toEqual([])
      expect(yield* row(url)).toEqual([asNow])
      const out = join(tempDir("out"), "services")
      expect(errorsOf(yield* sync(url, out, { direction: "ToDisk" }))).toEqual([])
      expect(treeFiles(out, "latin1")).toEqual(treeFiles(src, "latin1"))
      yield* sqlRows(url, "UPDATE contents SET title = 'Installing' WHERE slug IN ('install', 'toml', 'guide')")
      expect(errorsOf(yield* sync(url, src, { direction: "ToDisk" }))).toEqual([])
      const files = treeFiles(src, "latin1")
      expect(files["content/docs/install.md"]).toBe(INSTALL.replace("title: Install\n", "title: Installing\n"))
      expect(files["content/docs/toml.md"]).toBe(TREE["content/docs/toml.md"]!.replace("'Toml'", "'Installing'"))
      // The rows recorded with the edited files' hashes render those files: into an empty tree, the edited pages.
      const again = join(tempDir("again"), "services")
      expect(errorsOf(yield* sync(url, again, { direction: "ToDisk" }))).toEqual([])
      expect(treeFiles(again, "latin1")).toEqual(files)
    })
  )

  it.scopedLive(
    "an opener after blank lines that is never closed or not a map of fields: the page syncs as body, and an edit gets a block at its first byte",
    () =>
      Effect.gen(function* () {
        const url = yield* scopedDatabase("blanksbody")
        const pages: Record<string, string> = {
          "content/docs/rules.md": "\n\n---\n\nSome paragraph text\n\n---\n\nMore\n",
          "content/docs/open.md": "\n\n---\n\n# Title\n\ntext\n"
        }
        const src = writeTree(join(tempDir("body"), "services"), pages)
        expect(errorsOf(yield* sync(url, src, { direction: "ToDatabase" }))).toEqual([])
        expect(yield* sqlRows(url, "SELECT path, format, head, body FROM contents ORDER BY path")).toEqual([
          { path: "open.md", format: "none", head: "", body: pages["content/docs/open.md"] },
          { path: "rules.md", format: "none", head: "", body: pages["content/docs/rules.md"] }
        ])
        yield* sqlRows(url, "UPDATE contents SET title = 'Edited'")
        expect(errorsOf(yield* sync(url, src, { direction: "ToDisk" }))).toEqual([])
        const edited = Object.fromEntries(
          Object.entries(pages).map(([path, text]) => [path, `---\ntitle: Edited\n---\n\n${text}`])
        )
        expect(treeFiles(src, "latin1")).toEqual(edited)
        for (const d of ["ToDatabase", "ToDisk"] as const)
          expect((yield* sync(url, src, { direction: d })).plan).toEqual([])
        const out = join(tempDir("bodyout"), "services")
        expect(errorsOf(yield* sync(url, out, { direction: "ToDisk" }))).toEqual([])
        expect(treeFiles(out, "latin1")).toEqual(edited)
      })
  )

  it.scopedLive(
    "a row an earlier version stored with the page as its body: the first run after the upgrade is one plain update either way, the file untouched",
    () =>
      Effect.gen(function* () {
        for (const direction of ["ToDatabase", "ToDisk"] as const) {
          const url = yield* scopedDatabase("blanksold")
          const src = writeTree(join(tempDir(direction), "services"), TREE)
          yield* sync(url, src, { direction: "ToDatabase" })
          yield* asStoredBefore(url)
          const before = { files: treeFiles(src, "latin1"), times: mtimes(src) }

          // The diff names the page once as Modified: the database holds the page as body, the disk its fields.
          const diff = yield* run(url, src, LocalSync.diff(["content"]))
          expect(diff.kinds[0]!.changes).toEqual([{ key: "docs/install", status: "Modified" }])
          const upgraded = yield* sync(url, src, { direction })
          expect(errorsOf(upgraded)).toEqual([])
          expect(upgraded.plan.map((s) => `${s.action} ${s.key} ${s.status}`)).toEqual([
            `${direction === "ToDatabase" ? "upsert" : "write"} docs/install Modified`
          ])
          expect(yield* row(url)).toEqual([asNow])
          // Synced to disk, the page is its own bytes: no second block, no blank line lost, and the file is not
          // written again (its bytes are the row's), so a site's server is not woken by it.
          expect(treeFiles(src, "latin1")).toEqual(before.files)
          expect(mtimes(src)).toEqual(before.times)
          // Settled: nothing to do either way.
          for (const d of ["ToDatabase", "ToDisk"] as const)
            expect((yield* sync(url, src, { direction: d })).plan).toEqual([])
        }
      })
  )

  it.scopedLive(
    "an old row edited in the database before the upgrade: its edit lands in the page's block, in place",
    () =>
      Effect.gen(function* () {
        const url = yield* scopedDatabase("blanksedit")
        const src = writeTree(join(tempDir("edit"), "services"), TREE)
        yield* sync(url, src, { direction: "ToDatabase" })
        yield* asStoredBefore(url)
        // Edited by hand under the old reading: a new description (the old reading had none) and an extra field.
        yield* sqlRows(
          url,
          `UPDATE contents SET description = 'How to', extra = '{"draft": true}' WHERE slug = 'install'`
        )
        const back = yield* sync(url, src, { direction: "ToDisk" })
        expect(errorsOf(back)).toEqual([])
        const text = INSTALL.replace("weight: 20\n", "weight: 20\ndraft: true\ndescription: How to\n")
        expect(treeFiles(src, "latin1")["content/docs/install.md"]).toBe(text)
        expect(yield* row(url)).toEqual([
          {
            ...asNow,
            head: "\n\n---\ntitle: Install\nweight: 20\ndraft: true\ndescription: How to\n---\n\n",
            description: "How to",
            extra: { weight: 20, draft: true },
            file_sha256: sha(text)
          }
        ])
        for (const d of ["ToDatabase", "ToDisk"] as const)
          expect((yield* sync(url, src, { direction: d })).plan).toEqual([])
      })
  )
})
