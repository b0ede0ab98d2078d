/** A download's pooled buffers (stored members, a plain tar's batches): filled again once written, never held after. */
import { createHash, randomBytes, randomUUID } from "node:crypto"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { expect, it, layer } from "@effect/vitest"
import { Chunk, Effect, Option, Redacted, Stream } from "effect"
import { vi } from "vitest"
import { FilesRoutes, SYNC_PREFIX } from "../../src/api/files.js"
import { ARCHIVE_FORMATS_HEADER, DOWNLOAD_FORMATS, FORMATS } from "../../src/domain/caps.js"
import type { BlobReader } from "../../src/server/files/blobRead.js"
import { BATCH_BUFFER_BYTES, MEMBER_BUFFER_BYTES, makeDownload } from "../../src/server/files/download.js"
import type { LoadRevision } from "../../src/server/files/revisions.js"
import type { StoredEntry } from "../../src/server/files/stored.js"
import { LINK_LEVEL, LOOPBACK_LEVEL, readArchive } from "../../src/stages/files/archive.js"
import { call, TestTenantServer, uploadArchive } from "./support.js"

const hex = (b: Uint8Array) => createHash("sha256").update(b).digest("hex")

/**
 * The files of an archive read from `pieces` (each copied as it arrives), by path; with `asPull`, read as a pull reads
 * (a plain tar accepted: it verifies what it keeps).
 */
const filesOf = (pieces: ReadonlyArray<Uint8Array>, asPull = false) => {
  const files = new Map<string, string>()
  return readArchive(
    Stream.fromIterable(pieces),
    {
      file: (path) => {
        const chunks: Array<Uint8Array> = []
        return { write: (c) => void chunks.push(c), end: () => void files.set(path, hex(Buffer.concat(chunks))) }
      },
      verifiesContent: asPull
    },
    undefined,
    asPull ? DOWNLOAD_FORMATS : undefined
  ).pipe(Effect.as(files))
}

// 24 files of about 300 KiB: several batches of 2 MiB, so several stored members.
const blobs = Array.from({ length: 24 }, (_, i) => randomBytes(300 * 1024 + i))
const entries: ReadonlyArray<StoredEntry> = blobs.map((b, i) => [`f/${i}.bin`, b.length, hex(b)])
const byHash = new Map(blobs.map((b) => [hex(b), b]))
const readBlobs: BlobReader = (_tenant, shas, allocate) =>
  Effect.sync(() =>
    shas.flatMap((sha) => {
      const blob = byHash.get(sha)
      if (blob === undefined) return []
      const data = (allocate ?? Buffer.allocUnsafe)(blob.length)
      blob.copy(data)
      return [{ sha256: sha, data }]
    })
  )
const loadRevision: LoadRevision = () => Effect.succeed({ id: "r1", manifest: entries, checksum: "" })
const download = makeDownload(readBlobs, loadRevision)
const stored = { format: "gzip", level: LOOPBACK_LEVEL } as const

/**
 * Every element of `body`, each with a copy of its bytes taken as it was pulled, and whether each still held those
 * bytes when the next pull returned (a consumer hands an element on before it pulls again, so until then its bytes
 * must stay; a buffer given back one pull too early is filled again by then).
 */
const pullAll = (body: Stream.Stream<Uint8Array, unknown>) =>
  Effect.scoped(
    Effect.gen(function* () {
      const pull = yield* Stream.toPull(body)
      const got: Array<{ readonly member: Uint8Array; readonly copy: Buffer; keptToNextPull?: boolean }> = []
      let last = 0
      for (;;) {
        const chunk = yield* Effect.option(pull)
        for (const m of got.slice(last)) m.keptToNextPull = Buffer.from(m.member).equals(m.copy)
        last = got.length
        if (Option.isNone(chunk)) return got
        for (const member of Chunk.toReadonlyArray(chunk.value)) got.push({ member, copy: Buffer.from(member) })
      }
    })
  )

it.effect("a stored member's buffer is filled again only once its consumer says it is written", () =>
  Effect.gen(function* () {
    const want = new Map(entries.map(([path, , sha]) => [path, sha]))
    // Never known to be written: every member keeps its bytes, in a buffer of its own.
    const held = yield* pullAll((yield* download("t", undefined, undefined, stored, () => false)).body)
    expect(held.length).toBeGreaterThan(3)
    for (const { member, copy } of held) expect(Buffer.from(member).equals(copy)).toBe(true)
    expect(new Set(held.map((m) => m.member.buffer)).size).toBe(held.length)
    expect(yield* filesOf(held.map((m) => m.copy))).toEqual(want)

    // Written as soon as handed on: the same buffers come back, and the archive read from what was handed on is whole.
    const reused = yield* pullAll((yield* download("t", undefined, undefined, stored, () => true)).body)
    expect(new Set(reused.map((m) => m.member.buffer)).size).toBeLessThan(reused.length)
    expect(reused.map((m) => m.keptToNextPull)).toEqual(reused.map(() => true))
    expect(yield* filesOf(reused.map((m) => m.copy))).toEqual(want)

    // Without the probe (a consumer that keeps what it pulls), nothing is filled again.
    const kept = yield* pullAll((yield* download("t", undefined)).body)
    expect(new Set(kept.map((m) => m.member.buffer)).size).toBe(kept.length)
  })
)

