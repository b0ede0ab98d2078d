import type * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it, layer } from "@effect/vitest"
import { Arbitrary, Context, Effect, Exit, FastCheck as fc, Layer } from "effect"
import type pg from "pg"
import { beforeAll } from "vitest"
import { applyImport, planImport, type TargetState } from "../../../src/domain/db/importPlan.js"
import { type ContextExport, type SkillExport, Timestamp, type UserExport } from "../../../src/domain/db/tables.js"
import { canonicalJson } from "../../../src/domain/hash.js"
import { diffSources, type ExportSource, schemaProblems, sqlSource } from "../../../src/stages/db/export.js"
import { importSource } from "../../../src/stages/db/import.js"
import { sqlRows } from "../../support/pg.js"
import { clientOf, connect, loadState, migratedDatabase, readState } from "../../support/syncDb.js"

let local = ""
let cloud = ""
beforeAll(async () => {
  ;[local, cloud] = await Promise.all([migratedDatabase("local"), migratedDatabase("cloud")])
})

/**
 * The property's databases, of its own so that nothing it leaves running can touch the other tests' rows, with
 * connections opened once for all runs: opening them was most of each run's time on a loaded machine.
 */
class PropertyDatabases extends Context.Tag("test/PropertyDatabases")<
  PropertyDatabases,
  {
    readonly src: SqlClient.SqlClient
    readonly dst: SqlClient.SqlClient
    readonly localDb: pg.Client
    readonly cloudDb: pg.Client
  }
>() {}
const plainClient = (url: string) =>
  Effect.acquireRelease(
    Effect.promise(() => connect(url)),
    (client) => Effect.promise(() => client.end())
  )
const PropertyDatabasesLive = Layer.scoped(
  PropertyDatabases,
  Effect.gen(function* () {
    const [l, c] = yield* Effect.promise(() => Promise.all([migratedDatabase("plocal"), migratedDatabase("pcloud")]))
    const [src, dst, localDb, cloudDb] = yield* Effect.all([clientOf(l), clientOf(c), plainClient(l), plainClient(c)])
    return { src, dst, localDb, cloudDb }
  })
).pipe(Layer.orDie)

type SyncOptions = { dryRun: boolean; chunkSize?: number; bulk?: boolean }

/** Imports everything of `from` into `to`. */
const importBetween = (src: SqlClient.SqlClient, dst: SqlClient.SqlClient, options: SyncOptions) =>
  importSource({ sql: dst }, sqlSource({ sql: src }, 3), options)

/** Imports everything of `from` into `to`, on clients opened for this import. */
const sync = (from: string, to: string, options: SyncOptions) =>
  Effect.gen(function* () {
    return yield* importBetween(yield* clientOf(from), yield* clientOf(to), options)
  }).pipe(Effect.scoped)

// Small pools so that taken names, missing users and missing sessions occur.
const id = fc.constantFrom("a", "b", "c", "d", "é", "Z")
const name = fc.constantFrom("ann", "bob", "cy")
const ts = Arbitrary.make(Timestamp)
const user: fc.Arbitrary<UserExport> = fc.record({
  id,
  name,
  email: name.map((n) => `${n}@x`),
  display_name: fc.constantFrom("", 'A "quoted" name'),
  roles: fc.array(fc.constantFrom("admin", "a,b", 'q"uote', "back\\slash", "{brace}"), { maxLength: 2 }),
  created_at: ts,
  updated_at: fc.constantFrom("2025-01-01T00:00:00.000000Z", "2025-01-02T00:00:00.123456Z")
})
const skill: fc.Arbitrary<SkillExport> = fc
  .record({
    id,
    description: fc.constantFrom("d1", "d2"),
    enabled: fc.boolean(),
    tags: fc.array(fc.constantFrom("t", "NULL", ""), { maxLength: 2 }),
    form: fc.constantFrom("folder" as const, "file" as const),
    // The executable bit of its SKILL.md travels with it.
    mode: fc.constantFrom(0o644 as const, 0o755 as const),
    original: fc.constantFrom(null, "---\nname: x\n---\n\n", 'id: x\n"quoted": {a: 1}\n'),
    // The same value in two key orders: written as given, compared as jsonb (as the import does).
    extra: fc.constantFrom(
      {},
      { license: "MIT" },
      { a: 1, nested: { z: null, y: ["é", 1.5] } },
      { nested: { y: ["é", 1.5], z: null }, a: 1 }
    ),
    created_at: ts,
    updated_at: ts
  })
  // version_hash follows the fields, as the local sync writes it (the project's stale-hash trigger relies on that).
  .map((s) => ({
    ...s,
    name: s.id,
    category: "c",
    assigned_agents: ["x"],
    instructions: "i",
    version_hash: JSON.stringify([s.description, s.enabled, s.tags, s.form, s.original, canonicalJson(s.extra)])
  }))
