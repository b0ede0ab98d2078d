// The embedded database's template on real PGlite: a creation copies it rather than running initdb, and a missing, half-written, damaged or unwritable one leaves the creation to initdb.
// PGlite's initdb costs seconds of CPU, so the file runs it once for a template the other tests copy into caches of
// their own, and only where the creation's own fallback is what is checked: a damaged template (a missing file, and a
// copy PGlite cannot open), two creations at once, a cache that cannot be written. Every other kind of damage or
// untrusted cache is checked where a creation decides (`restore` refuses it, removes it, copies nothing), the fallback
// a refusal leads to being the same initdb and save as the damaged template's.
import {
  chmodSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync
} from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { SqlClient } from "@effect/sql"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Option } from "effect"
import * as Template from "../../src/services/embeddedTemplate.js"
import * as Database from "../../src/services/ProjectDatabase.js"

const temps: Array<string> = []
const tempDir = (name: string) => {
  const dir = mkdtempSync(join(tmpdir(), `agentsync-template-${name}-`))
  temps.push(dir)
  return dir
}
const cacheBefore = process.env.XDG_CACHE_HOME
afterAll(() => {
  if (cacheBefore === undefined) delete process.env.XDG_CACHE_HOME
  else process.env.XDG_CACHE_HOME = cacheBefore
  for (const d of temps) rmSync(d, { recursive: true, force: true })
  // A few dozen data directories: at a load average of 13 their removal ran past the default 60 s.
}, 300_000)

const templates = (cache: string) => join(cache, "agentsync", "pgdata-templates")
const entries = (cache: string) => (existsSync(templates(cache)) ? readdirSync(templates(cache)).sort() : [])

/**
 * A data directory's system identifier (the first field of `global/pg_control`): initdb draws a new one for every
 * database it makes, so a database that shares its template's was copied from it, not made by initdb.
 */
const identifierOf = (dataDir: string) =>
  readFileSync(join(dataDir, "global", "pg_control"))
    .readBigUInt64LE(0)
    .toString()
const templateData = (cache: string, key: string) => join(templates(cache), key, "data")

/** A new project's migrated database, with `cache` as XDG_CACHE_HOME: its identifier as Postgres reports it, its users. */
const create = (cache: string, insert = false) =>
  Effect.gen(function* () {
    process.env.XDG_CACHE_HOME = cache
    const dataDir = Database.embeddedDataDir(tempDir("project"))
    const exit = yield* Effect.exit(
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        if (insert) yield* sql`INSERT INTO users (id, name, email) VALUES ('u1', 'ada', 'ada@example.com')`
        const [row] = yield* sql<{ id: string }>`SELECT system_identifier::text AS id FROM pg_control_system()`
        const users = yield* sql<{ name: string }>`SELECT name FROM users`
        return { id: row?.id ?? "", users: users.map((u) => u.name), dataDir }
      }).pipe(Effect.provide(Database.layerMigrated({ url: Option.none(), dataDir })), Effect.scoped)
    )
    if (Exit.isFailure(exit)) throw new Error(String(exit.cause))
    return exit.value
  })

/**
 * The file's one template: the first creation in an empty cache, which ran initdb and kept its result (the first test
 * checks that it did). `withTemplate` gives a test a cache of its own holding a copy of it.
 */
let shared: {
  cache: string
  key: string
  template: string
  first: { id: string; users: Array<string>; dataDir: string }
}
beforeAll(async () => {
  const cache = tempDir("cache")
  const first = await Effect.runPromise(create(cache, true))
  const [key = ""] = entries(cache)
  shared = { cache, key, template: identifierOf(templateData(cache, key)), first }
}, 300_000)

/** A new cache folder holding a copy of the file's template, laid out as a save lays it out (folder mode 0700). */
const withTemplate = () => {
  const cache = tempDir("cache")
  mkdirSync(templates(cache), { recursive: true, mode: 0o700 })
  cpSync(join(templates(shared.cache), shared.key), join(templates(cache), shared.key), { recursive: true })
  return cache
}

/** Where a creation would copy a template: `pgdata.init` in a new project's `.agentsync` folder. */
const creationDir = () => {
  const agentsync = join(tempDir("project"), ".agentsync")
  mkdirSync(agentsync)
  return join(agentsync, "pgdata.init")
}