it.effect("a plain tar sends its batches' buffers, each filled again only once its consumer says it is written", () =>
  Effect.gen(function* () {
    const want = new Map(entries.map(([path, , sha]) => [path, sha]))
    const tar = { format: "tar", level: 0 } as const
    // Never known to be written: every batch keeps its bytes, in a buffer of its own.
    const held = yield* pullAll((yield* download("t", undefined, undefined, tar, () => false)).body)
    expect(held.length).toBeGreaterThan(3)
    expect(Buffer.from(held[0]!.member).subarray(257, 262).toString()).toBe("ustar")
    for (const { member, copy } of held) expect(Buffer.from(member).equals(copy)).toBe(true)
    expect(new Set(held.map((m) => m.member.buffer)).size).toBe(held.length)
    expect(
      yield* filesOf(
        held.map((m) => m.copy),
        true
      )
    ).toEqual(want)

    // Written as soon as handed on: the same buffers come back, each kept until the pull after it.
    const reused = yield* pullAll((yield* download("t", undefined, undefined, tar, () => true)).body)
    expect(new Set(reused.map((m) => m.member.buffer)).size).toBeLessThan(reused.length)
    expect(reused.map((m) => m.keptToNextPull)).toEqual(reused.map(() => true))
    expect(
      yield* filesOf(
        reused.map((m) => m.copy),
        true
      )
    ).toEqual(want)
  })
)

layer(TestTenantServer.layer("dlpool"), { excludeTestServices: true })("download over the socket", (it) => {
  // As an older client reads (stored gzip, the members' own pool) and as a pull does (a plain tar: the batches'
  // buffers themselves sent, so one given back before the socket has written it would be filled again under it).
  const readers = [
    { as: "stored members", formats: undefined, type: "application/gzip", buffer: MEMBER_BUFFER_BYTES },
    { as: "a plain tar", formats: DOWNLOAD_FORMATS, type: "application/x-tar", buffer: BATCH_BUFFER_BYTES }
  ] as const
  for (const { as, formats, type, buffer } of readers)
    it.scoped(
      `a client that reads ${as} slowly gets every byte, the server's buffers used again as the socket drains`,
      () =>
        Effect.gen(function* () {
          const server = yield* TestTenantServer
          const tenant = yield* server.createTenant(`slow reader of ${as}`)
          const options = { endpoint: { mode: "direct", origin: server.url }, token: tenant.token } as const
          // 32 MiB of text in files of 1 MiB (768 KiB of random bytes each): two to a batch, so 16 batches and
          // more, far more than a socket holds.
          const files = Object.fromEntries(
            Array.from({ length: 32 }, (_, i) => [`content/big/${i}.txt`, randomBytes(768 * 1024).toString("base64")])
          )
          const pushed = yield* call(options, (c) => c.upload(uploadArchive(null, [], files), randomUUID()))
          // Each buffer the pool makes is a new allocation of exactly this size: fewer than the batches means
          // buffers were used again. (A probe ignored, taken as always yes, passes here: the platform's writer waits
          // for "drain" whenever a write is refused, so at its pulls the socket has nothing pending anyway; the
          // first tests, whose probe says no, are the ones that catch it. A buffer given back as soon as it is
          // pulled is caught here: it is filled again while the socket still holds it.)
          const allocations = vi.spyOn(Buffer, "allocUnsafeSlow")
          yield* Effect.addFinalizer(() => Effect.sync(() => allocations.mockRestore()))
          const headers = {
            authorization: `Bearer ${Redacted.value(tenant.token)}`,
            ...(formats === undefined ? {} : { [ARCHIVE_FORMATS_HEADER]: formats.join(", ") })
          }
          const response = yield* Effect.promise(() =>
            fetch(`${server.url}${SYNC_PREFIX}${FilesRoutes.download}?revision=${pushed.revision}`, { headers })
          )
          expect(response.status).toBe(200)
          expect(response.headers.get("content-type")).toBe(type)
          const reader = response.body?.getReader()
          const pieces: Array<Uint8Array> = []
          for (let n = 0; reader !== undefined; n++) {
            const { done, value } = yield* Effect.promise(() => reader.read())
            if (done) break
            pieces.push(value)
            // Pauses now and then, so the server's writes wait for the socket to drain.
            if (n % 8 === 0) yield* Effect.sleep("15 millis")
          }
          const made = allocations.mock.calls.filter(([size]) => size === buffer).length
          allocations.mockRestore()
          const got = yield* filesOf(pieces, formats !== undefined)
          expect(got).toEqual(new Map(Object.entries(files).map(([path, text]) => [path, hex(Buffer.from(text))])))
          expect(made).toBeGreaterThan(0)
          expect(made).toBeLessThan(16)
        }),
      60_000
    )

  it.scoped("a client that reads a plain tar (a pull) gets one on this machine, the same files", () =>
    Effect.gen(function* () {
      const server = yield* TestTenantServer
      const tenant = yield* server.createTenant("plain tar")
      const options = { endpoint: { mode: "direct", origin: server.url }, token: tenant.token } as const
      const files = Object.fromEntries(
        Array.from({ length: 8 }, (_, i) => [`content/t/${i}.txt`, randomBytes(600 * 1024).toString("base64")])
      )
      const pushed = yield* call(options, (c) => c.upload(uploadArchive(null, [], files), randomUUID()))
      const got = (formats: string) =>
        Effect.promise(async () => {
          const answer = await fetch(`${server.url}${SYNC_PREFIX}${FilesRoutes.download}?revision=${pushed.revision}`, {
            headers: { authorization: `Bearer ${Redacted.value(tenant.token)}`, [ARCHIVE_FORMATS_HEADER]: formats }
          })
          return { type: answer.headers.get("content-type"), body: Buffer.from(await answer.arrayBuffer()) }
        })
      const want = new Map(Object.entries(files).map(([path, text]) => [path, hex(Buffer.from(text))]))
      const plain = yield* got(DOWNLOAD_FORMATS.join(", "))
      expect(plain.type).toBe("application/x-tar")
      expect(plain.body.subarray(257, 262).toString()).toBe("ustar")
      expect(yield* filesOf([plain.body], true)).toEqual(want)
      // A client that does not name it (an older one, or a reader that does not verify) gets stored gzip.
      const older = yield* got(FORMATS.join(", "))
      expect([older.type, older.body[0], older.body[1]]).toEqual(["application/gzip", 0x1f, 0x8b])
      expect(yield* filesOf([older.body])).toEqual(want)
    })
  )
})