const context: fc.Arbitrary<ContextExport> = fc.record({
  id,
  user_id: id,
  session_id: fc.option(fc.constantFrom("s1", "s2"), { nil: null }),
  name,
  data: fc.constantFrom({}, { a: 1 }, { a: [1, "x"], b: { c: null } }, { b: 1.5 }),
  created_at: ts,
  updated_at: ts
})
const unique = <A>(arb: fc.Arbitrary<A>, keys: Array<(a: A) => string>) =>
  fc.uniqueArray(arb, { maxLength: 5, comparator: (a, b) => keys.some((k) => k(a) === k(b)) })
const rows = fc.record({
  users: unique(user, [(u) => u.id, (u) => u.name, (u) => u.email]),
  skills: unique(skill, [(s) => s.id]),
  contexts: unique(context, [(c) => c.id])
})
/** A state a database can hold: contexts reference existing users and sessions. */
const consistent = (
  s: { users: ReadonlyArray<UserExport>; skills: ReadonlyArray<SkillExport>; contexts: ReadonlyArray<ContextExport> },
  sessions: ReadonlyArray<string>
): TargetState => {
  const users = new Set(s.users.map((u) => u.id))
  const sessionIds = s.users.length === 0 ? [] : sessions
  return {
    ...s,
    contexts: s.contexts
      .filter((c) => users.has(c.user_id))
      .map((c) => (c.session_id === null || sessionIds.includes(c.session_id) ? c : { ...c, session_id: null })),
    sessionIds
  }
}
const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
const sorted = (s: TargetState) => ({
  users: [...s.users].sort(byId),
  skills: [...s.skills].sort(byId),
  contexts: [...s.contexts].sort(byId),
  sessionIds: [...s.sessionIds].sort()
})

layer(PropertyDatabasesLive, { excludeTestServices: true })("import between two real databases", (it) => {
  it.effect.prop(
    "does what the pure planner says, row for row, on the COPY and the chunked path; a dry run counts the same without writing",
    [rows, fc.subarray(["s1", "s2"]), rows, fc.boolean()],
    ([targetRows, sessions, sourceRows, bulk]) =>
      Effect.gen(function* () {
        const { src, dst, localDb, cloudDb } = yield* PropertyDatabases
        const target = consistent(targetRows, sessions)
        const source = consistent(sourceRows, ["s1", "s2"])
        yield* Effect.promise(() => Promise.all([loadState(cloudDb, target), loadState(localDb, source)]))
        const plan = planImport(target, source)
        const dry = yield* importBetween(src, dst, { dryRun: true, bulk: !bulk })
        expect(sorted(yield* Effect.promise(() => readState(cloudDb)))).toEqual(sorted(target))
        const real = yield* importBetween(src, dst, { dryRun: false, chunkSize: 2, bulk })
        for (const [i, table] of (["users", "skills", "contexts"] as const).entries()) {
          const p = plan[table]
          const expected = {
            inserted: p.inserted.length,
            updated: p.updated.length,
            unchanged: p.unchanged.length,
            skipped: p.skipped.length,
            session_cleared: p.sessionCleared.length
          }
          expect(real.tables[i]).toMatchObject({ table, ...expected, committed: true })
          expect(dry.tables[i]).toMatchObject({ table, ...expected, committed: false })
          expect(new Set(real.tables[i]!.skips)).toEqual(new Set(p.skipped))
        }
        expect(sorted(yield* Effect.promise(() => readState(cloudDb)))).toEqual(
          sorted(applyImport(target, source, plan))
        )
      }),
    // A generous deadline for a loaded 2-core machine (40 imports once took 95 s there, with a connection per step).
    { timeout: 300_000, fastCheck: { numRuns: 40 } }
  )
})

