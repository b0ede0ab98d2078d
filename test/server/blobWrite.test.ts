// An upload's blob write: the binary COPY encoder against the decoder, and the writer against a real PostgreSQL —
// bytes of every value stored exactly, blobs already held left alone, writers racing for the same blobs, and a
// write interrupted mid-COPY leaving no row and no connection in a transaction.
import { createHash, randomBytes } from "node:crypto"
import * as SqlClient from "@effect/sql/SqlClient"
import { PgClient } from "@effect/sql-pg"
import { describe, expect, it, layer } from "@effect/vitest"
import { Deferred, Effect, Exit, FastCheck, Fiber, Layer, Redacted, Schedule } from "effect"
import { blobReader } from "../../src/server/files/blobRead.js"
import { blobWriter, HELD } from "../../src/server/files/blobWrite.js"
import {
  copyBinaryDecoder,
  copyBinaryEncode,
  type EncodedField,
  PIECE_BYTES,
  piecePool,
  type Tuple,
  textField
} from "../../src/server/files/copyBinary.js"
import * as Migrations from "../../src/server/migrations.js"
import { scopedDatabase } from "../support/pg.js"

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex")

// Small fields, and fields around the size that is written as a piece of its own (32 KiB) and a piece (256 KiB).
const size = FastCheck.oneof(
  { weight: 8, arbitrary: FastCheck.nat({ max: 300 }) },
  { weight: 1, arbitrary: FastCheck.integer({ min: 32 * 1024 - 2, max: 32 * 1024 + 1 }) },
  { weight: 1, arbitrary: FastCheck.integer({ min: 256 * 1024 - 40, max: 256 * 1024 + 1 }) }
)
const field = FastCheck.oneof(
  { weight: 1, arbitrary: FastCheck.constant(null) },
  { weight: 6, arbitrary: FastCheck.tuple(size, FastCheck.nat(255)).map(([n, b]) => Buffer.alloc(n, b)) }
)

// Text fields (a hash in hex, and ASCII text around the sizes a piece is cut at) and bigint fields (sizes, the
// largest safe integer, negatives), which the encoder writes straight into its pieces.
const text = FastCheck.oneof(
  FastCheck.stringMatching(/^[0-9a-f]{64}$/),
  FastCheck.tuple(size, FastCheck.integer({ min: 0x20, max: 0x7e })).map(([n, c]) => String.fromCharCode(c).repeat(n))
).map(textField)
const int8 = FastCheck.oneof(
  FastCheck.nat(),
  FastCheck.constantFrom(0, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER, -1, -(2 ** 40))
)
const anyField = FastCheck.oneof(field, text, int8)

/** A field's bytes as the binary COPY carries them: text's UTF-8 bytes, a number's eight big-endian. */
const asBytes = (f: EncodedField) => {
  if (typeof f === "string") return Buffer.from(f, "utf8")
  if (typeof f !== "number") return f
  const b = Buffer.alloc(8)
  b.writeBigInt64BE(BigInt(f))
  return b
}

