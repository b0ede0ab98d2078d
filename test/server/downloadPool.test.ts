import { createHash, randomBytes, randomUUID } from "node:crypto"
import { expect, it, layer } from "@effect/vitest"
import { Chunk, Effect, Option, Redacted, Stream } from "effect"
import { FilesRoutes, SYNC_PREFIX } from "../../src/api/files.js"
import type { BlobReader } from "../../src/server/files/blobRead.js"
import { makeDownload } from "../../src/server/files/download.js"
import type { LoadRevision } from "../../src/server/files/revisions.js"
import type { StoredEntry } from "../../src/server/files/stored.js"
import { LOOPBACK_LEVEL, readArchive } from "../../src/stages/files/archive.js"
import { call, TestTenantServer, uploadArchive } from "./support.js"

const hex = (b: Uint8Array) => createHash("sha256").update(b).digest("hex")

/** The files of an archive read from `pieces` (each copied as it arrives), by path. */
const filesOf = (pieces: ReadonlyArray<Uint8Array>) => {
  const files = new Map<string, string>()
  return readArchive(Stream.fromIterable(pieces), {
    file: (path) => {
      const chunks: Array<Uint8Array> = []
      return { write: (c) => void chunks.push(c), end: () => void files.set(path, hex(Buffer.concat(chunks))) }
    }
  }).pipe(Effect.as(files))
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

/** Every element of `body`, each with a copy of its bytes taken as it was pulled. */
const pullAll = (body: Stream.Stream<Uint8Array, unknown>) =>
  Effect.scoped(
    Effect.gen(function* () {
      const pull = yield* Stream.toPull(body)
      const got: Array<{ readonly member: Uint8Array; readonly copy: Buffer }> = []
      for (;;) {
        const chunk = yield* Effect.option(pull)
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
    expect(yield* filesOf(reused.map((m) => m.copy))).toEqual(want)

    // Without the probe (a consumer that keeps what it pulls), nothing is filled again.
    const kept = yield* pullAll((yield* download("t", undefined)).body)
    expect(new Set(kept.map((m) => m.member.buffer)).size).toBe(kept.length)
  })
)

layer(TestTenantServer.layer("dlpool"), { excludeTestServices: true })("download over the socket", (it) => {
  it.effect(
    "a client that reads slowly gets every byte, the server's member buffers used again as the socket drains",
    () =>
      Effect.gen(function* () {
        const server = yield* TestTenantServer
        const tenant = yield* server.createTenant("slow reader")
        const options = { endpoint: { mode: "direct", origin: server.url }, token: tenant.token } as const
        // About 12 MB of text in files of 1 MB: six members and more, more than a socket holds.
        const files = Object.fromEntries(
          Array.from({ length: 12 }, (_, i) => [`content/big/${i}.txt`, randomBytes(768 * 1024).toString("base64")])
        )
        const pushed = yield* call(options, (c) => c.upload(uploadArchive(null, [], files), randomUUID()))
        const response = yield* Effect.promise(() =>
          fetch(`${server.url}${SYNC_PREFIX}${FilesRoutes.download}?revision=${pushed.revision}`, {
            headers: { authorization: `Bearer ${Redacted.value(tenant.token)}` }
          })
        )
        expect(response.status).toBe(200)
        const reader = response.body?.getReader()
        const pieces: Array<Uint8Array> = []
        for (let n = 0; reader !== undefined; n++) {
          const { done, value } = yield* Effect.promise(() => reader.read())
          if (done) break
          pieces.push(value)
          // Pauses now and then, so the server's writes wait for the socket to drain.
          if (n % 8 === 0) yield* Effect.sleep("15 millis")
        }
        const got = yield* filesOf(pieces)
        expect(got).toEqual(new Map(Object.entries(files).map(([path, text]) => [path, hex(Buffer.from(text))])))
      }),
    60_000
  )
})