describe("import rules and failures", () => {
  const u = (id: string, name = id, email = `${id}@example.com`): UserExport => ({
    id,
    name,
    email,
    display_name: "",
    roles: ["member"],
    created_at: "2025-01-01T00:00:00.000000Z",
    updated_at: "2025-01-02T00:00:00.000000Z"
  })
  const c = (id: string, user_id: string, session_id: string | null = null): ContextExport => ({
    id,
    user_id,
    session_id,
    name: id,
    data: { id },
    created_at: "2025-01-01T00:00:00.000000Z",
    updated_at: "2025-01-02T00:00:00.000000Z"
  })

  it.live("skips a user whose email belongs to another id and the contexts of a missing user, naming them", () =>
    Effect.gen(function* () {
      yield* Effect.promise(() =>
        loadState(cloud, { users: [u("u1", "other", "bob@x")], skills: [], contexts: [], sessionIds: [] })
      )
      yield* Effect.promise(() =>
        loadState(local, {
          users: [u("u1", "ann", "ann@x"), u("u2", "bob", "bob@x"), u("u3")],
          skills: [],
          contexts: [c("c1", "u2"), c("c2", "u3", "s-local"), c("c3", "u1")],
          sessionIds: ["s-local"]
        })
      )
      const report = yield* sync(local, cloud, { dryRun: false })
      const [users, , contexts] = report.tables
      expect(users).toMatchObject({
        inserted: 1,
        updated: 1,
        skipped: 1,
        skips: [{ id: "u2", reason: "email belongs to user u1" }]
      })
      expect(contexts).toMatchObject({
        inserted: 2,
        skipped: 1,
        session_cleared: 1,
        skips: [{ id: "c1", reason: "user u2 does not exist" }]
      })
      const after = yield* Effect.promise(() => readState(cloud))
      expect(after.contexts.map((x) => [x.id, x.session_id])).toEqual([
        ["c2", null],
        ["c3", null]
      ])
      expect(after.users.find((x) => x.id === "u1")?.email).toBe("ann@x")
    })
  )

  // Found by the property above: a rename frees a name and an email that later rows of the same import want.
  // Skips are decided against the target as it stood before the import, on every path and at every chunk size.
  it.live("classifies a rename chain against the target as it stood before the import, whatever the chunk size", () =>
    Effect.gen(function* () {
      const target: TargetState = { users: [u("a", "ann", "ann@x")], skills: [], contexts: [], sessionIds: [] }
      const source = {
        users: [u("a", "bob", "cy@x"), u("d", "ann", "bob@x"), u("é", "cy", "ann@x")],
        skills: [],
        contexts: []
      }
      const plan = planImport(target, source)
      expect(plan.users).toMatchObject({
        updated: ["a"],
        skipped: [
          { id: "d", reason: "name belongs to user a" },
          { id: "é", reason: "email belongs to user a" }
        ]
      })
      yield* Effect.promise(() => loadState(local, { ...source, sessionIds: [] }))
      for (const options of [
        { bulk: true },
        { bulk: false, chunkSize: 1 },
        { bulk: false, chunkSize: 2 },
        { bulk: false }
      ]) {
        yield* Effect.promise(() => loadState(cloud, target))
        const dry = yield* sync(local, cloud, { dryRun: true, ...options })
        const first = yield* sync(local, cloud, { dryRun: false, ...options })
        for (const report of [dry, first]) {
          expect(report.tables[0]).toMatchObject({
            inserted: 0,
            updated: 1,
            unchanged: 0,
            skipped: 2,
            skips: plan.users.skipped
          })
        }
        expect(sorted(yield* Effect.promise(() => readState(cloud)))).toEqual(sorted(applyImport(target, source, plan)))
        // The rename freed ann and ann@x: a rerun takes them, and the run after it writes nothing.
        const second = yield* sync(local, cloud, { dryRun: false, ...options })
        expect(second.tables[0]).toMatchObject({ inserted: 2, updated: 0, unchanged: 1, skipped: 0 })
        const third = yield* sync(local, cloud, { dryRun: false, ...options })
        expect(third.tables[0]).toMatchObject({ inserted: 0, updated: 0, unchanged: 3, skipped: 0 })
        expect(sorted(yield* Effect.promise(() => readState(cloud))).users).toEqual(
          sorted({ ...source, sessionIds: [] }).users
        )
      }
    })
  )

  it.live("never overwrites created_at", () =>
    Effect.gen(function* () {
      yield* Effect.promise(() =>
        loadState(cloud, {
          users: [{ ...u("u1"), created_at: "2020-01-01T00:00:00.000000Z" }],
          skills: [],
          contexts: [],
          sessionIds: []
        })
      )
      yield* Effect.promise(() =>
        loadState(local, {
          users: [{ ...u("u1"), display_name: "new", created_at: "2024-06-01T00:00:00.000000Z" }],
          skills: [],
          contexts: [],
          sessionIds: []
        })
      )
      const report = yield* sync(local, cloud, { dryRun: false })
      expect(report.tables[0]).toMatchObject({ updated: 1 })
      const [row] = (yield* Effect.promise(() => readState(cloud))).users
      expect(row).toMatchObject({ display_name: "new", created_at: "2020-01-01T00:00:00.000000Z" })
    })
  )

  it.live(
    "reports a partial import with exact counts when a table fails after others committed, and a rerun converges",
    () =>
      Effect.gen(function* () {
        const users = Array.from({ length: 12 }, (_, i) => u(`u${i}`))
        const contexts = Array.from({ length: 30 }, (_, i) => c(`c${i}`, `u${i % 12}`))
        yield* Effect.promise(() => loadState(cloud, { users: [], skills: [], contexts: [], sessionIds: [] }))
        yield* Effect.promise(() => loadState(local, { users, skills: [], contexts, sessionIds: [] }))
        yield* sqlRows(
          cloud,
          `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
         IF NEW.id = 'c25' THEN RAISE EXCEPTION 'refused %', NEW.id; END IF; RETURN NEW; END $$;
       CREATE TRIGGER refuse BEFORE INSERT ON user_contexts FOR EACH ROW EXECUTE FUNCTION refuse();`
        )
        const exit = yield* Effect.exit(sync(local, cloud, { dryRun: false, chunkSize: 10, bulk: false }))
        expect(Exit.isFailure(exit)).toBe(true)
        if (Exit.isFailure(exit)) {
          const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
          const e = error as { _tag: string; completed: number; total: number; message: string }
          expect([e._tag, e.completed, e.total]).toEqual(["PartialImport", 12, 42])
          expect(e.message).toContain("refused c25")
        }
        const mid = yield* Effect.promise(() => readState(cloud))
        expect(mid.users).toHaveLength(12)
        expect(mid.contexts).toHaveLength(0) // the chunks before c25 rolled back with it
        yield* sqlRows(cloud, "DROP TRIGGER refuse ON user_contexts")
        const rerun = yield* sync(local, cloud, { dryRun: false, chunkSize: 10 })
        expect(rerun.tables.map((t) => [t.inserted, t.unchanged])).toEqual([
          [0, 12],
          [0, 0],
          [30, 0]
        ])
        const again = yield* sync(local, cloud, { dryRun: false })
        expect(again.tables.every((t) => t.inserted === 0 && t.updated === 0)).toBe(true)
      })
  )

  it.live(
    "a connection lost mid-import rolls the open table back, says what was committed, and a rerun completes",
    () =>
      Effect.gen(function* () {
        const users = Array.from({ length: 5 }, (_, i) => u(`u${i}`))
        const contexts = Array.from({ length: 8 }, (_, i) => c(`c${i}`, `u${i % 5}`))
        yield* Effect.promise(() => loadState(cloud, { users: [], skills: [], contexts: [], sessionIds: [] }))
        yield* Effect.promise(() => loadState(local, { users, skills: [], contexts, sessionIds: [] }))
        // The server side of the importing connection goes away while it writes contexts.
        yield* sqlRows(
          cloud,
          `CREATE FUNCTION drop_me() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$;
       CREATE TRIGGER drop_me BEFORE INSERT ON user_contexts FOR EACH ROW EXECUTE FUNCTION drop_me();`
        )
        for (const bulk of [true, false]) {
          const exit = yield* Effect.exit(sync(local, cloud, { dryRun: false, bulk }))
          const error =
            Exit.isFailure(exit) && exit.cause._tag === "Fail"
              ? (exit.cause.error as { _tag: string; completed: number; total: number; message: string })
              : undefined
          expect([error?._tag, error?.completed, error?.total]).toEqual(["PartialImport", 5, 13])
          expect(error?.message).toContain("users, skills committed; user_contexts rolled back")
          expect((yield* Effect.promise(() => readState(cloud))).contexts).toEqual([])
        }
        yield* sqlRows(cloud, "DROP TRIGGER drop_me ON user_contexts")
        const rerun = yield* sync(local, cloud, { dryRun: false })
        expect(rerun.tables.map((t) => [t.inserted, t.unchanged])).toEqual([
          [0, 5],
          [0, 0],
          [8, 0]
        ])
      })
  )

  it.live("names a schema mismatch before writing anything", () =>
    Effect.gen(function* () {
      const bad = yield* Effect.promise(() => migratedDatabase("bad"))
      yield* sqlRows(
        bad,
        "ALTER TABLE user_contexts DROP COLUMN data; ALTER TABLE skills ALTER COLUMN enabled TYPE text"
      )
      yield* Effect.promise(() => loadState(local, { users: [u("u1")], skills: [], contexts: [], sessionIds: [] }))
      const problems = yield* Effect.orDie(
        Effect.scoped(Effect.flatMap(clientOf(bad), (sql) => schemaProblems({ sql })))
      )
      expect(problems).toEqual([
        "column skills.enabled is text, expected boolean",
        "column user_contexts.data is missing"
      ])
      const exit = yield* Effect.exit(sync(local, bad, { dryRun: false }))
      expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error.message).toContain(
        "user_contexts.data is missing"
      )
      expect(yield* sqlRows(bad, "SELECT count(*)::int AS n FROM users")).toEqual([{ n: 0 }])
    })
  )

  it.live("diffs per table: only local, only remote, different, equal", () =>
    Effect.gen(function* () {
      const sk = (id: string, fields: Partial<SkillExport> = {}): SkillExport => ({
        id,
        name: id,
        description: "",
        enabled: true,
        tags: [],
        category: "general",
        assigned_agents: [],
        instructions: "",
        form: "file",
        mode: 0o644,
        original: "---\nname: x\n---\n\n",
        extra: { license: "MIT", metadata: { a: 1, b: 2 } },
        version_hash: "h",
        created_at: "2025-01-01T00:00:00.000000Z",
        updated_at: "2025-01-02T00:00:00.000000Z",
        ...fields
      })
      const skills = [sk("s1"), sk("s2"), sk("s3"), sk("s4"), sk("s5")]
      yield* Effect.promise(() =>
        loadState(local, { users: [u("u1"), u("u2"), u("u3")], skills, contexts: [c("c1", "u1")], sessionIds: [] })
      )
      yield* Effect.promise(() =>
        loadState(cloud, {
          users: [u("u2"), { ...u("u3"), display_name: "x" }, u("u4")],
          // Only the text a skill was read from, only its form, only its extra fields: each is a difference; the same
          // extra fields in another key order are not (they are one value, as an import compares them).
          skills: [
            sk("s1", { original: "---\nname: y\n---\n\n" }),
            sk("s2", { form: "folder" }),
            sk("s3", { extra: {} }),
            sk("s4", { extra: { metadata: { b: 2, a: 1 }, license: "MIT" } }),
            // Only its SKILL.md's executable bit: a difference too.
            sk("s5", { mode: 0o755 })
          ],
          contexts: [],
          sessionIds: []
        })
      )
      const diff = yield* Effect.orDie(
        Effect.scoped(
          Effect.gen(function* () {
            const l = yield* clientOf(local)
            const r = yield* clientOf(cloud)
            // Postgres digests, and the rows digested here (the path of a source that offers no digests): the same counts.
            const rowsOnly = ({ counts, rows }: ExportSource) => ({ counts, rows })
            return [
              yield* diffSources(sqlSource({ sql: l }, 2), sqlSource({ sql: r }, 2)),
              yield* diffSources(rowsOnly(sqlSource({ sql: l }, 2)), rowsOnly(sqlSource({ sql: r }, 2)))
            ]
          })
        )
      )
      const expected = [
        { table: "users", only_local: 1, only_remote: 1, different: 1, equal: 1 },
        { table: "skills", only_local: 0, only_remote: 0, different: 4, equal: 1 },
        { table: "contexts", only_local: 1, only_remote: 0, different: 0, equal: 0 }
      ]
      expect(diff).toEqual([expected, expected])
    })
  )
})
