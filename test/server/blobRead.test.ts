// A download's blob read: the binary COPY decoder against any cut of its input, and the reader against a real
// PostgreSQL with content that is not UTF-8 (which a query in the binary result format returns changed).
import { createHash, randomBytes } from "node:crypto"
import * as SqlClient from "@effect/sql/SqlClient"
import { PgClient } from "@effect/sql-pg"
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, FastCheck, Fiber, Layer, Redacted } from "effect"
import { blobReader, copyText, plainStatement, readText } from "../../src/server/files/blobRead.js"
import { CopyFormatError, copyBinaryDecoder, type Tuple } from "../../src/server/files/copyBinary.js"
import * as Migrations from "../../src/server/migrations.js"
import { scopedDatabase } from "../support/pg.js"
import { planOf, rowsRead } from "../support/plan.js"

/** The binary COPY format written out (PostgreSQL's documentation, "Binary Format"): header, tuples, trailer. */
const encode = (tuples: ReadonlyArray<Tuple>): Buffer => {
  const parts: Array<Uint8Array> = [Buffer.from("PGCOPY\n\xff\r\n\0", "latin1"), Buffer.alloc(8)]
  for (const tuple of tuples) {
    const count = Buffer.alloc(2)
    count.writeInt16BE(tuple.length)
    parts.push(count)
    for (const field of tuple) {
      const length = Buffer.alloc(4)
      length.writeInt32BE(field === null ? -1 : field.length)
      parts.push(length)
      if (field !== null) parts.push(field)
    }
  }
  parts.push(Buffer.from([0xff, 0xff]))
  return Buffer.concat(parts)
}

/** The stream in pieces cut at the given offsets, each piece overwritten after the call (as a parser's buffer is). */
const decodeInPieces = (bytes: Buffer, cuts: ReadonlyArray<number>) => {
  const tuples: Array<Tuple> = []
  const decoder = copyBinaryDecoder((t) => tuples.push(t))
  const at = [0, ...[...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b), bytes.length]
  for (let i = 1; i < at.length; i++) {
    const piece = Buffer.from(bytes.subarray(at[i - 1], at[i]))
    decoder.write(piece)
    piece.fill(0xaa)
  }
  decoder.end()
  return tuples
}

const field = FastCheck.oneof(
  { weight: 1, arbitrary: FastCheck.constant(null) },
  { weight: 6, arbitrary: FastCheck.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)) }
)

describe("the binary COPY decoder", () => {
  it.prop(
    "reads back every tuple, whatever the pieces the bytes arrive in",
    [FastCheck.array(FastCheck.array(field, { maxLength: 4 }), { maxLength: 8 }), FastCheck.array(FastCheck.nat())],
    ([tuples, cuts]) => {
      expect(decodeInPieces(encode(tuples), cuts)).toEqual(tuples)
    }
  )

  it("refuses a stream cut short, bytes after the trailer, and a foreign header", () => {
    const whole = encode([[Buffer.from("abc"), null]])
    expect(() => decodeInPieces(whole.subarray(0, whole.length - 1), [])).toThrow(CopyFormatError)
    expect(() => decodeInPieces(Buffer.concat([whole, Buffer.from([0])]), [])).toThrow(CopyFormatError)
    expect(() => decodeInPieces(Buffer.from("not a copy at all, no"), [])).toThrow(CopyFormatError)
  })
})

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex")

/** Migrated fresh database, a PgClient on it, and one tenant. */
const Db = Layer.unwrapScoped(
  Effect.map(scopedDatabase("blobread"), (url) =>
    Migrations.layer.pipe(Layer.provideMerge(PgClient.layer({ url: Redacted.make(url), maxConnections: 3 })))
  )
)

