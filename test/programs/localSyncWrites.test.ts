import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { it } from "@effect/vitest"
import { Effect, Either, Redacted } from "effect"
import { afterAll, describe, expect } from "vitest"
import { LocalSync, type LocalSyncOptions } from "../../src/programs/localSync.js"
import { query, scopedDatabase } from "../support/pg.js"

const root = mkdtempSync(join(tmpdir(), "agentsync-lswrites-"))
afterAll(() => rmSync(root, { recursive: true, force: true }))

const sync = (url: string, services: string, options: LocalSyncOptions) =>
  Effect.either(LocalSync.sync(options)).pipe(
    Effect.provide(
      LocalSync.layer({ servicesPath: services, projectRoot: dirname(services), databaseUrl: Redacted.make(url) })
    )
  )

const fileShas = (url: string) =>
  Effect.promise(() => query(url, "SELECT slug, file_sha256 FROM contents ORDER BY slug"))

/** Content written by hand (not as agentsync renders it), so a sync to disk would record other file bytes. */
const put = (services: string, path: string, text: string) => {
  mkdirSync(dirname(join(services, path)), { recursive: true })
  writeFileSync(join(services, path), text)
}

describe("a sync to disk that cannot write its files", () => {
  it.scoped("fails naming the file and commits nothing: the rows keep the file bytes they knew", () =>
    Effect.gen(function* () {
      const url = yield* scopedDatabase("lsw")
      const src = join(root, "src", "services")
      for (let i = 0; i < 300; i++)
        put(src, `content/notes/n${i}.md`, `---\ntitle:   "Note ${i}"\nslug: n${i}\n---\n\nBody ${i}.\n`)
      const toDb = yield* sync(url, src, { direction: "ToDatabase", kinds: ["content"] })
      expect(Either.isRight(toDb)).toBe(true)
      const before = yield* fileShas(url)
      expect(before).toHaveLength(300)
      expect(before.every((r) => typeof r.file_sha256 === "string")).toBe(true)

      // The target tree has a file where the source folder must go: no file can be written.
      const out = join(root, "out", "services")
      put(out, "content/notes", "not a folder")
      const toDisk = yield* sync(url, out, { direction: "ToDisk", kinds: ["content"] })
      expect(Either.isLeft(toDisk) && toDisk.left._tag).toBe("IoError")
      expect(yield* fileShas(url)).toEqual(before)
      expect(readdirSync(join(out, "content"))).toEqual(["notes"])

      // Once the path is free, the same sync writes every file, byte for byte the file each row knew.
      rmSync(join(out, "content/notes"))
      const retry = yield* sync(url, out, { direction: "ToDisk", kinds: ["content"] })
      expect(Either.isRight(retry)).toBe(true)
      expect(readdirSync(join(out, "content/notes"))).toHaveLength(300)
      expect(yield* fileShas(url)).toEqual(before)
      for (let i = 0; i < 300; i++) {
        expect(readFileSync(join(out, `content/notes/n${i}.md`), "utf8")).toBe(
          `---\ntitle:   "Note ${i}"\nslug: n${i}\n---\n\nBody ${i}.\n`
        )
      }
    })
  )
})
