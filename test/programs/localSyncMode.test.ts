// Local sync keeps an item file's executable bit, on the real PostgreSQL: round trip, chmod alone either way, both sides
// changed, and a database of the release before (rows without a mode) migrated.
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Redacted } from "effect"
import { LocalSync, type LocalSyncOptions, type LocalSyncPorts } from "../../src/programs/localSync.js"
import { projectMigrationsRecord } from "../../src/services/migrations/index.js"
import { runMigrations } from "../../src/services/migrations/run.js"
import * as Database from "../../src/services/ProjectDatabase.js"
import { scopedDatabase, sqlRows } from "../support/pg.js"
import { tempDirs, walk } from "../support/tree.js"

const tempDir = tempDirs("lsmode")

const run = <A, E>(url: string, services: string, effect: Effect.Effect<A, E, LocalSync | LocalSyncPorts>) =>
  effect.pipe(
    Effect.provide(
      LocalSync.layer({ servicesPath: services, projectRoot: join(services, ".."), databaseUrl: Redacted.make(url) })
    )
  )
const sync = (url: string, services: string, options: LocalSyncOptions) => run(url, services, LocalSync.sync(options))
const diff = (url: string, services: string) =>
  Effect.map(run(url, services, LocalSync.diff()), (r) =>
    r.kinds.flatMap((k) => k.changes.map((c) => ({ kind: k.kind, ...c })))
  )

const put = (root: string, path: string, text: string, mode = 0o644) => {
  mkdirSync(join(root, path, ".."), { recursive: true })
  writeFileSync(join(root, path), text)
  chmodSync(join(root, path), mode)
}
const modeOf = (root: string, path: string) => statSync(join(root, path)).mode & 0o777
const isExec = (root: string, path: string) => (modeOf(root, path) & 0o100) !== 0

/** One executable item file of each form, a plain one beside each, and an executable script beside a skill. */
const tree = () => {
  const root = join(tempDir("src"), "services")
  put(root, "agents/ops.md", "---\nname: ops\ndescription: runs things\n---\n\nRun.\n", 0o755)
  put(root, "agents/plain.md", "---\nname: plain\n---\n\nPlain.\n")
  put(root, "agents/support/config.yaml", "id: support\nname: support\n")
  put(root, "agents/support/system_prompt.md", "You help.\n", 0o755)
  put(root, "skills/pdf/SKILL.md", "---\nname: pdf\ndescription: reads PDFs\n---\n\n# PDF\n", 0o755)
  put(root, "skills/pdf/scripts/run.sh", "#!/bin/sh\necho run\n", 0o755)
  put(root, "content/_encodings/UTF8CRLFandBOM.md", "\uFEFF---\r\ntitle: BOM\r\n---\r\nbody\r\n", 0o755)
  put(root, "content/_encodings/plain.md", "---\ntitle: plain\n---\nbody\n")
  return root
}

const EXECUTABLE = [
  "agents/ops.md",
  "agents/support/system_prompt.md",
  "content/_encodings/UTF8CRLFandBOM.md",
  "skills/pdf/SKILL.md",
  "skills/pdf/scripts/run.sh"
]

const contentRow = (url: string, slug: string) =>
  Effect.map(
    sqlRows<{ mode: number; version_hash: string; file_sha256: string | null; body: string; updated_at: Date }>(
      url,
      "SELECT mode, version_hash, file_sha256, body, updated_at FROM contents WHERE source = '_encodings' AND slug = $1",
      [slug]
    ),
    ([row]) => row!
  )

