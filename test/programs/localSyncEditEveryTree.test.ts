// An edit made in the database reaches every tree synced from it: the first sync to disk that writes it must not
// leave the row holding its old front matter, or the next tree (a second checkout, an empty folder) is written the
// page as it was before the edit, and a sync to the database from there undoes the edit.
import { mkdirSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { LocalSync, type LocalSyncOptions } from "../../src/programs/localSync.js"
import { scopedDatabase, sqlRows } from "../support/pg.js"
import { tempDirs, treeFiles } from "../support/tree.js"

const tempDir = tempDirs("edit-every-tree")

const PAGES: Record<string, string> = {
  "content/docs/intro.md": "---\ntitle: 'Node.js 18 is now available!'\nlayout: post\n---\n\nBody.\n",
  "content/docs/tabs.md": "# Tabs\n\nOrganize content by context.\n",
  "content/docs/setup.md": '+++\ntitle = "Setup"\nweight = 2\n+++\n\nSteps.\n'
}

const layer = (url: string, services: string) =>
  LocalSync.layer({ servicesPath: services, projectRoot: dirname(services), databaseUrl: Redacted.make(url) })
const sync = (url: string, services: string, options: LocalSyncOptions) =>
  LocalSync.sync(options).pipe(Effect.provide(layer(url, services)))
const changed = (url: string, services: string) =>
  LocalSync.diff(["content"]).pipe(
    Effect.provide(layer(url, services)),
    Effect.map((d) => d.kinds.flatMap((k) => k.changes.map((c) => `${c.status} ${c.key}`)))
  )

/** The rows the next run cannot trust (and so renders again). */
const untrusted = (url: string) =>
  sqlRows<{ slug: string }>(
    url,
    "SELECT slug FROM contents WHERE version_hash = '' OR file_sha256 IS NULL ORDER BY slug"
  ).pipe(Effect.map((rows) => rows.map((r) => r.slug)))

/** A tree holding the pages as they were before any edit. */
const pagesTree = (name: string) => {
  const services = join(tempDir(name), "services")
  for (const [path, text] of Object.entries(PAGES)) {
    mkdirSync(dirname(join(services, path)), { recursive: true })
    writeFileSync(join(services, path), text)
  }
  return services
}

const emptyTree = (name: string) => {
  const services = join(tempDir(name), "services")
  mkdirSync(join(services, "content"), { recursive: true })
  return services
}

describe("an edit from the database, written to one tree", () => {
  it.scopedLive("is written to the next tree too, and the first shows no change", () =>
    Effect.gen(function* () {
      const url = yield* scopedDatabase("edit_every_tree")
      const a = pagesTree("a")
      yield* sync(url, a, { direction: "ToDatabase" })
      yield* sqlRows(url, "UPDATE contents SET title = title || ' (edited)'")
      const first = yield* sync(url, a, { direction: "ToDisk" })
      expect(first.results.flatMap((r) => r.errors)).toEqual([])
      const edited = treeFiles(a)
      expect(edited["content/docs/intro.md"]).toBe(
        "---\ntitle: 'Node.js 18 is now available! (edited)'\nlayout: post\n---\n\nBody.\n"
      )
      expect(edited["content/docs/tabs.md"]).toBe(
        "---\ntitle: Tabs (edited)\n---\n\n# Tabs\n\nOrganize content by context.\n"
      )
      expect(edited["content/docs/setup.md"]).toBe('+++\ntitle = "Setup (edited)"\nweight = 2\n+++\n\nSteps.\n')
      expect(yield* changed(url, a)).toEqual([])

      // A second tree, empty, gets the edited pages; so does one still holding the pages from before the edit.
      const b = emptyTree("b")
      yield* sync(url, b, { direction: "ToDisk" })
      expect(treeFiles(b)).toEqual(edited)
      const c = pagesTree("c")
      expect((yield* changed(url, c)).sort()).toEqual([
        "Modified docs/intro",
        "Modified docs/setup",
        "Modified docs/tabs"
      ])
      yield* sync(url, c, { direction: "ToDisk" })
      expect(treeFiles(c)).toEqual(edited)

      // The page that had no front matter is one with YAML front matter now: a second edit changes its line only.
      yield* sqlRows(url, "UPDATE contents SET title = 'Tabs, again' WHERE slug = 'tabs'")
      yield* sync(url, b, { direction: "ToDisk" })
      expect(treeFiles(b)["content/docs/tabs.md"]).toBe(
        "---\ntitle: Tabs, again\n---\n\n# Tabs\n\nOrganize content by context.\n"
      )
      const d = emptyTree("d")
      yield* sync(url, d, { direction: "ToDisk" })
      expect(treeFiles(d)).toEqual(treeFiles(b))
    })
  )

  it.scopedLive("as the server leaves a row (no head, no file digest), one run to disk leaves every row trusted", () =>
    Effect.gen(function* () {
      const url = yield* scopedDatabase("edit_every_tree_api")
      yield* sync(url, pagesTree("api-a"), { direction: "ToDatabase" })
      // A row written through the API: its hash true, no head and no file recorded.
      yield* sqlRows(url, "ALTER TABLE contents DISABLE TRIGGER contents_stale_hash")
      yield* sqlRows(url, "UPDATE contents SET head = NULL, file_sha256 = NULL")
      yield* sqlRows(url, "ALTER TABLE contents ENABLE TRIGGER contents_stale_hash")
      expect(yield* untrusted(url)).toEqual(["intro", "setup", "tabs"])
      const b = emptyTree("api-b")
      const first = yield* sync(url, b, { direction: "ToDisk" })
      expect(first.results.flatMap((r) => r.errors)).toEqual([])
      expect(yield* untrusted(url)).toEqual([])
      expect(yield* changed(url, b)).toEqual([])
      // A hand edit still makes a row untrusted.
      yield* sqlRows(url, "UPDATE contents SET title = 'Tabs, edited' WHERE slug = 'tabs'")
      expect(yield* untrusted(url)).toEqual(["tabs"])
    })
  )

  it.scopedLive("a written page that does not read back as its row is named, not an error", () =>
    Effect.gen(function* () {
      const url = yield* scopedDatabase("edit_every_tree_unrecorded")
      const a = pagesTree("unrecorded-a")
      yield* sync(url, a, { direction: "ToDatabase" })
      // An extra field shadowing a known one: the page written reads back with the other title.
      yield* sqlRows(url, `UPDATE contents SET extra = '{"title": "Shadowed"}'::json WHERE slug = 'tabs'`)
      const first = yield* sync(url, a, { direction: "ToDisk" })
      expect(first.results.flatMap((r) => r.errors)).toEqual([])
      expect(first.unrecorded).toEqual(["content/docs/tabs.md"])
      expect(yield* untrusted(url)).toEqual(["tabs"])
    })
  )

  it.scopedLive("recorded by an older version with the head it was read with, is rendered, and recorded anew", () =>
    Effect.gen(function* () {
      const url = yield* scopedDatabase("edit_every_tree_old")
      const a = pagesTree("old-a")
      yield* sync(url, a, { direction: "ToDatabase" })
      const heads = yield* sqlRows<{ slug: string; head: string | null; format: string }>(
        url,
        "SELECT slug, head, format FROM contents"
      )
      yield* sqlRows(url, "UPDATE contents SET title = title || ' (edited)'")
      yield* sync(url, a, { direction: "ToDisk" })
      const edited = treeFiles(a)
      // What an older version left: each row trusted with the edited file's digest, and its head from before the edit.
      yield* sqlRows(url, "ALTER TABLE contents DISABLE TRIGGER contents_stale_hash")
      for (const h of heads)
        yield* sqlRows(url, `UPDATE contents SET head = $1, format = $2 WHERE slug = $3`, [h.head, h.format, h.slug])
      yield* sqlRows(url, "ALTER TABLE contents ENABLE TRIGGER contents_stale_hash")

      const b = emptyTree("old-b")
      yield* sync(url, b, { direction: "ToDisk" })
      expect(treeFiles(b)).toEqual(edited)
      // One run heals them: the next one trusts every row.
      expect(yield* untrusted(url)).toEqual([])
      expect(yield* changed(url, b)).toEqual([])
      const heads2 = yield* sqlRows<{ slug: string; head: string }>(
        url,
        "SELECT slug, head FROM contents ORDER BY slug"
      )
      expect(heads2.map((h) => h.head.includes("(edited)"))).toEqual([true, true, true])
    })
  )
})
