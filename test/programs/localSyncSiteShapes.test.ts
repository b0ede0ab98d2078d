// Pages as static-site generators hold them: an Eleventy page opening with a template tag, front matter whose
// language is named (`---json`), a Jekyll post written with CRLF lines. Local sync takes each as it is, gives it
// back byte for byte, and an edit in the database changes its fields in the page's own format and line breaks.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { LocalSync, type LocalSyncOptions } from "../../src/programs/localSync.js"
import { scopedDatabase, sqlRows } from "../support/pg.js"
import { tempDirs, treeFiles } from "../support/tree.js"

const tempDir = tempDirs("site-shapes")

const PAGES: Record<string, string> = {
  "content/site/docs/moved.md":
    '{% callout "info" %}This page has moved to <a href="/docs/">Get Started</a>.{% endcallout %}\n',
  "content/site/docs/data.md": '---json\n{\n  "title": "Data",\n  "order": 2\n}\n---\n\n# Data\n',
  "content/site/_posts/2009-05-24-windows.markdown":
    '---\r\nlayout: post\r\ntitle: "Test title"\r\ntag: "Ruby"\r\n---\r\n\r\nWritten on Windows.\r\n',
  "content/site/authors.md": "---js\n{ pagination: { data: 'authors', size: 1 } }\n---\n\n# Authors\n",
  "content/site/hugo.md": "+++\ntitle = 'Hugo'\n+++\n\nA Hugo page.\n"
}

const sync = (url: string, services: string, options: LocalSyncOptions) =>
  LocalSync.sync(options).pipe(
    Effect.provide(
      LocalSync.layer({ servicesPath: services, projectRoot: dirname(services), databaseUrl: Redacted.make(url) })
    )
  )

const write = (root: string, files: Record<string, string>) => {
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true })
    writeFileSync(join(root, path), text)
  }
}

describe("local sync and the pages of static-site generators", () => {
  it.scopedLive("reads each, gives it back byte for byte, and writes an edit in the page's own format and lines", () =>
    Effect.gen(function* () {
      const url = yield* scopedDatabase("site_shapes")
      const a = join(tempDir("a"), "services")
      write(a, PAGES)
      const toDb = yield* sync(url, a, { direction: "ToDatabase" })
      expect(toDb.results.flatMap((x) => x.errors.map((e) => e.message))).toEqual([])
      const rows = yield* sqlRows(url, "SELECT slug, format, title FROM contents ORDER BY slug")
      expect(rows).toEqual([
        { slug: "_posts/2009-05-24-windows", format: "yaml", title: "Test title" },
        { slug: "authors", format: "none", title: "Authors" },
        { slug: "docs/data", format: "json", title: "Data" },
        { slug: "docs/moved", format: "none", title: "moved" },
        { slug: "hugo", format: "toml", title: "Hugo" }
      ])

      const b = join(tempDir("b"), "services")
      mkdirSync(b, { recursive: true })
      yield* sync(url, b, { direction: "ToDisk" })
      expect(treeFiles(b, "latin1")).toEqual(treeFiles(a, "latin1"))

      yield* sqlRows(url, "UPDATE contents SET title = 'Edited', description = 'From the database'")
      // TOML holds no null: no TOML text reads back as this row, and YAML in its place would change the page.
      yield* sqlRows(url, `UPDATE contents SET extra = '{"note": null}' WHERE slug = 'hugo'`)
      const edited = yield* sync(url, b, { direction: "ToDisk" })
      // Front matter that is code (`---js`), or a value the page's format cannot hold, cannot take the edit:
      // refused at the file's line, the file left as it is; every other page is written.
      expect(edited.results.flatMap((x) => x.errors.map((e) => e.message)).sort()).toEqual([
        "content/site/authors.md:1: front matter in js cannot be written from the database; the file is left as it is",
        "content/site/hugo.md:1: this edit of its TOML front matter cannot be written from the database (no text in that format reads back as the database's fields); the file is left as it is"
      ])
      const read = (path: string) => readFileSync(join(b, path), "utf8")
      expect(read("content/site/authors.md")).toBe(PAGES["content/site/authors.md"])
      expect(read("content/site/hugo.md")).toBe(PAGES["content/site/hugo.md"])
      expect(read("content/site/_posts/2009-05-24-windows.markdown")).toBe(
        '---\r\nlayout: post\r\ntitle: "Edited"\r\ntag: "Ruby"\r\ndescription: From the database\r\n---\r\n\r\nWritten on Windows.\r\n'
      )
      expect(read("content/site/docs/data.md")).toBe(
        '---json\n{\n  "title": "Edited",\n  "order": 2,\n  "description": "From the database"\n}\n---\n\n# Data\n'
      )
      expect(read("content/site/docs/moved.md")).toBe(
        `---\ntitle: Edited\ndescription: From the database\n---\n\n${PAGES["content/site/docs/moved.md"]}`
      )
      rmSync(b, { recursive: true })
    })
  )
})