// The collector, to see which member buffers a download still holds (vitest's workers do not expose it).
setFlagsFromString("--expose-gc")
const collect: () => void = runInNewContext("gc")

// One blob of 1.5 MiB under many paths: a member each (two do not fit a batch), without 60 MB of test data.
const big = randomBytes(1536 * 1024)
const bigs: ReadonlyArray<StoredEntry> = Array.from({ length: 48 }, (_, i) => [`b/${i}.bin`, big.length, hex(big)])
const bigDownload = makeDownload(
  (_tenant, shas, allocate) =>
    Effect.sync(() =>
      shas.map((sha) => {
        const data = (allocate ?? Buffer.allocUnsafe)(big.length)
        big.copy(data)
        return { sha256: sha, data }
      })
    ),
  () => Effect.succeed({ id: "r1", manifest: bigs, checksum: "" })
)

/** How many of `pulled` members' buffers are still alive after collections, while the download is still open. */
const aliveWhileOpen = (written: (() => boolean) | undefined) =>
  Effect.scoped(
    Effect.gen(function* () {
      const pull = yield* Stream.toPull((yield* bigDownload("t", undefined, undefined, stored, written)).body)
      const pulled: Array<WeakRef<ArrayBufferLike>> = []
      while (pulled.length < 40) {
        const chunk = yield* pull
        for (const member of chunk) pulled.push(new WeakRef(member.buffer))
      }
      // A WeakRef keeps its target until the job that made it ends: collect after the next macrotasks.
      for (let i = 0; i < 3; i++) {
        yield* Effect.sleep("10 millis")
        collect()
      }
      return { pulled: pulled.length, alive: pulled.filter((r) => r.deref() !== undefined).length }
    })
  )

it.live(
  "members pulled and dropped are not held while the download goes on, whatever the probe says",
  () =>
    Effect.gen(function* () {
      // A probe that never says written: the stage holds at most 16 not yet known to be written, nothing more.
      const never = yield* aliveWhileOpen(() => false)
      expect(never.pulled).toBeGreaterThanOrEqual(40)
      expect(never.alive).toBeLessThanOrEqual(20)
      // No probe: nothing is the pool's, and nothing dropped is held.
      const none = yield* aliveWhileOpen(undefined)
      expect(none.alive).toBeLessThanOrEqual(4)
    }),
  60_000
)

it.effect("only stored members are pooled: a compressed download never asks whether a member is written", () =>
  Effect.gen(function* () {
    let asked = 0
    const probe = () => {
      asked++
      return true
    }
    const want = new Map(entries.map(([path, , sha]) => [path, sha]))
    const gzipped = yield* pullAll(
      (yield* download("t", undefined, undefined, { format: "gzip", level: LINK_LEVEL }, probe)).body
    )
    expect(yield* filesOf(gzipped.map((m) => m.copy))).toEqual(want)
    expect(asked).toBe(0)
    // Stored: asked on every pull after the first.
    yield* pullAll((yield* download("t", undefined, undefined, stored, probe)).body)
    expect(asked).toBeGreaterThan(0)
  })
)