describe("the binary COPY encoder", () => {
  it.prop(
    "writes a text or bigint field as the bytes of its column, wherever a piece is cut",
    [FastCheck.array(FastCheck.array(anyField, { maxLength: 5 }), { maxLength: 40 })],
    ([tuples]) => {
      const back: Array<Tuple> = []
      const decoder = copyBinaryDecoder((t) => back.push(t))
      for (const piece of copyBinaryEncode(tuples)) decoder.write(piece)
      decoder.end()
      const summary = (ts: ReadonlyArray<ReadonlyArray<Uint8Array | null>>) =>
        ts.map((t) => t.map((f) => (f === null ? null : `${f.length}:${sha(f)}`)))
      expect(summary(back)).toEqual(summary(tuples.map((t) => t.map(asBytes))))
    },
    { fastCheck: { numRuns: 60 } }
  )

  it.prop(
    "writes any text as its UTF-8 bytes: ASCII text in place, other text as its own bytes",
    [FastCheck.array(FastCheck.string({ unit: "binary", maxLength: 80 }), { maxLength: 8 })],
    ([texts]) => {
      const fields = texts.map(textField)
      const back: Array<Tuple> = []
      const decoder = copyBinaryDecoder((t) => back.push(t))
      for (const piece of copyBinaryEncode([fields])) decoder.write(piece)
      decoder.end()
      expect(back[0]!.map((f) => f?.toString("hex"))).toEqual(texts.map((t) => Buffer.from(t, "utf8").toString("hex")))
    }
  )

  it("writes a hash and a size whole however few bytes are left in a piece", () => {
    // The property above seldom ends a piece within a few bytes of its end (a field of 32 KiB or more is a piece of
    // its own, and starts the next piece at 0), so each offset from the piece's end is made here: fields under
    // 32 KiB fill the piece up to PIECE_BYTES - o, then the hash (text) and the size (bigint) follow.
    const hash = textField("0123456789abcdef".repeat(4))
    const HEADER = 19
    for (let o = 0; o <= 120; o++) {
      // Up to the first tuple: the header, then tuples of one field (2 + 4 + n bytes each) filling to PIECE_BYTES - o.
      let left = PIECE_BYTES - o - HEADER
      const fill: Array<ReadonlyArray<Buffer>> = []
      while (left > 0) {
        const n = Math.min(32 * 1024 - 8, left - 6)
        if (n < 0) break
        fill.push([Buffer.alloc(n, o)])
        left -= 6 + n
      }
      // What the fill left short of PIECE_BYTES - o (under 6 bytes) goes into the last fill field.
      if (left > 0) fill[fill.length - 1] = [Buffer.alloc(fill[fill.length - 1]![0]!.length + left, o)]
      expect(HEADER + fill.reduce((sum, [f]) => sum + 6 + f!.length, 0)).toBe(PIECE_BYTES - o)
      const back: Array<Tuple> = []
      const decoder = copyBinaryDecoder((t) => back.push(t))
      for (const piece of copyBinaryEncode([...fill, [hash, 123_456_789_012]])) decoder.write(piece)
      decoder.end()
      expect(back.length).toBe(fill.length + 1)
      const [h, n] = back[back.length - 1]!
      expect(h?.toString("latin1")).toBe(hash)
      expect(n?.readBigInt64BE(0)).toBe(123_456_789_012n)
    }
  })

  it.prop(
    "writes what the decoder reads back, every piece left as it was handed out",
    [FastCheck.array(FastCheck.array(field, { maxLength: 3 }), { maxLength: 30 })],
    ([tuples]) => {
      const pieces = [...copyBinaryEncode(tuples)]
      const back: Array<Tuple> = []
      const decoder = copyBinaryDecoder((t) => back.push(t))
      decoder.write(Buffer.concat(pieces))
      decoder.end()
      // Compared by length and hash: an element-wise comparison of megabytes would take the test's time.
      const summary = (ts: ReadonlyArray<Tuple>) =>
        ts.map((t) => t.map((f) => (f === null ? null : `${f.length}:${sha(f)}`)))
      expect(summary(back)).toEqual(summary(tuples))
      // Memory stays flat: no piece is larger than a piece or one field.
      const largest = Math.max(256 * 1024, ...tuples.flat().map((f) => f?.length ?? 0))
      for (const p of pieces) expect(p.length).toBeLessThanOrEqual(largest)
    },
    { fastCheck: { numRuns: 40 } }
  )

  it.prop(
    "writes the same from pieces used again as from fresh ones, each piece taken once and given back whole",
    [FastCheck.array(FastCheck.array(field, { maxLength: 3 }), { maxLength: 30 })],
    ([tuples]) => {
      const pool = piecePool(4)
      // Pieces handed back dirty, as a used one is: the encoder must write every byte it hands out.
      pool.give(Array.from({ length: 4 }, (_, i) => Buffer.alloc(PIECE_BYTES, 0xa5 ^ i)))
      const used: Array<Buffer> = []
      const encoded = Buffer.concat([...copyBinaryEncode(tuples, { take: pool.take, took: (p) => void used.push(p) })])
      expect(encoded.equals(Buffer.concat([...copyBinaryEncode(tuples)]))).toBe(true)
      // No piece is handed to one encoding twice (a piece taken again would overwrite bytes handed out before).
      expect(new Set(used).size).toBe(used.length)
      for (const p of used) expect(p.length).toBe(PIECE_BYTES)
      pool.give(used)
      expect(pool.held()).toBe(4)
    },
    { fastCheck: { numRuns: 40 } }
  )
})

