import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { Effect, Either, Redacted } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { LocalSync, type LocalSyncOptions } from "../../src/programs/localSync.js"
import { freshDatabase, query } from "../support/pg.js"

const root = mkdtempSync(join(tmpdir(), "agentsync-lswrites-"))
afterAll(() => rmSync(root, { recursive: true, force: true }))

const sync = (url: string, services: string, options: LocalSyncOptions) =>
  Effect.runPromise(
    Effect.either(LocalSync.sync(options)).pipe(
      Effect.provide(
        LocalSync.layer({ servicesPath: services, projectRoot: dirname(services), databaseUrl: Redacted.make(url) })
      )
    )
  )

/** Content written by hand (not as agentsync renders it), so a sync to disk would record other file bytes. */
const put = (services: string, path: string, text: string) => {
  mkdirSync(dirname(join(services, path)), { recursive: true })
  writeFileSync(join(services, path), text)
}

describe("a sync to disk that cannot write its files", () => {
  it("fails naming the file and commits nothing: the rows keep the file bytes they knew", async () => {
    const url = await freshDatabase("lsw")
    const src = join(root, "src", "services")
    for (let i = 0; i < 300; i++)
      put(src, `content/notes/n${i}.md`, `---\ntitle:   "Note ${i}"\nslug: n${i}\n---\n\nBody ${i}.\n`)
    const toDb = await sync(url, src, { direction: "ToDatabase", kinds: ["content"] })
    expect(Either.isRight(toDb)).toBe(true)
    const before = await query(url, "SELECT slug, file_sha256 FROM contents ORDER BY slug")
    expect(before).toHaveLength(300)
    expect(before.every((r) => typeof r.file_sha256 === "string")).toBe(true)

    // The target tree has a file where the source folder must go: no file can be written.
    const out = join(root, "out", "services")
    put(out, "content/notes", "not a folder")
    const toDisk = await sync(url, out, { direction: "ToDisk", kinds: ["content"] })
    expect(Either.isLeft(toDisk) && toDisk.left._tag).toBe("IoError")
    expect(await query(url, "SELECT slug, file_sha256 FROM contents ORDER BY slug")).toEqual(before)
    expect(readdirSync(join(out, "content"))).toEqual(["notes"])

    // Once the path is free, the same sync writes every file, byte for byte the file each row knew.
    rmSync(join(out, "content/notes"))
    const retry = await sync(url, out, { direction: "ToDisk", kinds: ["content"] })
    expect(Either.isRight(retry)).toBe(true)
    expect(readdirSync(join(out, "content/notes"))).toHaveLength(300)
    expect(await query(url, "SELECT slug, file_sha256 FROM contents ORDER BY slug")).toEqual(before)
    for (let i = 0; i < 300; i++) {
      expect(readFileSync(join(out, `content/notes/n${i}.md`), "utf8")).toBe(
        `---\ntitle:   "Note ${i}"\nslug: n${i}\n---\n\nBody ${i}.\n`
      )
    }
  })
})