layer(Db, { excludeTestServices: true })("the blob reader", (it) => {
  it.effect(
    "returns content that is not UTF-8, and rows larger than a socket read, byte for byte",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql`INSERT INTO tenants (id, name) VALUES ('t1', 'one'), ('t2', 'two')`
        const blobs = [
          Buffer.alloc(0),
          randomBytes(1),
          Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0x80]),
          randomBytes(70_000),
          randomBytes(3 * 1024 * 1024),
          Buffer.alloc(2 * 1024 * 1024),
          Buffer.from("é".repeat(50_000))
        ]
        const rows = blobs.map((data) => ({ tenant_id: "t1", sha256: sha(data), size: data.length, data }))
        // The same hash in another tenant is not read for this one: its row goes in first, so a statement without
        // the tenant would meet it first.
        yield* sql`INSERT INTO blobs ${sql.insert({ tenant_id: "t2", sha256: sha(blobs[3]!), size: 1, data: Buffer.from("x") })}`
        yield* sql`INSERT INTO blobs ${sql.insert(rows)}`
        const read = yield* blobReader(sql)
        const back = yield* read(
          "t1",
          rows.map((r) => r.sha256)
        )
        expect(new Map(back.map((r) => [r.sha256, sha(r.data)]))).toEqual(
          new Map(rows.map((r) => [r.sha256, r.sha256]))
        )
        expect(back.map((r) => r.data.length).sort((a, b) => a - b)).toEqual(
          blobs.map((b) => b.length).sort((a, b) => a - b)
        )
        // A hash no row has is simply absent.
        expect(yield* read("t1", ["0".repeat(64)])).toEqual([])
      }),
    60_000
  )

  it.effect(
    "reads one row per hash asked while the statistics do not know the tenant's blobs",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql`INSERT INTO tenants (id, name) VALUES ('t4', 'four')`
        // Five thousand blobs of t4, none analyzed (a first upload's state, before autovacuum's analyze): with
        // `sha256 IN (…)` the planner took a bitmap scan of all of them, the hashes a filter.
        yield* sql`INSERT INTO blobs (tenant_id, sha256, size, data)
          SELECT 't4', encode(sha256(i::text::bytea), 'hex'), length(i::text), i::text::bytea
          FROM generate_series(1, 5000) i`
        const stored = Array.from({ length: 500 }, (_, i) => String(5000 - i * 9))
        const asked = [...stored.map((s) => sha(Buffer.from(s))), sha(Buffer.from("not stored"))]
        // The statement planned is the one the COPY sends.
        expect(copyText("t4", asked)).toBe(`COPY (${readText("t4", asked)}) TO STDOUT (FORMAT binary)`)
        const plan = rowsRead(yield* planOf(sql.unsafe(readText("t4", asked))), "blobs")
        expect(plan.nodes).toBeGreaterThan(0)
        // One lookup per hash asked, never the tenant's 5,000.
        expect(plan.read).toBeLessThanOrEqual(asked.length)
        // The reader's rows: those stored, the missing one absent.
        const back = yield* (yield* blobReader(sql))("t4", asked)
        expect(back.map((r) => Buffer.from(r.data).toString()).sort()).toEqual([...stored].sort())
      }),
    60_000
  )

  it.effect(
    "leaves every connection in step when a read is interrupted midway",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql`INSERT INTO tenants (id, name) VALUES ('t3', 'three')`
        const big = Array.from({ length: 4 }, () => randomBytes(1024 * 1024))
        const rows = big.map((data) => ({ tenant_id: "t3", sha256: sha(data), size: data.length, data }))
        yield* sql`INSERT INTO blobs ${sql.insert(rows)}`
        const read = yield* blobReader(sql)
        const shas = rows.map((r) => r.sha256)
        // Interrupted at once, while the pool hands out connections, and while the COPY answers.
        for (const after of [0, 2, 10]) {
          const fibers = yield* Effect.forEach([0, 1, 2], () => Effect.fork(read("t3", shas)))
          yield* after === 0 ? Effect.yieldNow() : Effect.sleep(after)
          yield* Effect.forEach(fibers, Fiber.interrupt)
          // Every connection of the pool answers its next reads whole, and plain queries too.
          const again = yield* Effect.all([read("t3", shas), read("t3", shas), read("t3", shas)], {
            concurrency: "unbounded"
          })
          for (const r of again) expect(r.map((b) => sha(b.data)).sort()).toEqual([...shas].sort())
          expect(yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM blobs WHERE tenant_id = 't3'`).toEqual([
            { n: 4 }
          ])
        }
      }),
    60_000
  )
})

/** The same on a single-session client (as the embedded database): the reader is the plain query, not the COPY. */
const Single = Layer.unwrapScoped(
  Effect.map(scopedDatabase("blobreadplain"), (url) =>
    Migrations.layer.pipe(Layer.provideMerge(PgClient.layer({ url: Redacted.make(url), maxConnections: 1 })))
  )
)

layer(Single, { excludeTestServices: true })("the blob reader on a single session", (it) => {
  it.effect(
    "reads one row per hash asked by the plain query, content that is not UTF-8 byte for byte",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql`INSERT INTO tenants (id, name) VALUES ('t1', 'one'), ('t2', 'two')`
        const odd = Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0x80, 0])
        // The same hash in another tenant is not read for this one: its row goes in first, so a statement without
        // the tenant would meet it first.
        yield* sql`INSERT INTO blobs ${sql.insert({ tenant_id: "t2", sha256: sha(odd), size: 1, data: Buffer.from("x") })}`
        yield* sql`INSERT INTO blobs (tenant_id, sha256, size, data)
          SELECT 't1', encode(sha256(i::text::bytea), 'hex'), length(i::text), i::text::bytea
          FROM generate_series(1, 2000) i`
        yield* sql`INSERT INTO blobs ${sql.insert({ tenant_id: "t1", sha256: sha(odd), size: odd.length, data: odd })}`
        const asked = [sha(odd), sha(Buffer.from("7")), sha(Buffer.from("1999")), "0".repeat(64)]
        const back = yield* (yield* blobReader(sql))("t1", asked)
        expect(new Map(back.map((r) => [r.sha256, Buffer.from(r.data).toString("hex")]))).toEqual(
          new Map([
            [sha(odd), odd.toString("hex")],
            [sha(Buffer.from("7")), Buffer.from("7").toString("hex")],
            [sha(Buffer.from("1999")), Buffer.from("1999").toString("hex")]
          ])
        )
        // Its statement, as the COPY's, reads one row per hash whatever the statistics (none here) say.
        const plan = rowsRead(yield* planOf(plainStatement(sql, "t1", asked)), "blobs")
        expect(plan.nodes).toBeGreaterThan(0)
        expect(plan.read).toBeLessThanOrEqual(asked.length)
      }),
    60_000
  )
})