const blob = (data: Buffer) => ({ sha256: sha(data), data })

/** Migrated fresh database, a PgClient on it with three connections, and one tenant. */
const Db = Layer.unwrapScoped(
  Effect.map(scopedDatabase("blobwrite"), (url) =>
    Migrations.layer.pipe(Layer.provideMerge(PgClient.layer({ url: Redacted.make(url), maxConnections: 3 })))
  )
)

/** The tenant's blobs: hash, size column, length of the bytes and their hash, pending upload. */
const rowsOf = (tenantId: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql<{ sha256: string; size: string; length: number; digest: string; written_by: string | null }>`
      SELECT sha256, size::text AS size, octet_length(data) AS length, encode(sha256(data), 'hex') AS digest, written_by
      FROM blobs WHERE tenant_id = ${tenantId} ORDER BY sha256`
  )

/** Connections of this database left inside a transaction. */
const inTransaction = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) => sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity
    WHERE datname = current_database() AND state LIKE 'idle in transaction%'`
)

/** Until a connection of this database waits on a lock (another transaction's row). */
const someoneWaits = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity
    WHERE datname = current_database() AND wait_event_type = 'Lock'`.pipe(
    Effect.repeat({ schedule: Schedule.spaced("20 millis"), until: (rows) => (rows[0]?.n ?? 0) > 0 }),
    Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => new Error("no write waited on the held row") })
  )
)

