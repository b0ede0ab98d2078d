// MDX pages on the real PostgreSQL: items like Markdown pages (edited in a row, written back with only that field
// changed), and a database that stored them as files beside items moves them to rows without touching a file.
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { LocalSync } from "../../src/programs/localSync.js"
import * as Repos from "../../src/services/repos/index.js"
import { errorsOf, mtimes, localRun as run, sha, localSync as sync, writeTree } from "../support/localSync.js"
import { scopedDatabase, sqlRows } from "../support/pg.js"
import { tempDirs, treeFiles } from "../support/tree.js"

const tempDir = tempDirs("mdx")

const INTRO = `---
title: Introduction # shown in the sidebar
sidebar_position: 1
tags: [start]
---

import Tabs from '@theme/Tabs';
import TabItem from '@theme/TabItem';
export const Since = ({v}) => <span>since {v}</span>;

# Introduction

<Tabs groupId="os">
  <TabItem value="linux">Run \`agentsync\`. <Since v={2} /></TabItem>
</Tabs>
`
const TABS = `{/* This page has no front matter: a leading brace is an expression. */}
# Tabs

<Tabs>{props.children}</Tabs>
`
const TREE: Record<string, string> = {
  "content/docs/intro.mdx": INTRO,
  "content/docs/tabs/index.mdx": TABS,
  "content/docs/tabs/shot.png": "\u0089PNG not really",
  "content/docs/guide.md": "---\ntitle: Guide\n---\n\nPlain Markdown.\n",
  "content/blog/post.mdx": '+++\ntitle = "Post"\ndate = 2024-01-02\n+++\n\nimport X from "./x"\n\n<X />\n'
}