describe("local sync keeps an item's executable bit", () => {
  it.scopedLive("+x item files go to the database and come back into an empty tree executable, bytes unchanged", () =>
    Effect.gen(function* () {
      const url = yield* scopedDatabase("lsm")
      const src = tree()
      yield* sync(url, src, { direction: "ToDatabase" })
      const modes = yield* sqlRows<{ k: string; mode: number }>(
        url,
        `SELECT 'agents/' || id AS k, mode FROM agents UNION ALL SELECT 'skills/' || id, mode FROM skills
         UNION ALL SELECT source || '/' || slug, mode FROM contents ORDER BY 1`
      )
      expect(modes).toEqual([
        { k: "_encodings/UTF8CRLFandBOM", mode: 0o755 },
        { k: "_encodings/plain", mode: 0o644 },
        { k: "agents/ops", mode: 0o755 },
        { k: "agents/plain", mode: 0o644 },
        { k: "agents/support", mode: 0o755 },
        { k: "skills/pdf", mode: 0o755 }
      ])
      expect(yield* diff(url, src)).toEqual([])

      const out = join(tempDir("out"), "services")
      yield* sync(url, out, { direction: "ToDisk" })
      expect(walk(out)).toEqual(walk(src))
      for (const path of walk(src)) {
        expect(readFileSync(join(out, path)).equals(readFileSync(join(src, path))), path).toBe(true)
        expect(isExec(out, path), path).toBe(EXECUTABLE.includes(path))
      }
      // config.yaml's mode is not kept: it is written 0644 as before.
      expect(modeOf(out, "agents/support/config.yaml")).toBe(0o644)
      expect((yield* sync(url, out, { direction: "ToDisk" })).plan).toEqual([])
      expect(yield* diff(url, out)).toEqual([])
    })
  )

  it.scopedLive(
    "a chmod alone on disk is a change the diff shows and a sync to the database carries, fields untouched",
    () =>
      Effect.gen(function* () {
        const url = yield* scopedDatabase("lsm")
        const src = tree()
        yield* sync(url, src, { direction: "ToDatabase" })
        const before = yield* contentRow(url, "plain")
        chmodSync(join(src, "content/_encodings/plain.md"), 0o755)
        chmodSync(join(src, "agents/ops.md"), 0o644)
        // Bits a sync does not keep (group write) are no change.
        chmodSync(join(src, "agents/plain.md"), 0o664)
        expect(yield* diff(url, src)).toEqual([
          { kind: "agents", key: "ops", status: "Modified", old_mode: "100755", new_mode: "100644" },
          { kind: "content", key: "_encodings/plain", status: "Modified", old_mode: "100644", new_mode: "100755" }
        ])
        const done = yield* sync(url, src, { direction: "ToDatabase" })
        expect(done.plan.map((s) => [s.action, s.key, s.old_mode, s.new_mode])).toEqual([
          ["upsert", "ops", "100755", "100644"],
          ["upsert", "_encodings/plain", "100644", "100755"]
        ])
        const after = yield* contentRow(url, "plain")
        // Only the mode changed: the row's hash and file hash still vouch for it, its body is as it was.
        expect({ ...after, updated_at: undefined }).toEqual({ ...before, mode: 0o755, updated_at: undefined })
        const [ops] = yield* sqlRows<{ mode: number; version_hash: string }>(
          url,
          "SELECT mode, version_hash FROM agents WHERE id = 'ops'"
        )
        expect(ops?.mode).toBe(0o644)
        expect(ops?.version_hash).not.toBe("")
        expect(yield* diff(url, src)).toEqual([])
        expect((yield* sync(url, src, { direction: "ToDatabase" })).plan).toEqual([])
      })
  )

  it.scopedLive(
    "a chmod of a page whose row does not know its file hash is kept: recording the row keeps the new mode",
    () =>
      Effect.gen(function* () {
        const url = yield* scopedDatabase("lsm")
        const src = tree()
        yield* sync(url, src, { direction: "ToDatabase" })
        // A row from before file hashes were recorded (or a hand edit reverted): the page matches, the hash is unknown.
        yield* sqlRows(url, "UPDATE contents SET file_sha256 = NULL WHERE slug = 'plain'")
        chmodSync(join(src, "content/_encodings/plain.md"), 0o755)
        yield* sync(url, src, { direction: "ToDatabase" })
        const row = yield* contentRow(url, "plain")
        expect(row.mode).toBe(0o755)
        expect(row.file_sha256).not.toBeNull()
        expect(yield* diff(url, src)).toEqual([])
      })
  )

  it.scopedLive("files beside an item keep their permission bits exactly, both ways", () =>
    Effect.gen(function* () {
      const url = yield* scopedDatabase("lsm")
      const src = tree()
      put(src, "skills/pdf/secret.env", "TOKEN=1\n", 0o600)
      put(src, "skills/pdf/shared.txt", "shared\n", 0o664)
      yield* sync(url, src, { direction: "ToDatabase" })
      const stored = yield* sqlRows<{ path: string; mode: number }>(
        url,
        "SELECT path, mode FROM item_files WHERE path IN ('skills/pdf/secret.env', 'skills/pdf/shared.txt') ORDER BY path"
      )
      expect(stored).toEqual([
        { path: "skills/pdf/secret.env", mode: 0o600 },
        { path: "skills/pdf/shared.txt", mode: 0o664 }
      ])
      const out = join(tempDir("out"), "services")
      yield* sync(url, out, { direction: "ToDisk" })
      expect(modeOf(out, "skills/pdf/secret.env")).toBe(0o600)
      expect(modeOf(out, "skills/pdf/shared.txt")).toBe(0o664)
      // A change of bits other than the executable one is a change, both ways.
      chmodSync(join(src, "skills/pdf/secret.env"), 0o640)
      expect(yield* diff(url, src)).toEqual([{ kind: "skills", key: "file:skills/pdf/secret.env", status: "Modified" }])
      yield* sync(url, src, { direction: "ToDatabase" })
      yield* sync(url, out, { direction: "ToDisk" })
      expect(modeOf(out, "skills/pdf/secret.env")).toBe(0o640)
      expect(yield* diff(url, out)).toEqual([])
    })
  )

  it.scopedLive("an item's file is written through the umask: 0600 and 0700 under umask 077, a chmod alone too", () =>
    Effect.gen(function* () {
      const url = yield* scopedDatabase("lsm")
      const src = tree()
      put(src, "skills/pdf/secret.env", "TOKEN=1\n", 0o644)
      yield* sync(url, src, { direction: "ToDatabase" })
      yield* Effect.acquireRelease(
        Effect.sync(() => process.umask(0o077)),
        (was) => Effect.sync(() => process.umask(was))
      )
      const out = join(tempDir("out"), "services")
      yield* sync(url, out, { direction: "ToDisk" })
      expect(modeOf(out, "content/_encodings/plain.md")).toBe(0o600)
      expect(modeOf(out, "content/_encodings/UTF8CRLFandBOM.md")).toBe(0o700)
      expect(modeOf(out, "skills/pdf/SKILL.md")).toBe(0o700)
      expect(modeOf(out, "agents/plain.md")).toBe(0o600)
      // A file beside an item keeps the bits it was stored with, whatever the umask.
      expect(modeOf(out, "skills/pdf/secret.env")).toBe(0o644)
      expect(modeOf(out, "skills/pdf/scripts/run.sh")).toBe(0o755)
      expect(yield* diff(url, out)).toEqual([])
      // A chmod +x in the database of a page that is 0600 on disk: 0700, not 0755.
      yield* sqlRows(url, "UPDATE contents SET mode = 493 WHERE slug = 'plain'")
      yield* sync(url, out, { direction: "ToDisk" })
      expect(modeOf(out, "content/_encodings/plain.md")).toBe(0o700)
      expect(yield* diff(url, out)).toEqual([])
    })
  )

  it.scopedLive("a mode changed in the database is a change the diff shows and a sync to disk writes, same bytes", () =>
    Effect.gen(function* () {
      const url = yield* scopedDatabase("lsm")
      const src = tree()
      yield* sync(url, src, { direction: "ToDatabase" })
      const bytes = readFileSync(join(src, "content/_encodings/UTF8CRLFandBOM.md"))
      yield* sqlRows(url, "UPDATE contents SET mode = 420 WHERE slug = 'UTF8CRLFandBOM'")
      yield* sqlRows(url, "UPDATE skills SET mode = 420 WHERE id = 'pdf'")
      // By hand, the mode alone: the row is still trusted (its file is not rendered again).
      const row = yield* contentRow(url, "UTF8CRLFandBOM")
      expect(row.version_hash).not.toBe("")
      expect(row.file_sha256).not.toBeNull()
      expect(yield* diff(url, src)).toEqual([
        { kind: "skills", key: "pdf", status: "Modified", old_mode: "100644", new_mode: "100755" },
        {
          kind: "content",
          key: "_encodings/UTF8CRLFandBOM",
          status: "Modified",
          old_mode: "100644",
          new_mode: "100755"
        }
      ])
      const done = yield* sync(url, src, { direction: "ToDisk" })
      expect(done.plan.map((s) => [s.action, s.key, s.paths, s.old_mode, s.new_mode])).toEqual([
        ["write", "pdf", ["skills/pdf/SKILL.md"], "100755", "100644"],
        ["write", "_encodings/UTF8CRLFandBOM", ["content/_encodings/UTF8CRLFandBOM.md"], "100755", "100644"]
      ])
      expect(isExec(src, "content/_encodings/UTF8CRLFandBOM.md")).toBe(false)
      expect(isExec(src, "skills/pdf/SKILL.md")).toBe(false)
      expect(readFileSync(join(src, "content/_encodings/UTF8CRLFandBOM.md")).equals(bytes)).toBe(true)
      expect(yield* diff(url, src)).toEqual([])
    })
  )

  it.scopedLive(
    "both sides changed: the side synced from wins whole, mode and text, as for any change of content",
    () =>
      Effect.gen(function* () {
        const url = yield* scopedDatabase("lsm")
        const src = tree()
        yield* sync(url, src, { direction: "ToDatabase" })
        // On disk a chmod +x; in the database the body edited (local sync keeps no base: no three-way merge).
        chmodSync(join(src, "content/_encodings/plain.md"), 0o755)
        yield* sqlRows(url, "UPDATE contents SET body = 'edited in the database\n' WHERE slug = 'plain'")
        expect(yield* diff(url, src)).toEqual([
          { kind: "content", key: "_encodings/plain", status: "Modified", old_mode: "100644", new_mode: "100755" }
        ])
        const copy = join(tempDir("copy"), "services")
        put(copy, "content/_encodings/plain.md", readFileSync(join(src, "content/_encodings/plain.md"), "utf8"), 0o755)
        // To disk: the database's text and its mode.
        yield* sync(url, copy, { direction: "ToDisk" })
        expect(readFileSync(join(copy, "content/_encodings/plain.md"), "utf8")).toBe(
          "---\ntitle: plain\n---\nedited in the database\n"
        )
        expect(isExec(copy, "content/_encodings/plain.md")).toBe(false)
        // To the database: the disk's text and its mode.
        yield* sync(url, src, { direction: "ToDatabase" })
        const row = yield* contentRow(url, "plain")
        expect([row.mode, row.body]).toEqual([0o755, "body\n"])
        expect(yield* diff(url, src)).toEqual([])
      })
  )

  it.scopedLive(
    "a database of the release before, with rows, migrates: every row 0644, still trusted, still synced",
    () =>
      Effect.gen(function* () {
        const url = yield* scopedDatabase("lsm")
        const src = tree()
        // The schema of the release before (migrations 0001–0004), filled by a sync of that release's shape.
        const before = Object.fromEntries(Object.entries(projectMigrationsRecord).filter(([id]) => id < "0005"))
        yield* runMigrations("agentsync_migrations", before).pipe(
          Effect.provide(Database.layer({ url: Option.some(Redacted.make(url)), dataDir: "/nonexistent" }))
        )
        yield* sqlRows(
          url,
          `INSERT INTO agents (id, name, display_name, description, enabled, tags, settings, system_prompt, version_hash, form, original)
         VALUES ('ops', 'ops', 'ops', 'runs things', true, '{}', '{}', 'Run.\n', 'old', 'file', '---\nname: ops\ndescription: runs things\n---\n\n')`
        )
        yield* sqlRows(
          url,
          `INSERT INTO contents (source, slug, path, format, head, title, kind, description, author, keywords, public, tags, body, version_hash, file_sha256)
         VALUES ('_encodings', 'plain', 'plain.md', 'yaml', '---\ntitle: plain\n---\n', 'plain', '', '', '', '{}', true, '{}', 'body\n', 'old', encode(sha256('---\ntitle: plain\n---\nbody\n'), 'hex'))`
        )
        // The first run migrates; the rows read as 0644 and keep their hashes.
        const d = yield* diff(url, src)
        const rows = yield* sqlRows<{ k: string; mode: number; version_hash: string; file_sha256: string | null }>(
          url,
          `SELECT id AS k, mode, version_hash, NULL AS file_sha256 FROM agents
         UNION ALL SELECT slug, mode, version_hash, file_sha256 FROM contents ORDER BY 1`
        )
        expect(rows.map((r) => [r.k, r.mode, r.version_hash])).toEqual([
          ["ops", 0o644, "old"],
          ["plain", 0o644, "old"]
        ])
        // The plain page is unchanged (its stored file still vouches for it); the executable agent shows its mode.
        const stored = (c: { kind: string; key: string }) =>
          (c.kind === "content" && c.key === "_encodings/plain") || (c.kind === "agents" && c.key === "ops")
        expect(d.filter(stored)).toEqual([
          { kind: "agents", key: "ops", status: "Modified", old_mode: "100644", new_mode: "100755" }
        ])
        yield* sync(url, src, { direction: "ToDatabase" })
        expect(yield* diff(url, src)).toEqual([])
        const out = join(tempDir("out"), "services")
        yield* sync(url, out, { direction: "ToDisk" })
        for (const path of EXECUTABLE) expect(isExec(out, path), path).toBe(true)
      })
  )
})