/** `restore`'s answer as a creation reads it: `copied` only when it copied; a refusal (an error) or none copies nothing. */
const restoreInto = (key: string, cache: string) =>
  Effect.gen(function* () {
    const into = creationDir()
    const exit = yield* Effect.exit(Template.restore(key, into, templates(cache)))
    return { copied: Exit.isSuccess(exit) && Option.isSome(exit.value), failed: Exit.isFailure(exit), into }
  })

describe("the embedded database's template", () => {
  it.scopedLive(
    "the first creation keeps its fresh initdb as the template; the next copies it (no initdb) and holds none of the first's data",
    () =>
      Effect.gen(function* () {
        const { cache, first } = shared
        const [key, ...others] = entries(cache)
        expect(others).toEqual([])
        expect(key).toMatch(/^0\.5\.\d+-[0-9a-f]{16}$/)
        const template = identifierOf(templateData(cache, key ?? ""))
        expect(first.id).toBe(template)

        const second = yield* create(cache)
        // initdb would have drawn an identifier of its own.
        expect(second.id).toBe(template)
        expect(identifierOf(second.dataDir)).toBe(template)
        // Migrated and working, and the first project's row is not there: the template is never an opened database.
        expect(first.users).toEqual(["ada"])
        expect(second.users).toEqual([])
        expect(entries(cache)).toEqual([key])
        expect(existsSync(`${second.dataDir}.init`)).toBe(false)

        // A fault on the new database's side (its parent folder is missing) fails the copy but keeps the template.
        const nowhere = join(tempDir("project"), "missing", "pgdata.init")
        const failed = yield* Effect.exit(Template.restore(key ?? "", nowhere, templates(cache)))
        expect(Exit.isFailure(failed)).toBe(true)
        expect(entries(cache)).toEqual([key])
        const into = join(tempDir("project"), "pgdata.init")
        expect(yield* Template.restore(key ?? "", into, templates(cache))).toEqual(
          Option.some(join(templates(cache), key ?? ""))
        )
        expect(identifierOf(into)).toBe(template)
      }),
    300_000
  )

  it.scopedLive(
    "a damaged template, or one without its manifest, is not used: initdb makes the database and the template again",
    () =>
      Effect.gen(function* () {
        const { key, template } = shared
        // A file the template lists is gone (as a cache cleaner deletes files it thinks old).
        const cache = withTemplate()
        const manifest = JSON.parse(readFileSync(join(templates(cache), key, "manifest.json"), "utf8")) as {
          files: Array<[string, number]>
        }
        const listed = manifest.files.find(([path]) => path.startsWith("base/"))?.[0] ?? ""
        rmSync(join(templateData(cache, key), listed))
        const afterDamage = yield* create(cache)
        expect(afterDamage.id).not.toBe(template)
        expect(afterDamage.users).toEqual([])
        // Replaced by the fresh initdb's result.
        expect(entries(cache)).toEqual([key])
        expect(identifierOf(templateData(cache, key))).toBe(afterDamage.id)

        // A template truncated in place (a file shorter than listed), and one whose manifest is gone: refused,
        // removed (so the initdb that follows keeps its own, as above), nothing left where the copy was to go.
        const truncated = withTemplate()
        writeFileSync(join(templateData(truncated, key), "global", "pg_control"), "")
        const afterTruncation = yield* restoreInto(key, truncated)
        expect(afterTruncation.failed).toBe(true)
        expect(entries(truncated)).toEqual([])
        const lost = withTemplate()
        rmSync(join(templates(lost), key, "manifest.json"))
        const afterLostManifest = yield* restoreInto(key, lost)
        expect(afterLostManifest.failed).toBe(true)
        expect(entries(lost)).toEqual([])
      }),
    300_000
  )

  it.scopedLive(
    "a template damaged without a change of size (PGlite cannot open its copy): initdb makes the database and a new template; a data directory not shut down cleanly is never kept",
    () =>
      Effect.gen(function* () {
        const { key, template } = shared
        const cache = withTemplate()
        const control = join(templateData(cache, key), "global", "pg_control")
        const bytes = readFileSync(control)
        bytes.fill(0xa5, 20, 60)
        writeFileSync(control, bytes)
        const next = yield* create(cache)
        expect(next.id).not.toBe(template)
        expect(next.users).toEqual([])
        expect(entries(cache)).toEqual([key])
        expect(identifierOf(templateData(cache, key))).toBe(next.id)

        // A source whose pg_control says it was not shut down cleanly (state 6: in production) is refused.
        const other = tempDir("cache")
        const source = join(tempDir("source"), "data")
        cpSync(templateData(cache, key), source, { recursive: true })
        const opened = readFileSync(join(source, "global", "pg_control"))
        opened.writeInt32LE(6, 16)
        writeFileSync(join(source, "global", "pg_control"), opened)
        const saved = yield* Effect.exit(Template.save(source, key, templates(other)))
        expect(Exit.isFailure(saved)).toBe(true)
        expect(entries(other)).toEqual([])
      }),
    300_000
  )

  it.scopedLive(
    "a cache that is not plainly this user's is neither read nor written (a linked template, a folder others may write), and a manifest path out of the data directory is refused: nothing is copied and nothing written outside",
    () =>
      Effect.gen(function* () {
        const { key, template } = shared
        const cache = withTemplate()
        const manifestPath = join(templates(cache), key, "manifest.json")
        const manifestText = readFileSync(manifestPath, "utf8")

        // A template that is a link to another folder (here, a real template elsewhere) is not followed: the link is
        // removed, and what it pointed to is left as it was.
        const linked = tempDir("cache")
        mkdirSync(templates(linked), { recursive: true, mode: 0o700 })
        symlinkSync(join(templates(cache), key), join(templates(linked), key))
        const throughLink = yield* restoreInto(key, linked)
        expect(throughLink.copied).toBe(false)
        expect(existsSync(throughLink.into)).toBe(false)
        expect(entries(linked)).toEqual([])
        expect(readFileSync(manifestPath, "utf8")).toBe(manifestText)
        expect(identifierOf(templateData(cache, key))).toBe(template)
        // The initdb that follows keeps a template of its own there, a real folder.
        yield* Template.save(templateData(cache, key), key, templates(linked))
        expect(lstatSync(join(templates(linked), key)).isDirectory()).toBe(true)

        // A folder others may write: its template is not read, and none is written into it.
        chmodSync(templates(cache), 0o770)
        const openFolder = yield* restoreInto(key, cache)
        expect(openFolder.copied).toBe(false)
        expect(existsSync(openFolder.into)).toBe(false)
        expect(entries(cache)).toEqual([key])
        rmSync(join(templates(cache), key), { recursive: true })
        yield* Template.save(templateData(linked, key), key, templates(cache))
        expect(entries(cache)).toEqual([])
        expect(statSync(templates(cache)).mode & 0o777).toBe(0o770)
        chmodSync(templates(cache), 0o700)

        // A manifest that lists a file out of the data directory: refused, nothing copied there.
        cpSync(join(templates(linked), key), join(templates(cache), key), { recursive: true })
        writeFileSync(join(templates(cache), "outside-secret"), "secret")
        const listed = JSON.parse(readFileSync(manifestPath, "utf8")) as { files: Array<[string, number]> }
        listed.files.push(["../../outside-secret", 6])
        writeFileSync(manifestPath, JSON.stringify(listed))
        const escaped = yield* restoreInto(key, cache)
        expect(escaped.failed).toBe(true)
        expect(existsSync(join(dirname(dirname(escaped.into)), "outside-secret"))).toBe(false)
        expect(entries(cache)).toEqual(["outside-secret"])
      }),
    300_000
  )

  it.scopedLive(
    "a template half-written by a killed process (its scratch folder, even complete) is never used",
    () =>
      Effect.gen(function* () {
        const { key } = shared
        const cache = tempDir("cache")
        // Made as a save makes it: a folder no other user can read or write (another is not used at all).
        mkdirSync(templates(cache), { recursive: true, mode: 0o700 })
        cpSync(join(templates(shared.cache), key), join(templates(cache), `${key}.999999-dead.tmp`), {
          recursive: true
        })
        const next = yield* restoreInto(key, cache)
        expect(next.copied).toBe(false)
        expect(existsSync(next.into)).toBe(false)
        expect(entries(cache)).toEqual([`${key}.999999-dead.tmp`])
        // The initdb that follows keeps its template beside it, and a scratch folder that young is left alone.
        yield* Template.save(templateData(shared.cache, key), key, templates(cache))
        expect(entries(cache)).toEqual([key, `${key}.999999-dead.tmp`])

        // Once it is two hours old, the next creation (a copy: no save) removes it.
        const hoursAgo = new Date(Date.now() - 2 * 60 * 60 * 1000)
        utimesSync(join(templates(cache), `${key}.999999-dead.tmp`), hoursAgo, hoursAgo)
        const copied = yield* create(cache)
        expect(copied.id).toBe(shared.template)
        expect(entries(cache)).toEqual([key])
      }),
    300_000
  )

  it.scopedLive(
    "two creations at once without a template both succeed and leave one template",
    () =>
      Effect.gen(function* () {
        const cache = tempDir("cache")
        const [a, b] = yield* Effect.all([create(cache), create(cache)], { concurrency: "unbounded" })
        expect(a?.users).toEqual([])
        expect(b?.users).toEqual([])
        const [key, ...others] = entries(cache)
        expect(others).toEqual([])
        expect([a?.id, b?.id]).toContain(identifierOf(templateData(cache, key ?? "")))

        // Two saves side by side, straight into an empty cache: both copy, one renames its copy into place and the
        // other finds it there (the loser's rename fails), and neither fails; one template, no scratch folder left.
        const other = tempDir("cache")
        const source = templateData(cache, key ?? "")
        const saves = yield* Effect.all(
          [Template.save(source, key ?? "", templates(other)), Template.save(source, key ?? "", templates(other))],
          { concurrency: "unbounded", mode: "either" }
        )
        expect(saves.map((s) => s._tag)).toEqual(["Right", "Right"])
        expect(entries(other)).toEqual([key])
        expect(identifierOf(templateData(other, key ?? ""))).toBe(identifierOf(source))
      }),
    300_000
  )

  it.scopedLive(
    "a cache that cannot be written (its root is a file) leaves the creation to initdb, without an error",
    () =>
      Effect.gen(function* () {
        const notADir = join(tempDir("cache"), "file")
        writeFileSync(notADir, "")
        const made = yield* create(notADir)
        expect(made.users).toEqual([])
        // It ran initdb (which draws a new identifier), and the next creation finds no template to copy.
        expect(made.id).not.toBe(shared.template)
        const again = yield* restoreInto(shared.key, notADir)
        expect(again.copied).toBe(false)
        expect(existsSync(again.into)).toBe(false)
      }),
    300_000
  )

  it.scopedLive(
    "templates of other keys: the two most recently used are kept, older ones and any unused for 30 days are removed; a copy marks its template used",
    () =>
      Effect.gen(function* () {
        const dir = templates(tempDir("cache"))
        mkdirSync(dir, { recursive: true, mode: 0o700 })
        const daysAgo = (days: number) => new Date(Date.now() - days * 24 * 60 * 60 * 1000)
        for (const [name, days] of [
          ["old-a", 1],
          ["old-b", 2],
          ["old-c", 3],
          ["old-d", 0.5]
        ] as const) {
          mkdirSync(join(dir, name))
          writeFileSync(join(dir, name, "manifest.json"), "{}")
          utimesSync(join(dir, name, "manifest.json"), daysAgo(days), daysAgo(days))
        }
        mkdirSync(join(dir, "old-e"))
        writeFileSync(join(dir, "old-e", "manifest.json"), "{}")
        utimesSync(join(dir, "old-e", "manifest.json"), daysAgo(40), daysAgo(40))
        // A stand-in for a fresh data directory: one file, and a pg_control whose state says shut down cleanly.
        const source = tempDir("source")
        mkdirSync(join(source, "global"))
        const control = Buffer.alloc(64)
        control.writeInt32LE(1, 16)
        writeFileSync(join(source, "global", "pg_control"), control)
        yield* Template.save(source, "current", dir)
        expect(readdirSync(dir).sort()).toEqual(["current", "old-a", "old-d"])

        // A copy of a template last marked two days ago marks it used now.
        const manifest = join(dir, "current", "manifest.json")
        utimesSync(manifest, daysAgo(2), daysAgo(2))
        const into = join(tempDir("project"), "pgdata.init")
        expect(Option.isSome(yield* Template.restore("current", into, dir))).toBe(true)
        expect(Date.now() - statSync(manifest).mtimeMs).toBeLessThan(60_000)
        // Only the three kept, and those unused for 30 days gone, also when the other key is the one copied.
        utimesSync(join(dir, "old-a", "manifest.json"), daysAgo(31), daysAgo(31))
        expect(Option.isSome(yield* Template.restore("current", join(tempDir("project"), "pgdata.init"), dir))).toBe(
          true
        )
        expect(readdirSync(dir).sort()).toEqual(["current", "old-d"])
      }),
    60_000
  )
})