layer(Db, { excludeTestServices: true })("the blob writer", (it) => {
  it.effect(
    "stores bytes of every value exactly, in one batch with blobs on both sides of a piece, read back by the COPY reader",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql`INSERT INTO tenants (id, name) VALUES ('t1', 'one')`
        const blobs = [
          Buffer.alloc(0),
          Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
          Buffer.from([0x00, 0xff, 0xfe, 0xc3, 0x28, 0x80, 0x5c, 0x0a, 0x0d, 0x09]),
          randomBytes(32 * 1024 - 1),
          randomBytes(32 * 1024),
          randomBytes(256 * 1024 - 30),
          randomBytes(3 * 1024 * 1024),
          Buffer.from("é\\x00\\\\".repeat(20_000))
        ].map(blob)
        const write = yield* blobWriter(sql)
        yield* write("t1", "u1", blobs)
        expect(yield* rowsOf("t1")).toEqual(
          blobs
            .map((b) => ({
              sha256: b.sha256,
              size: String(b.data.length),
              length: b.data.length,
              digest: b.sha256,
              written_by: "u1"
            }))
            .sort((a, b) => (a.sha256 < b.sha256 ? -1 : 1))
        )
        // A compressible blob is stored compressed as the column says (lz4 where the server has it), as a plain
        // insert stores it, not in the staging table's default.
        const text = blobs[7]!
        yield* sql`INSERT INTO tenants (id, name) VALUES ('t1p', 'plain')`
        yield* sql`INSERT INTO blobs ${sql.insert({ tenant_id: "t1p", sha256: text.sha256, size: text.data.length, data: text.data })}`
        const methods = yield* sql<{ tenant_id: string; method: string | null }>`
          SELECT tenant_id, pg_column_compression(data) AS method FROM blobs WHERE sha256 = ${text.sha256} ORDER BY 1`
        expect(methods[0]?.method).toEqual(expect.any(String))
        expect(methods[0]?.method).toBe(methods[1]?.method)
        const read = yield* blobReader(sql)
        const back = new Map(
          (yield* read(
            "t1",
            blobs.map((b) => b.sha256)
          )).map((r) => [r.sha256, r.data])
        )
        for (const b of blobs) expect(Buffer.from(back.get(b.sha256) ?? []).equals(b.data)).toBe(true)
      }),
    60_000
  )

  it.effect(
    "stores every byte exactly when batches run at once and one after another on pieces used again",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql`INSERT INTO tenants (id, name) VALUES ('tp', 'pieces')`
        // A piece given back is written over at once: one given back before PostgreSQL has read it (still in the
        // stream's or the socket's queue) would store those bytes instead.
        const pool = piecePool(64)
        const write = yield* blobWriter(sql, {
          ...pool,
          give: (pieces) => {
            const back = [...pieces]
            for (const p of back) p.fill(0xee)
            pool.give(back)
          }
        })
        // Files of 5-15 KiB, copied into pieces: each batch fills about twenty, and two batches share the pool.
        const batch = () => Array.from({ length: 600 }, (_, i) => blob(randomBytes(5 * 1024 + ((i * 7919) % 10_240))))
        const all: Array<ReturnType<typeof blob>> = []
        for (let round = 0; round < 3; round++) {
          const [a, b] = [batch(), batch()]
          all.push(...a, ...b)
          yield* Effect.all([write("tp", `ua${round}`, a), write("tp", `ub${round}`, b)], { concurrency: 2 })
        }
        const rows = yield* rowsOf("tp")
        expect(rows.length).toBe(all.length)
        for (const r of rows) expect(r.digest).toBe(r.sha256)
      }),
    120_000
  )

  it.effect("leaves a blob the tenant holds as it is, and takes the same bytes twice in a batch", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      yield* sql`INSERT INTO tenants (id, name) VALUES ('t2', 'two'), ('t2b', 'other')`
      const kept = blob(Buffer.from("kept"))
      const fresh = blob(Buffer.from("fresh"))
      // Large enough that the batch goes by COPY rather than by the plain insert a small batch takes.
      const large = blob(randomBytes(512 * 1024))
      yield* sql`INSERT INTO blobs (tenant_id, sha256, size, data) VALUES ('t2', ${kept.sha256}, 4, ${kept.data})`
      const write = yield* blobWriter(sql)
      // The writer answers with what it left alone: what the commit makes permanent itself.
      expect(yield* write("t2", "u2", [kept, fresh, large, fresh])).toEqual([kept.sha256])
      // The same bytes in another tenant are that tenant's own (a small batch: the plain insert).
      expect(yield* write("t2b", "u2b", [kept])).toEqual([])
      expect(yield* write("t2b", "u2c", [kept, fresh])).toEqual([kept.sha256])
      // A batch by COPY (the held hashes looked up one by one) with a blob only the other tenant holds: this tenant's
      // own too.
      const other = blob(randomBytes(512 * 1024))
      expect(yield* write("t2b", "u2d", [large, other, kept])).toEqual([kept.sha256])
      expect((yield* rowsOf("t2")).map((r) => [r.sha256, r.written_by])).toEqual(
        [
          [kept.sha256, null],
          [fresh.sha256, "u2"],
          [large.sha256, "u2"]
        ].sort()
      )
      expect((yield* rowsOf("t2b")).map((r) => [r.sha256, r.written_by])).toEqual(
        [
          [kept.sha256, "u2b"],
          [fresh.sha256, "u2c"],
          [large.sha256, "u2d"],
          [other.sha256, "u2d"]
        ].sort()
      )
    })
  )

  it.effect("answers the same where none was expected held and some are: those left alone, the rest stored once", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      yield* sql`INSERT INTO tenants (id, name) VALUES ('t7', 'seven')`
      const kept = blob(randomBytes(300 * 1024))
      const pendingElsewhere = blob(randomBytes(300 * 1024))
      const fresh = Array.from({ length: 3 }, () => blob(randomBytes(200 * 1024)))
      yield* sql`INSERT INTO blobs (tenant_id, sha256, size, data) VALUES ('t7', ${kept.sha256}, ${kept.data.length}, ${kept.data})`
      yield* sql`INSERT INTO blobs (tenant_id, sha256, size, data, written_by)
        VALUES ('t7', ${pendingElsewhere.sha256}, ${pendingElsewhere.data.length}, ${pendingElsewhere.data}, 'other')`
      const write = yield* blobWriter(sql)
      const answer = yield* write("t7", "u7", [fresh[0]!, kept, fresh[1]!, pendingElsewhere, fresh[2]!, fresh[0]!], {
        noneHeld: true
      })
      expect([...answer].sort()).toEqual([kept.sha256, pendingElsewhere.sha256].sort())
      expect((yield* rowsOf("t7")).map((r) => [r.sha256, r.written_by, r.digest])).toEqual(
        [
          [kept.sha256, null, kept.sha256],
          [pendingElsewhere.sha256, "other", pendingElsewhere.sha256],
          ...fresh.map((b) => [b.sha256, "u7", b.sha256])
        ].sort()
      )
      // Where none is held, the same: every blob stored, none answered.
      const more = Array.from({ length: 3 }, () => blob(randomBytes(200 * 1024)))
      expect(yield* write("t7", "u8", more, { noneHeld: true })).toEqual([])
      expect((yield* rowsOf("t7")).filter((r) => r.written_by === "u8")).toHaveLength(3)
      expect(yield* inTransaction).toEqual([{ n: 0 }])
    })
  )

  it.effect(
    "finds the held hashes of a batch by one lookup each, never by reading the tenant's other blobs",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql`INSERT INTO tenants (id, name) VALUES ('t6', 'six')`
        // Many blobs of the tenant and statistics that do not know them (no analyze since): a first upload's state.
        yield* sql`INSERT INTO blobs (tenant_id, sha256, size, data)
          SELECT 't6', encode(sha256(i::text::bytea), 'hex'), 1, 'x'::bytea FROM generate_series(1, 5000) i`
        // A batch's worth of hashes (a few asked for cost little either way), some not stored.
        const asked = Array.from({ length: 400 }, (_, i) => sha(Buffer.from(String(1 + i * 12))))
        const missing = Array.from({ length: 100 }, (_, i) => sha(Buffer.from(`not stored ${i}`)))
        type Plan = { readonly [key: string]: unknown; readonly Plans?: ReadonlyArray<Plan> }
        const rows = yield* sql.unsafe<{ "QUERY PLAN": ReadonlyArray<{ Plan: Plan }> }>(
          `EXPLAIN (ANALYZE, FORMAT JSON) ${HELD}`,
          ["t6", [...asked, ...missing]]
        )
        const nodes: Array<Plan> = []
        const walk = (plan: Plan) => {
          nodes.push(plan)
          for (const p of plan.Plans ?? []) walk(p)
        }
        const plan = rows[0]?.["QUERY PLAN"][0]?.Plan
        expect(plan).toBeDefined()
        if (plan !== undefined) walk(plan)
        // Each node over blobs gives at most one row per hash asked (a loop's rows are its average, rounded), and
        // none was read to be thrown away.
        const overBlobs = nodes.filter((n) => n["Relation Name"] === "blobs")
        expect(overBlobs.length).toBeGreaterThan(0)
        for (const n of overBlobs) {
          expect(Number(n["Actual Rows"]) * Number(n["Actual Loops"])).toBeLessThanOrEqual(
            asked.length + missing.length
          )
          expect(n["Rows Removed by Filter"] ?? 0).toBe(0)
          expect(n["Rows Removed by Index Recheck"] ?? 0).toBe(0)
        }
        const held = yield* sql.unsafe<{ sha256: string }>(HELD, ["t6", [...asked, ...missing]])
        expect(held.map((r) => r.sha256).sort()).toEqual([...asked].sort())
      }),
    60_000
  )

  it.effect(
    "lets writers racing for the same blobs all succeed, each blob stored once",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql`INSERT INTO tenants (id, name) VALUES ('t3', 'three')`
        const shared = Array.from({ length: 40 }, () => blob(randomBytes(20_000)))
        const write = yield* blobWriter(sql)
        // Six writers over three connections, each with the shared blobs in its own order and one of its own.
        yield* Effect.forEach(
          [0, 1, 2, 3, 4, 5],
          (i) =>
            write("t3", `u3-${i}`, [...shared.slice(i * 5), ...shared.slice(0, i * 5), blob(Buffer.from(`own ${i}`))]),
          { concurrency: "unbounded" }
        )
        const rows = yield* rowsOf("t3")
        expect(rows).toHaveLength(46)
        for (const r of rows) expect(r.digest).toBe(r.sha256)
        expect(yield* inTransaction).toEqual([{ n: 0 }])
      }),
    60_000
  )

  it.effect(
    "stores a batch when another upload commits one of its blobs after the batch found it missing",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql`INSERT INTO tenants (id, name) VALUES ('t5', 'five')`
        const contested = blob(randomBytes(300 * 1024))
        const own = blob(randomBytes(300 * 1024))
        const write = yield* blobWriter(sql)
        const inserted = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        // Another upload's row for the contested blob, not committed until released: the write reads the blob as
        // missing, copies it, and waits on that row; the commit then makes its COPY a unique violation.
        const other = yield* Effect.fork(
          sql.withTransaction(
            Effect.gen(function* () {
              yield* sql`INSERT INTO blobs (tenant_id, sha256, size, data, written_by)
                VALUES ('t5', ${contested.sha256}, ${contested.data.length}, ${contested.data}, 'other')`
              yield* Deferred.succeed(inserted, undefined)
              yield* Deferred.await(release)
            })
          )
        )
        yield* Deferred.await(inserted)
        const writing = yield* Effect.fork(write("t5", "mine", [contested, own]))
        yield* someoneWaits
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(other)
        // The contested blob, stored by the other upload, is answered as left alone.
        expect(yield* Fiber.join(writing)).toEqual([contested.sha256])
        expect((yield* rowsOf("t5")).map((r) => [r.sha256, r.written_by, r.digest])).toEqual(
          [
            [contested.sha256, "other", contested.sha256],
            [own.sha256, "mine", own.sha256]
          ].sort()
        )
        expect(yield* inTransaction).toEqual([{ n: 0 }])
      }),
    60_000
  )

  it.effect(
    "takes a small batch's plain insert and another upload's COPY over the same blobs in any arrival order: no deadlock",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql`INSERT INTO tenants (id, name) VALUES ('t8', 'eight')`
        const write = yield* blobWriter(sql)
        // x < z < y by hash, all small; the COPY's batch also carries large fillers (a COPY from 256 KiB).
        const sorted = Array.from({ length: 200 }, () => blob(randomBytes(100))).sort((a, b) =>
          a.sha256 < b.sha256 ? -1 : 1
        )
        const [x, z, y] = [sorted[10], sorted[100], sorted[190]]
        if (x === undefined || z === undefined || y === undefined) return yield* Effect.die("three blobs")
        const fillers = Array.from({ length: 4 }, () => blob(randomBytes(200 * 1024)))
        // A third transaction holds z: the COPY stops there, x inserted and y not yet.
        const release = yield* Deferred.make<void>()
        const holdZ = yield* Effect.fork(
          sql
            .withTransaction(
              sql`INSERT INTO blobs (tenant_id, sha256, size, data, written_by)
                VALUES ('t8', ${z.sha256}, 100, ${z.data}, 'third')`.pipe(
                Effect.zipRight(Deferred.await(release)),
                Effect.zipRight(Effect.fail("rolled back" as const))
              )
            )
            .pipe(Effect.exit)
        )
        yield* Effect.sleep("200 millis")
        const copy = yield* Effect.fork(write("t8", "B", [x, z, y, ...fillers], { noneHeld: true }))
        yield* someoneWaits
        // The other upload's last batch, small (the plain insert), its files arrived y before x: it takes y, then
        // waits for the COPY's x. Released well within PostgreSQL's deadlock timeout (1 s) of its wait, the COPY
        // goes on to y; inserted in arrival order, the two waited on each other and the plain insert was the one
        // PostgreSQL broke (40P01), failing its upload.
        const plain = yield* Effect.fork(write("t8", "A", [y, x, y]))
        yield* Effect.sleep("300 millis")
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(holdZ)
        const [plainExit, copyExit] = [yield* Fiber.await(plain), yield* Fiber.await(copy)]
        expect(Exit.isSuccess(plainExit) ? "stored" : String(plainExit.cause)).toBe("stored")
        expect(Exit.isSuccess(copyExit) ? "stored" : String(copyExit.cause)).toBe("stored")
        const rows = yield* rowsOf("t8")
        expect(rows.map((r) => r.sha256)).toEqual([x, z, y, ...fillers].map((b) => b.sha256).sort())
        for (const r of rows) expect(r.digest).toBe(r.sha256)
        expect(yield* inTransaction).toEqual([{ n: 0 }])
      }),
    60_000
  )

  it.effect(
    "interrupted mid-COPY, stores no row and leaves every connection out of a transaction and usable",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql`INSERT INTO tenants (id, name) VALUES ('t4', 'four')`
        const write = yield* blobWriter(sql)
        const big = Array.from({ length: 12 }, () => blob(randomBytes(1024 * 1024)))
        // Interrupted while the pool hands out connections, while the COPY is being written, and later.
        for (const after of [0, 5, 30]) {
          const fibers = yield* Effect.forEach([0, 1, 2, 3], (i) => Effect.fork(write("t4", `cut-${after}-${i}`, big)))
          yield* after === 0 ? Effect.yieldNow() : Effect.sleep(after)
          const exits = yield* Effect.forEach(fibers, Fiber.interrupt)
          // A write that finished before its interruption committed (the first to commit holds every blob, the
          // others found them held); an interrupted one stored nothing, or, when the interruption came after its
          // COMMIT was sent (which nothing can take back), its whole batch: never part of one.
          const finished = exits.flatMap((e, i) => (Exit.isSuccess(e) ? [`cut-${after}-${i}`] : []))
          const rows = yield* rowsOf("t4")
          const owners = [...new Set(rows.map((r) => r.written_by ?? ""))]
          expect(owners.length).toBeLessThanOrEqual(1)
          if (finished.length > 0) expect(owners).toHaveLength(1)
          for (const o of owners) expect(o).toMatch(new RegExp(`^cut-${after}-[0-3]$`))
          expect(rows.length).toBe(owners.length > 0 ? big.length : 0)
          expect(yield* inTransaction).toEqual([{ n: 0 }])
          yield* sql`DELETE FROM blobs WHERE tenant_id = 't4'`
        }
        // Every connection of the pool takes its next write whole.
        yield* Effect.forEach([0, 1, 2], (i) => write("t4", `after-${i}`, big.slice(0, 3)), {
          concurrency: "unbounded"
        })
        expect(yield* rowsOf("t4")).toHaveLength(3)
        expect(yield* inTransaction).toEqual([{ n: 0 }])
      }),
    60_000
  )
})
