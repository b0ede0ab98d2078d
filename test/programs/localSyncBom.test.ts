// A byte order mark at the start of a file, as some real sites' pages have one: local sync keeps it, both ways.
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { LocalSync, type LocalSyncOptions } from "../../src/programs/localSync.js"
import { scopedDatabase } from "../support/pg.js"
import { tempDirs, treeFiles } from "../support/tree.js"

const tempDir = tempDirs("bom")
const EXAMPLE = join(import.meta.dirname, "../../examples/project/services")
const BOM = "\uFEFF"

// Pages of a content source and an agent's prompt, each starting with a BOM: with no front matter, with YAML,
// TOML and JSON front matter, and an MDX page.
const WITH_BOM: Record<string, string> = {
  "content/site/plain.md": `${BOM}# Plugins {#plugins}\n\nNo front matter.\n`,
  "content/site/yaml.md": `${BOM}---\ntitle: YAML\n---\n\nBody.\n`,
  "content/site/toml.md": `${BOM}+++\ntitle = "TOML"\n+++\n\nBody.\n`,
  "content/site/json.md": `${BOM}{ "title": "JSON" }\n\nBody.\n`,
  "content/site/page.mdx": `${BOM}# MDX\n\n<X />\n`,
  "agents/editor/system_prompt.md": `${BOM}You edit.\n`
}

const sync = (url: string, services: string, options: LocalSyncOptions) =>
  LocalSync.sync(options).pipe(
    Effect.provide(
      LocalSync.layer({ servicesPath: services, projectRoot: dirname(services), databaseUrl: Redacted.make(url) })
    )
  )

describe("local sync and a byte order mark", () => {
  it.scopedLive("keeps it: to the database and back into an empty tree, every file byte for byte", () =>
    Effect.gen(function* () {
      const url = yield* scopedDatabase("bom")
      const a = join(tempDir("a"), "services")
      cpSync(EXAMPLE, a, { recursive: true })
      // A YAML file with one is read as without it.
      const config = join(a, "agents/editor/config.yaml")
      writeFileSync(config, BOM + readFileSync(config, "utf8"))
      for (const [path, text] of Object.entries(WITH_BOM)) {
        mkdirSync(dirname(join(a, path)), { recursive: true })
        writeFileSync(join(a, path), text)
      }
      const toDb = yield* sync(url, a, { direction: "ToDatabase" })
      expect(toDb.results.flatMap((x) => x.errors.map((e) => e.message))).toEqual([])

      const b = join(tempDir("b"), "services")
      cpSync(EXAMPLE, b, { recursive: true })
      rmSync(join(b, "content"), { recursive: true })
      rmSync(join(b, "agents"), { recursive: true })
      yield* sync(url, b, { direction: "ToDisk" })
      for (const path of Object.keys(WITH_BOM))
        expect(readFileSync(join(b, path), "utf8").startsWith(BOM), path).toBe(true)
      const content = (root: string) =>
        Object.fromEntries(
          Object.entries(treeFiles(root, "latin1")).filter(([p]) => p.startsWith("content/") || p.startsWith("agents/"))
        )
      expect(content(b)).toEqual(content(a))
      // Settled: nothing to do either way.
      for (const direction of ["ToDatabase", "ToDisk"] as const)
        expect((yield* sync(url, a, { direction })).plan).toEqual([])
    })
  )
})