describe("MDX pages are content items", () => {
  it.scopedLive("a page edited in the database is written back with only that field changed", () =>
    Effect.gen(function* () {
      const url = yield* scopedDatabase("mdx")
      const src = writeTree(join(tempDir("src"), "services"), TREE)
      const first = yield* sync(url, src, { direction: "ToDatabase" })
      expect(errorsOf(first)).toEqual([])
      expect(
        yield* sqlRows(url, "SELECT source, slug, path, format, title FROM contents ORDER BY source, slug")
      ).toEqual([
        { source: "blog", slug: "post", path: "post.mdx", format: "toml", title: "Post" },
        { source: "docs", slug: "guide", path: "guide.md", format: "yaml", title: "Guide" },
        { source: "docs", slug: "intro", path: "intro.mdx", format: "yaml", title: "Introduction" },
        { source: "docs", slug: "tabs", path: "tabs/index.mdx", format: "none", title: "Tabs" }
      ])
      // The imports, exports and JSX are the body; only the image is a file beside an item, owned by its bundle.
      const [intro] = yield* sqlRows<{ body: string }>(url, "SELECT body FROM contents WHERE slug = 'intro'")
      expect(intro!.body).toBe(INTRO.slice(INTRO.indexOf("import Tabs")))
      expect(yield* sqlRows(url, "SELECT path, owner FROM item_files")).toEqual([
        { path: "content/docs/tabs/shot.png", owner: "docs/tabs" }
      ])

      // Into an empty folder: every file byte for byte.
      const out = join(tempDir("out"), "services")
      expect(errorsOf(yield* sync(url, out, { direction: "ToDisk" }))).toEqual([])
      expect(treeFiles(out, "latin1")).toEqual(treeFiles(src, "latin1"))

      // Edited in SQL: only the edited lines change, the comment and the body stay; the row then knows its file.
      yield* sqlRows(url, "UPDATE contents SET title = 'Getting started' WHERE slug = 'intro'")
      yield* sqlRows(url, "UPDATE contents SET description = 'Tabbed' WHERE slug = 'tabs'")
      const diff = yield* run(url, src, LocalSync.diff(["content"]))
      expect(diff.kinds[0]!.changes.map((c) => `${c.status} ${c.key}`)).toEqual([
        "Modified docs/intro",
        "Modified docs/tabs"
      ])
      const back = yield* sync(url, src, { direction: "ToDisk" })
      expect(errorsOf(back)).toEqual([])
      expect(back.plan.map((s) => `${s.action} ${s.key}`)).toEqual(["write docs/intro", "write docs/tabs"])
      const files = treeFiles(src, "latin1")
      expect(files["content/docs/intro.mdx"]).toBe(INTRO.replace("title: Introduction #", "title: Getting started #"))
      expect(files["content/docs/tabs/index.mdx"]).toBe(`---\ndescription: Tabbed\n---\n\n${TABS}`)
      expect(yield* sqlRows(url, "SELECT file_sha256 FROM contents WHERE slug = 'intro'")).toEqual([
        { file_sha256: sha(files["content/docs/intro.mdx"]!) }
      ])
      const again = yield* sync(url, src, { direction: "ToDatabase" })
      expect(again.plan).toEqual([])

      // A row inserted by hand (no file, no path) becomes a Markdown page, whatever its neighbours are.
      yield* sqlRows(
        url,
        `INSERT INTO contents (source, slug, title, kind, description, author, keywords, public, tags, body, version_hash)
         VALUES ('docs', 'new', 'New', 'article', '', '', '{}', true, '{}', 'Hi.', '')`
      )
      const added = yield* sync(url, src, { direction: "ToDisk" })
      expect(added.plan.map((s) => s.paths)).toEqual([["content/docs/new.md"]])
    })
  )

  it.scopedLive(
    "a database that stored MDX pages as files beside items moves them to rows on the next sync; no file changes",
    () =>
      Effect.gen(function* () {
        for (const direction of ["ToDatabase", "ToDisk"] as const) {
          const url = yield* scopedDatabase("mdxold")
          const src = writeTree(join(tempDir("old"), "services"), TREE)
          yield* sync(url, src, { direction: "ToDatabase" })
          // What an earlier version left: each .mdx page a row of item_files over its bytes, written by the same
          // repository; the image of a folder whose index.mdx was not an item belonged to no bundle.
          yield* sqlRows(url, "DELETE FROM contents WHERE path LIKE '%.mdx'")
          const pages = Object.keys(TREE).filter((p) => p.endsWith(".mdx"))
          yield* run(
            url,
            src,
            Effect.flatMap(Repos.ItemFilesRepo, (r) =>
              r.upsert(
                pages.map((path) => {
                  const bytes = readFileSync(join(src, path))
                  return {
                    path,
                    kind: "content",
                    owner: undefined,
                    sha: sha(TREE[path]!),
                    size: bytes.length,
                    mode: 0o644,
                    bytes
                  }
                })
              )
            )
          )
          yield* sqlRows(url, "UPDATE item_files SET owner = NULL")
          const before = { files: treeFiles(src, "latin1"), times: mtimes(src) }

          const diff = yield* run(url, src, LocalSync.diff())
          for (const k of diff.kinds) expect(k.changes, k.kind).toEqual([])
          const dry = yield* sync(url, src, { direction, dryRun: true })
          expect(dry.plan).toEqual([])
          const migrated = yield* sync(url, src, { direction, deleteOrphans: true })
          expect(errorsOf(migrated)).toEqual([])
          expect(migrated.plan).toEqual([])
          expect({ files: treeFiles(src, "latin1"), times: mtimes(src) }).toEqual(before)
          expect(yield* sqlRows(url, "SELECT path FROM item_files")).toEqual([{ path: "content/docs/tabs/shot.png" }])
          expect(
            yield* sqlRows(url, "SELECT source, path, file_sha256 FROM contents WHERE path LIKE '%.mdx' ORDER BY path")
          ).toEqual(
            pages
              .map((p) => p.split("/"))
              .map(([, source, ...rest]) => ({
                source,
                path: rest.join("/"),
                file_sha256: sha(TREE[`content/${source}/${rest.join("/")}`]!)
              }))
              .sort((a, b) => (a.path < b.path ? -1 : 1))
          )
          // Settled: both directions have nothing to do, and the pages' bytes left the database's file store.
          for (const d of ["ToDatabase", "ToDisk"] as const)
            expect((yield* sync(url, src, { direction: d, deleteOrphans: true })).plan).toEqual([])
          expect(yield* sqlRows(url, "SELECT count(*)::int AS n FROM item_blobs")).toEqual([{ n: 1 }])
          // The image now belongs to its bundle (set by the sync to the database, which reads the final tree).
          expect(yield* sqlRows(url, "SELECT owner FROM item_files")).toEqual([{ owner: "docs/tabs" }])
        }
      })
  )
})
