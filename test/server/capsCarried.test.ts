// Caps over the totals a kept tree carries: a push over a cap is refused after accepted pushes, refusals, shrinks and a
// restart, as a count over the whole tree would refuse it (a stale carried total would accept it).

import * as SqlClient from "@effect/sql/SqlClient"
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { CAPS, entryWireBytes } from "../../src/domain/caps.js"
import { isRecord } from "../../src/domain/record.js"
import { makeFileStore } from "../../src/server/files/FileStore.js"
import { caller, entriesOf, migratedDb, push, type Tree } from "../support/serverPush.js"

const Db = migratedDb("capsrev")

/** A refusal's reason (every upload refusal carries one). */
const reasonOf = (e: unknown) => (isRecord(e) && typeof e.reason === "string" ? e.reason : undefined)

/** A store of one server process: its own cache of trees over the shared database. */
const store = makeFileStore

const C = { ...CAPS, maxTotalBytes: 100_000 }
const file = (n: number) => ({ text: "x".repeat(n * 1000), executable: false })

layer(Db, { excludeTestServices: true })("caps over carried totals", (it) => {
  it.effect("refuse a push over a cap after refusals, shrinks and a restart, as over the whole tree", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      yield* sql`INSERT INTO tenants (id, name) VALUES ('caps', 'caps')`
      const s = yield* store
      const up = (
        st: typeof s,
        base: string | null,
        after: Tree,
        set: ReadonlyArray<string>,
        del: ReadonlyArray<string> = []
      ) =>
        Effect.flatMap(push(base, after, set, del), (body) =>
          st.upload(caller("caps"), body, { idempotencyKey: undefined, caps: C })
        )
      const why = (e: Effect.Effect<unknown, unknown>) => Effect.map(Effect.flip(e), reasonOf)
      const t1: Tree = new Map([
        ["content/a.md", file(10)],
        ["content/b.md", file(10)],
        ["content/c.md", file(10)]
      ])
      const r1 = yield* up(s, null, t1, [...t1.keys()])
      const over = new Map(t1).set("content/d.md", file(71))
      expect(yield* why(up(s, r1.revision, over, ["content/d.md"]))).toBe(
        "the resulting tree would hold more than 100000 bytes in all"
      )
      // a refused push leaves no total behind: 70 more fits
      const t2 = new Map(t1).set("content/d.md", file(60))
      const r2 = yield* up(s, r1.revision, t2, ["content/d.md"])
      // 90 in all; the 60-byte file (the largest) shrinks, then a file of 11 is over the total
      const t3 = new Map(t2).set("content/d.md", file(1))
      const r3 = yield* up(s, r2.revision, t3, ["content/d.md"])
      const t4 = new Map(t3).set("content/e.md", file(60))
      const r4 = yield* up(s, r3.revision, t4, ["content/e.md"])
      const t5 = new Map(t4).set("content/f.md", file(10))
      expect(yield* why(up(s, r4.revision, t5, ["content/f.md"]))).toBe(
        "the resulting tree would hold more than 100000 bytes in all"
      )
      const t6 = new Map(t4).set("content/f.md", file(9))
      const r6 = yield* up(s, r4.revision, t6, ["content/f.md"])
      // a file over the largest-file cap, after the largest was deleted
      const t7 = new Map(t6)
      t7.delete("content/e.md")
      const r7 = yield* up(s, r6.revision, t7, [], ["content/e.md"])
      // another server process (no cache): the same answers
      const fresh = yield* store
      const t8 = new Map(t7).set("content/g.md", file(60))
      expect(
        yield* why(up(fresh, r7.revision, new Map(t8).set("content/h.md", file(20)), ["content/g.md", "content/h.md"]))
      ).toBe("the resulting tree would hold more than 100000 bytes in all")
      const r8 = yield* up(fresh, r7.revision, t8, ["content/g.md"])
      expect(r8.files).toBe(6)
      // the manifest cap set at t8's exact wire size: one more row is over it
      const wire = 200 + entriesOf(t8).reduce((n, e) => n + entryWireBytes(e.path, e.size), 0)
      const M = { ...C, maxTotalBytes: 10_000_000, maxManifestBytes: wire }
      const t9 = new Map(t8).set("content/i.md", file(1))
      for (const st of [s, fresh]) {
        const r = yield* Effect.flip(
          Effect.flatMap(push(r8.revision, t9, ["content/i.md"], []), (body) =>
            st.upload(caller("caps"), body, { idempotencyKey: undefined, caps: M })
          )
        )
        expect(reasonOf(r)).toBe(`the resulting tree would hold a manifest larger than ${wire} bytes`)
      }
    })
  )
})
