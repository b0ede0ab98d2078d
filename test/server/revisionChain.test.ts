import * as SqlClient from "@effect/sql/SqlClient"
import { expect, layer } from "@effect/vitest"
import { Effect, Either } from "effect"
import { NotFound } from "../../src/api/common.js"
import { manifestChecksum } from "../../src/domain/hash.js"
import { Conflict } from "../../src/errors.js"
import { makeFileStore } from "../../src/server/files/FileStore.js"
import { revisionQueries } from "../../src/server/files/revisions.js"
import { type StoredEntry, stored } from "../../src/server/files/stored.js"
import { MAX_DEPTH } from "../../src/server/files/tree.js"
import * as Migrations from "../../src/server/migrations.js"
import { caller, entriesOf, migratedDb, push, type Tree } from "../support/serverPush.js"

const Db = migratedDb("chain")

/** A store of one server process: its own cache of trees over the shared database. */
const store = makeFileStore

layer(Db, { excludeTestServices: true })("revisions stored as deltas", (it) => {
  it.effect(
    "read back as pushed, every one of a chain of small pushes, from the cache and by a server that never saw them",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql`INSERT INTO tenants (id, name) VALUES ('chain', 'chain')`
        const one = yield* store
        let tree: Tree = new Map()
        for (let i = 0; i < 300; i++) tree.set(`content/d${i % 7}/f${i}.md`, { text: `file ${i}`, executable: false })
        const first = yield* one.upload(caller("chain"), yield* push(null, tree, [...tree.keys()], []), {
          idempotencyKey: undefined
        })
        const made: Array<{ id: string; tree: Tree; counts: readonly [number, number, number] }> = [
          { id: first.revision, tree, counts: [300, 0, 0] }
        ]
        // Past two whole manifests' worth of deltas: edits, a mode turned on, adds, deletes, a path deleted
        // and set again in one push, and a file turned into a folder.
        for (let n = 1; n <= 2 * MAX_DEPTH + 5; n++) {
          const after: Tree = new Map(tree)
          const set: Array<string> = []
          const deletes: Array<string> = []
          const edited = `content/d${n % 7}/f${(n * 37) % 300}.md`
          if (after.has(edited)) {
            after.set(edited, { text: `edit ${n}`, executable: n % 5 === 0 })
            set.push(edited)
          }
          if (n % 3 === 0) {
            const added = `content/new/${n}.md`
            after.set(added, { text: `new ${n}`, executable: false })
            set.push(added)
          }
          if (n % 4 === 0) {
            const gone = [...after.keys()].filter((p) => !set.includes(p))[n % 50] as string
            after.delete(gone)
            deletes.push(gone)
          }
          if (n === 7) {
            // Deleted and set again: changed, not deleted.
            const again = [...after.keys()].filter((p) => !set.includes(p))[3] as string
            after.set(again, { text: "again", executable: false })
            deletes.push(again)
            set.push(again)
          }
          if (n === 11) {
            // content/new/9.md becomes a folder: the file deleted, a file under it added.
            after.delete("content/new/9.md")
            deletes.push("content/new/9.md")
            after.set("content/new/9.md/inner.md", { text: "inner", executable: false })
            set.push("content/new/9.md/inner.md")
          }
          const before = new Map(entriesOf(tree).map((e) => [e.path, JSON.stringify(stored(e))]))
          const now = new Map(entriesOf(after).map((e) => [e.path, JSON.stringify(stored(e))]))
          const counts = [
            [...now.keys()].filter((p) => !before.has(p)).length,
            [...now].filter(([p, e]) => before.has(p) && before.get(p) !== e).length,
            [...before.keys()].filter((p) => !now.has(p)).length
          ] as const
          const last = made[made.length - 1] as (typeof made)[number]
          const result = yield* one.upload(caller("chain"), yield* push(last.id, after, set, deletes), {
            idempotencyKey: `push-${n}`
          })
          expect(result).toMatchObject({ created: true, parent: last.id, files: after.size })
          made.push({ id: result.revision, tree: after, counts })
          tree = after
        }
        // Most store a delta, a few the whole manifest, none a chain longer than MAX_DEPTH.
        const forms = yield* sql<{ whole: number; deltas: number; deepest: number }>`
          SELECT count(*) FILTER (WHERE manifest_text IS NOT NULL)::int AS whole,
                 count(*) FILTER (WHERE delta IS NOT NULL)::int AS deltas, max(depth)::int AS deepest
          FROM revisions WHERE tenant_id = 'chain'`
        expect(forms[0]?.whole).toBeGreaterThanOrEqual(3)
        expect(forms[0]?.deltas).toBeGreaterThan(2 * MAX_DEPTH - 5)
        expect(forms[0]?.deepest).toBe(MAX_DEPTH)

        // A second server's cache is empty: it reads each revision's chain from the database.
        const other = yield* store
        for (const s of [one, other]) {
          for (const r of made) {
            const m = yield* s.manifest("chain", r.id)
            expect(m.revision).toBe(r.id)
            expect(m.entries.map((e) => ({ ...e }))).toEqual(entriesOf(r.tree).map((e) => ({ ...e })))
            expect(m.checksum).toBe(manifestChecksum(entriesOf(r.tree)))
          }
          const head = yield* s.manifest("chain")
          expect(head.revision).toBe(made[made.length - 1]?.id)
        }
        // Each revision's counts against its parent, as `files revisions` lists them.
        const listed = yield* one.revisions("chain", 1000)
        expect(listed.map((r) => [r.id, [r.added, r.changed, r.deleted]])).toEqual(
          [...made].reverse().map((r) => [r.id, r.counts])
        )

        // A cached tree is not served for another tenant, nor for a revision that is not the one asked for.
        yield* sql`INSERT INTO tenants (id, name) VALUES ('other', 'other')`
        const foreign = yield* Effect.either(one.manifest("other", first.revision))
        expect(Either.isLeft(foreign) && foreign.left instanceof NotFound).toBe(true)
        const empty = yield* one.manifest("other")
        expect(empty).toMatchObject({ revision: null, entries: [] })
        const download = yield* one.download("chain", made[3]?.id)
        expect(download).toMatchObject({ revision: made[3]?.id, entries: made[3]?.tree.size })
      }),
    240_000
  )

  it.effect("refuses a stale base on every replica, and a replica reads the head another committed", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      yield* sql`INSERT INTO tenants (id, name) VALUES ('race', 'race')`
      const a = yield* store
      const b = yield* store
      const t0: Tree = new Map([
        ["content/a.md", { text: "a", executable: false }],
        ["content/b.md", { text: "b", executable: false }]
      ])
      const r0 = yield* a.upload(caller("race"), yield* push(null, t0, [...t0.keys()], []), {
        idempotencyKey: undefined
      })
      const t1: Tree = new Map(t0).set("content/a.md", { text: "a1", executable: false })
      // Replica b pushes over r0 (read from the database), so a's cached r0 is no longer the head.
      const r1 = yield* b.upload(caller("race"), yield* push(r0.revision, t1, ["content/a.md"], []), {
        idempotencyKey: undefined
      })
      const t2: Tree = new Map(t0).set("content/b.md", { text: "b2", executable: false })
      const stale = yield* Effect.either(
        a.upload(caller("race"), yield* push(r0.revision, t2, ["content/b.md"], []), { idempotencyKey: undefined })
      )
      expect(Either.isLeft(stale) && stale.left instanceof Conflict).toBe(true)
      // Over the head replica b made, a's push builds on b's tree, not on the one a kept.
      const t3: Tree = new Map(t1).set("content/b.md", { text: "b3", executable: false })
      const r3 = yield* a.upload(caller("race"), yield* push(r1.revision, t3, ["content/b.md"], []), {
        idempotencyKey: undefined
      })
      const m = yield* b.manifest("race")
      expect(m.revision).toBe(r3.revision)
      expect(m.entries.map((e) => ({ ...e }))).toEqual(entriesOf(t3).map((e) => ({ ...e })))
      // Two pushes from one base at once on two replicas: one wins, the other is a Conflict.
      const t4: Tree = new Map(t3).set("content/c.md", { text: "c", executable: false })
      const t5: Tree = new Map(t3).set("content/d.md", { text: "d", executable: false })
      const both = yield* Effect.all(
        [
          Effect.either(
            a.upload(caller("race"), yield* push(r3.revision, t4, ["content/c.md"], []), { idempotencyKey: undefined })
          ),
          Effect.either(
            b.upload(caller("race"), yield* push(r3.revision, t5, ["content/d.md"], []), { idempotencyKey: undefined })
          )
        ],
        { concurrency: 2 }
      )
      expect(both.filter(Either.isRight)).toHaveLength(1)
      expect(both.filter((e) => Either.isLeft(e) && e.left instanceof Conflict)).toHaveLength(1)
    })
  )

  it.effect("reads a revision stored whole before deltas, pushes over it, and counts it over the manifests", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      yield* sql`INSERT INTO tenants (id, name) VALUES ('old', 'old')`
      const t0: Tree = new Map([
        ["content/x.md", { text: "x", executable: false }],
        ["content/y.md", { text: "y", executable: false }]
      ])
      const t1: Tree = new Map(t0).set("content/z.md", { text: "z", executable: true })
      t1.delete("content/x.md")
      // Two rows as a server before deltas wrote them: the whole manifest, no counts, no storage. An older server's
      // revision is refused once this server's storage is in the database (migration 10)...
      const rows = (t: Tree): ReadonlyArray<StoredEntry> => entriesOf(t).map(stored)
      const insertOld = Effect.all([
        sql`INSERT INTO revisions (id, tenant_id, parent, manifest, checksum, files, author)
          VALUES ('old-0', 'old', NULL, ${JSON.stringify(rows(t0))}::jsonb, ${manifestChecksum(entriesOf(t0))}, 2, 'x')`,
        sql`INSERT INTO revisions (id, tenant_id, parent, manifest, checksum, files, author)
          VALUES ('old-1', 'old', 'old-0', ${JSON.stringify(rows(t1))}::jsonb, ${manifestChecksum(entriesOf(t1))}, 2, 'x')`
      ])
      const refused = yield* Effect.either(insertOld)
      expect(Either.isLeft(refused) && String(refused.left.cause)).toMatch(/revisions_storage/)
      // ...so they are stored as before it, and the server upgraded over them: they stay as they were.
      yield* sql`ALTER TABLE revisions DROP CONSTRAINT revisions_storage`
      yield* insertOld
      yield* sql`DELETE FROM ${sql(Migrations.MIGRATIONS_TABLE)} WHERE migration_id >= 10`
      yield* Migrations.migrate
      yield* sql`UPDATE tenants SET head = 'old-1' WHERE id = 'old'`
      const s = yield* store
      const m = yield* s.manifest("old", "old-0")
      expect(m.entries.map((e) => ({ ...e }))).toEqual(entriesOf(t0).map((e) => ({ ...e })))
      const t2: Tree = new Map(t1).set("content/y.md", { text: "y2", executable: false })
      const r2 = yield* s.upload(caller("old"), yield* push("old-1", t2, ["content/y.md"], []), {
        idempotencyKey: undefined
      })
      const fresh = yield* store
      const head = yield* fresh.manifest("old")
      expect(head.revision).toBe(r2.revision)
      expect(head.entries.map((e) => ({ ...e }))).toEqual(entriesOf(t2).map((e) => ({ ...e })))
      const listed = yield* s.revisions("old")
      expect(listed.map((r) => [r.id, r.added, r.changed, r.deleted])).toEqual([
        [r2.revision, 0, 1, 0],
        ["old-1", 1, 0, 1],
        ["old-0", 2, 0, 0]
      ])
    })
  )

  it.effect("migrations set back and run again keep revisions stored whole as text and as deltas readable", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      yield* sql`INSERT INTO tenants (id, name) VALUES ('again', 'again')`
      const t0: Tree = new Map([["content/a.md", { text: "a", executable: false }]])
      const t1: Tree = new Map(t0).set("content/b.md", { text: "b", executable: true })
      const s = yield* store
      const r0 = yield* s.upload(caller("again"), yield* push(null, t0, ["content/a.md"], []), {
        idempotencyKey: undefined
      })
      const r1 = yield* s.upload(caller("again"), yield* push(r0.revision, t1, ["content/b.md"], []), {
        idempotencyKey: undefined
      })
      const forms = yield* sql<{ id: string; text: boolean; delta: boolean }>`
        SELECT id, manifest_text IS NOT NULL AS text, delta IS NOT NULL AS delta FROM revisions
        WHERE tenant_id = 'again' ORDER BY depth`
      expect(forms.map((f) => [f.id, f.text, f.delta])).toEqual([
        [r0.revision, true, false],
        [r1.revision, false, true]
      ])
      // A server whose records were set back to before revisions were deltas runs those migrations again.
      yield* sql`DELETE FROM ${sql(Migrations.MIGRATIONS_TABLE)} WHERE migration_id >= 9`
      yield* Migrations.migrate
      const fresh = yield* store
      const head = yield* fresh.manifest("again")
      expect(head.revision).toBe(r1.revision)
      expect(head.entries.map((e) => ({ ...e }))).toEqual(entriesOf(t1).map((e) => ({ ...e })))
    })
  )

  it.effect("refuses a damaged stored manifest or delta with the revision and field named, and serves nothing", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      yield* sql`INSERT INTO tenants (id, name) VALUES ('damaged', 'damaged')`
      const t0: Tree = new Map([
        ["content/a.md", { text: "a", executable: false }],
        ["content/b.md", { text: "b", executable: false }]
      ])
      const t1: Tree = new Map(t0).set("content/c.md", { text: "c", executable: false })
      const s = yield* store
      const r0 = yield* s.upload(caller("damaged"), yield* push(null, t0, [...t0.keys()], []), {
        idempotencyKey: undefined
      })
      const r1 = yield* s.upload(caller("damaged"), yield* push(r0.revision, t1, ["content/c.md"], []), {
        idempotencyKey: undefined
      })
      const rows = entriesOf(t0).map(stored)
      const reason = (revision: string) =>
        Effect.flip(revisionQueries(sql).tree("damaged", revision)).pipe(Effect.map((e) => e.message))
      const served = (revision: string) =>
        Effect.either(Effect.flatMap(store, (fresh) => fresh.manifest("damaged", revision)))
      // The second row's size as text: the whole manifest parses, but is not rows.
      const damaged = JSON.stringify([rows[0], [...(rows[1] as StoredEntry)].map((v, i) => (i === 1 ? "1" : v))])
      yield* sql`UPDATE revisions SET manifest_text = ${damaged} WHERE id = ${r0.revision}`
      expect(yield* reason(r0.revision)).toBe(
        `the stored tree of revision ${r0.revision} is broken: the whole manifest of revision ${r0.revision}: row 1 its size is not a non-negative integer`
      )
      // The revision over it names the one whose manifest is damaged.
      expect(yield* reason(r1.revision)).toContain(`the whole manifest of revision ${r0.revision}: row 1 its size`)
      for (const revision of [r0.revision, r1.revision]) {
        const answer = yield* served(revision)
        expect(Either.isLeft(answer) && answer.left).toMatchObject({ _tag: "ApiError", status: 500 })
      }
      // A delta whose row names a path outside the tree.
      yield* sql`UPDATE revisions SET manifest_text = ${JSON.stringify(rows)} WHERE id = ${r0.revision}`
      yield* sql`UPDATE revisions SET delta = jsonb_set(delta, '{set,0,0}', '"../c.md"') WHERE id = ${r1.revision}`
      expect(yield* reason(r1.revision)).toBe(
        `the stored tree of revision ${r1.revision} is broken: the delta of revision ${r1.revision}: its set row 0 its path is not a relative path inside the tree`
      )
      const answer = yield* served(r1.revision)
      expect(Either.isLeft(answer) && answer.left).toMatchObject({ _tag: "ApiError", status: 500 })
      // Repaired, both read back as pushed.
      yield* sql`UPDATE revisions SET delta = jsonb_set(delta, '{set,0,0}', '"content/c.md"') WHERE id = ${r1.revision}`
      const repaired = yield* (yield* store).manifest("damaged", r1.revision)
      expect(repaired.entries.map((e) => ({ ...e }))).toEqual(entriesOf(t1).map((e) => ({ ...e })))
    })
  )
})
