// The repositories on the real PostgreSQL: batched upserts round-trip every field, chunking, deletes, hand edits, deny over allow.
import { SqlClient } from "@effect/sql"
import { describe, expect, it, layer } from "@effect/vitest"
import { Arbitrary, Effect, FastCheck as fc, Layer, Option, Redacted } from "effect"
import { agentHash, contentHash, contentKey } from "../../../src/domain/hash.js"
import { Access, Agent, Content, Skill } from "../../../src/domain/model.js"
import * as Database from "../../../src/services/ProjectDatabase.js"
import * as Repos from "../../../src/services/repos/index.js"
import { CHUNK_ROWS, jsonChunks, unstorable } from "../../../src/services/repos/shared.js"
import { scopedDatabase } from "../../support/pg.js"

/** The repositories over one migrated database for the whole file (dropped at its end). */
const ReposLive = Layer.unwrapScoped(
  Effect.map(scopedDatabase("repos"), (url) =>
    Repos.layer.pipe(
      Layer.provideMerge(Database.layerMigrated({ url: Option.some(Redacted.make(url)), dataDir: "/nonexistent" }))
    )
  )
).pipe(Layer.orDie)

/** Items PostgreSQL text can hold (no NUL, no lone surrogate): what a UTF-8 file can carry anyway. */
const storable = <A>(arb: fc.Arbitrary<A>) => arb.filter((a) => unstorable(a) === undefined)

const uniqueBy = <A>(items: ReadonlyArray<A>, key: (a: A) => string) => {
  const seen = new Map<string, A>()
  for (const a of items) seen.set(key(a), a)
  return [...seen.values()]
}

/** An item as written with the file it came from. */
const written = (item: Content) => ({ item, fileSha: "0".repeat(64) })
/** Extra fields as JSON reads them back (-0 is 0). */
const asJson = (c: Content) => new Content({ ...c, extra: JSON.parse(JSON.stringify(c.extra)) })

const content = (i: number, extra: Partial<Content> = {}) =>
  new Content({
    source: `s${i % 3}`,
    slug: `item-${i}`,
    path: `item-${i}.md`,
    format: "yaml",
    head: null,
    extra: { weight: i, params: { deep: [1, "x"] } },
    title: `Item ${i} — “quoted” 'x' \\ back`,
    kind: "article",
    description: "",
    author: "ops",
    keywords: ["a,b", "c d", "{e}", 'f"g'],
    image: i % 2 === 0 ? null : `img/${i}.png`,
    public: i % 5 !== 0,
    tags: i % 4 === 0 ? [] : ["t"],
    published_at: i % 2 === 0 ? "2025-03-01" : null,
    updated_at: i % 3 === 0 ? "2025-03-02T10:00:00Z" : null,
    body: `# ${i}\n\nNULL \\N \t tab ✓ 漢字\n`,
    ...extra
  })

describe("json chunks", () => {
  it("keep every row, in order, within the row and size caps", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ a: fc.string(), n: fc.integer() }), { maxLength: 60 }),
        fc.integer({ min: 1, max: 7 }),
        fc.integer({ min: 10, max: 300 }),
        (rows, maxRows, maxBytes) => {
          const chunks = jsonChunks(rows, maxRows, maxBytes)
          const parsed = chunks.map((c) => JSON.parse(c) as Array<unknown>)
          expect(parsed.flat()).toEqual(rows)
          for (const p of parsed) {
            expect(p.length).toBeGreaterThan(0)
            expect(p.length).toBeLessThanOrEqual(maxRows)
            if (p.length > 1) expect(JSON.stringify(p).length).toBeLessThanOrEqual(maxBytes + p.length + 2)
          }
        }
      )
    )
  })
})

layer(ReposLive, { excludeTestServices: true })("repositories", (it) => {
  it.effect.prop(
    "contents: any storable items round-trip with their hash (property, real PostgreSQL)",
    [fc.array(storable(Arbitrary.make(Content)).map(asJson), { maxLength: 8 })],
    ([raw]) =>
      Effect.gen(function* () {
        const items = uniqueBy(raw, contentKey)
        const repo = yield* Repos.ContentsRepo
        const sql = yield* SqlClient.SqlClient
        yield* sql`DELETE FROM contents`
        yield* repo.upsert(items.map(written))
        const listed = yield* repo.list()
        expect(listed.invalid).toEqual([])
        const got = new Map(listed.items.map((s) => [contentKey(s.item), s]))
        expect(got.size).toBe(items.length)
        for (const c of items) {
          const s = got.get(contentKey(c))!
          expect({ ...s.item }).toEqual({ ...c })
          expect(s.hash).toBe(contentHash(c))
          expect(contentHash(s.item)).toBe(contentHash(c))
        }
      }).pipe(Effect.orDie),
    { fastCheck: { numRuns: 25 } }
  )

  it.effect.prop(
    "agents and skills: any storable items round-trip; agent settings keep their key order",
    [
      fc.array(storable(Arbitrary.make(Agent)), { maxLength: 5 }),
      fc.array(storable(Arbitrary.make(Skill)), { maxLength: 5 })
    ],
    ([rawAgents, rawSkills]) =>
      Effect.gen(function* () {
        const agents = uniqueBy(rawAgents, (a) => a.id)
        const skills = uniqueBy(rawSkills, (s) => s.id)
        const sql = yield* SqlClient.SqlClient
        yield* sql`DELETE FROM agents`
        yield* sql`DELETE FROM skills`
        yield* (yield* Repos.AgentsRepo).upsert(agents)
        yield* (yield* Repos.SkillsRepo).upsert(skills)
        const la = yield* (yield* Repos.AgentsRepo).list()
        const ls = yield* (yield* Repos.SkillsRepo).list()
        const byId = new Map(la.items.map((s) => [s.item.id, s.item]))
        for (const a of agents) {
          // Settings are JSON: they come back as their JSON reading (-0, which JSON cannot write, reads as 0).
          expect(byId.get(a.id)!.settings).toStrictEqual(JSON.parse(JSON.stringify(a.settings)))
          expect(JSON.stringify(byId.get(a.id)!.settings)).toBe(JSON.stringify(a.settings))
          expect(agentHash(byId.get(a.id)!)).toBe(agentHash(a))
        }
        expect(ls.items.map((s) => ({ ...s.item })).sort((x, y) => (x.id < y.id ? -1 : 1))).toEqual(
          // `extra` is JSON: it comes back as its JSON reading (-0 reads as 0), as agent settings do above.
          skills
            .map((s) => ({ ...s, extra: JSON.parse(JSON.stringify(s.extra)) }))
            .sort((x, y) => (x.id < y.id ? -1 : 1))
        )
      }).pipe(Effect.orDie),
    { fastCheck: { numRuns: 15 } }
  )

  it.effect("writes more rows than one chunk holds in a few statements, and deletes them in bulk", () =>
    Effect.gen(function* () {
      const n = CHUNK_ROWS * 2 + 17
      const items = Array.from({ length: n }, (_, i) => content(i))
      const r = yield* Effect.orDie(
        Effect.gen(function* () {
          const repo = yield* Repos.ContentsRepo
          const sql = yield* SqlClient.SqlClient
          yield* sql`DELETE FROM contents`
          const count = yield* repo.upsert(items.map(written))
          const modified = items.slice(0, 10).map((c) => new Content({ ...c, body: "changed" }))
          yield* repo.upsert(modified.map(written))
          const listed = yield* repo.list()
          yield* repo.remove(items.slice(0, n - 5))
          const counted = yield* sql<{ left: number }>`SELECT count(*)::int AS left FROM contents`
          return { written: count, listed, left: counted[0]?.left }
        })
      )
      expect(r.written).toBe(n)
      expect(r.listed.items).toHaveLength(n)
      const first = r.listed.items.find((s) => s.item.slug === "item-0")!
      expect(first.item.body).toBe("changed")
      expect(first.hash).toBe(contentHash(first.item))
      const other = r.listed.items.find((s) => s.item.slug === "item-99")!
      expect({ ...other.item }).toEqual({ ...content(99) })
      expect(r.left).toBe(5)
    })
  )

  it.effect("a hand edit that leaves version_hash alone blanks it, so the next read hashes the row afresh", () =>
    Effect.gen(function* () {
      const c = content(1)
      const r = yield* Effect.orDie(
        Effect.gen(function* () {
          const repo = yield* Repos.ContentsRepo
          const sql = yield* SqlClient.SqlClient
          yield* sql`DELETE FROM contents`
          yield* repo.upsert([written(c)])
          yield* sql`UPDATE contents SET title = 'by hand' WHERE slug = ${c.slug}`
          const [edited] = yield* sql<{
            version_hash: string
          }>`SELECT version_hash FROM contents WHERE slug = ${c.slug}`
          // An update that changes nothing keeps the hash.
          yield* repo.upsert([written(new Content({ ...c, title: "again" }))])
          yield* sql`UPDATE contents SET title = title WHERE slug = ${c.slug}`
          const [kept] = yield* sql<{ version_hash: string }>`SELECT version_hash FROM contents WHERE slug = ${c.slug}`
          return { version_hash: edited?.version_hash, listed: yield* repo.list(), kept: kept?.version_hash }
        })
      )
      expect(r.version_hash).toBe("")
      expect(r.kept).toBe(contentHash(new Content({ ...c, title: "again" })))
      expect(r.listed.items[0]!.hash).toBe(contentHash(r.listed.items[0]!.item))
    })
  )

  it.effect("a row that does not decode is reported by key, not returned", () =>
    Effect.gen(function* () {
      const r = yield* Effect.orDie(
        Effect.gen(function* () {
          const sql = yield* SqlClient.SqlClient
          yield* sql`DELETE FROM agents`
          yield* sql`INSERT INTO agents (id, name, display_name, description, enabled, tags, settings, system_prompt, version_hash)
                   VALUES ('-rm', 'x', 'x', '', true, '{}', '{}', '', 'h'), ('ok', 'x', 'x', '', true, '{}', '{"a":1}', '', 'h')`
          return yield* (yield* Repos.AgentsRepo).list()
        })
      )
      expect(r.items.map((s) => s.item.id)).toEqual(["ok"])
      expect(r.invalid.map((i) => i.key)).toEqual(["-rm"])
    })
  )
})

describe("access decisions", () => {
  it("deny wins over allow whatever the order; nothing is none", () => {
    fc.assert(
      fc.property(fc.array(Arbitrary.make(Access)), (accesses) => {
        const d = Repos.decide(accesses)
        expect(d).toBe(accesses.includes("deny") ? "deny" : accesses.length > 0 ? "allow" : "none")
        expect(Repos.decide([...accesses].reverse())).toBe(d)
      })
    )
  })
})
