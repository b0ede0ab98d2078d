// A whole download over plain HTTP goes on a socket of its own (SyncApiGet): what it sends, a body in any framing
// and any pieces read whole, the pieces it hands on never written again (a large body held by its consumer stays
// intact), a broken-off answer retried, a refused framing one clear error that is not retried, failure statuses
// read as every call reads them, and an interrupted download's connection closed.
import { randomBytes } from "node:crypto"
import * as net from "node:net"
import * as zlib from "node:zlib"
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Cause, Chunk, Duration, Effect, Either, Exit, Fiber, Redacted, Stream } from "effect"
import { vi } from "vitest"
import { ARCHIVE_FORMATS_HEADER, DOWNLOAD_FORMATS, FORMATS } from "../../src/domain/caps.js"
import { ApiError, Unauthorized } from "../../src/errors.js"
import { hold, release } from "../../src/services/heldViews.js"
import type { ReadingOptions, SyncApiOptions } from "../../src/services/SyncApi.js"
import { rawGet } from "../../src/services/SyncApiGet.js"
import { READING } from "../../src/stages/files/apply.js"
import { END_OF_ARCHIVE, fileRecord, readArchive } from "../../src/stages/files/archive.js"
import { storedMember } from "../../src/stages/files/compress.js"
import { withClient, withClientEither } from "../support/apiClient.js"

// The reader made to throw what is not a refusal (a bug of ours) for one test; otherwise the reader itself.
const hooks = vi.hoisted(() => ({ breakReader: false }))
vi.mock("../../src/services/httpResponse.js", async (importOriginal) => {
  const actual = await importOriginal<typeof import("../../src/services/httpResponse.js")>()
  return {
    ...actual,
    responseReader: (sink: Parameters<typeof actual.responseReader>[0]) => {
      const reader = actual.responseReader(sink)
      return {
        ...reader,
        push: (bytes: Buffer) => {
          if (hooks.breakReader) throw new TypeError("a bug in the reader")
          reader.push(bytes)
        }
      }
    }
  }
})

const servers: Array<net.Server> = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))))
})

type Script = (socket: net.Socket) => void | Promise<void>

/** A raw loopback server: each connection's request head recorded, then answered by the next step of the script. */
const rawServer = async (...script: Array<Script>) => {
  const requests: Array<string> = []
  const closed: Array<number> = []
  const server = net.createServer((socket) => {
    let head = ""
    const n = requests.length
    requests.push("")
    socket.on("close", () => closed.push(n))
    socket.on("error", () => {})
    socket.on("data", (d) => {
      if (head.includes("\r\n\r\n")) return
      head += d.toString("latin1")
      if (!head.includes("\r\n\r\n")) return
      requests[n] = head
      void script[Math.min(n, script.length - 1)]!(socket)
    })
  })
  servers.push(server)
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  return { url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, requests, closed }
}

const opts = (url: string): SyncApiOptions => ({
  endpoint: { mode: "direct", origin: url },
  token: Redacted.make("ast_0000000000000000_secret"),
  retry: { maxRetries: 2, base: "10 millis", factor: 2, cap: "20 millis" }
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Writes `parts` with a pause between them, then ends the connection. */
const writeSlowly =
  (parts: ReadonlyArray<Buffer | string>, pauseMs = 2) =>
  async (socket: net.Socket) => {
    for (const p of parts) {
      socket.write(p)
      await sleep(pauseMs)
    }
    socket.end()
  }

const chunked = (body: Buffer, size: number): Array<Buffer> => {
  const out: Array<Buffer> = [Buffer.from("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")]
  for (let at = 0; at < body.length; at += size) {
    const piece = body.subarray(at, at + size)
    out.push(Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from("\r\n"))
  }
  out.push(Buffer.from("0\r\n\r\n"))
  return out
}

/** The whole body as the consumer got it: its pieces kept as handed on (views), joined only at the end. */
const downloadAll = (url: string, reading?: ReadingOptions) =>
  withClient(opts(url), (c) =>
    c.download(
      "r1",
      () => undefined,
      (body) => Effect.map(Stream.runCollect(body), (pieces) => Buffer.concat(Chunk.toArray(pieces))),
      reading
    )
  )

/** The download's error: an ApiError of kind Decode is a refused framing. */
const decodeMessage = (result: Either.Either<unknown, unknown>): string | undefined => {
  const e = Either.isLeft(result) ? result.left : undefined
  return e instanceof ApiError && e.kind === "Decode" ? e.message : `not a Decode error: ${String(e)}`
}

/** A download whose body goes to the archive's reader, its files dropped. */
const archiveEither = (url: string) =>
  withClientEither(opts(url), (c) =>
    c.download(
      "r1",
      () => undefined,
      (body) => readArchive(body, { file: () => ({ write: () => {}, end: () => {} }) })
    )
  )

const downloadEither = (url: string) =>
  withClientEither(opts(url), (c) =>
    c.download(
      "r1",
      () => undefined,
      (body) => Effect.map(Stream.runCollect(body), (pieces) => Buffer.concat(Chunk.toArray(pieces)))
    )
  )

describe("a whole download on its own socket", () => {
  it.live("sends a GET with the token, the formats read and Host, and reads a chunked body sent in small pieces", () =>
    Effect.gen(function* () {
      const body = randomBytes(50_000)
      const parts = chunked(body, 777).flatMap((b) => [b.subarray(0, 3), b.subarray(3)])
      const s = yield* Effect.promise(() => rawServer(writeSlowly(parts, 0)))
      const got = yield* downloadAll(s.url)
      expect(got.equals(body)).toBe(true)
      const [request] = s.requests
      expect(request).toMatch(/^GET \/api\/v1\/sync\/files\?revision=r1 HTTP\/1\.1\r\n/)
      expect(request).toContain("authorization: Bearer ast_0000000000000000_secret\r\n")
      expect(request).toContain(`\r\n${ARCHIVE_FORMATS_HEADER}: ${FORMATS.join(", ")}\r\n`)
      expect(request).toContain(`host: ${new URL(s.url).host}\r\n`)
    })
  )

  it.live("names the formats its consumer reads: a pull's a plain tar too, sent ahead or not", () =>
    Effect.gen(function* () {
      const body = randomBytes(5_000)
      const s = yield* Effect.promise(() => rawServer(writeSlowly(chunked(body, 1000), 0)))
      expect((yield* downloadAll(s.url, READING)).equals(body)).toBe(true)
      expect(READING.formats).toEqual(DOWNLOAD_FORMATS)
      expect(DOWNLOAD_FORMATS).toContain("tar")
      expect(s.requests[0]).toContain(`\r\n${ARCHIVE_FORMATS_HEADER}: ${DOWNLOAD_FORMATS.join(", ")}\r\n`)
      const ahead = yield* withClient(opts(s.url), (c) =>
        Effect.scoped(
          Effect.flatMap(c.startDownload(READING), (early) =>
            early === undefined ? Effect.succeed(undefined) : early.answer
          )
        )
      )
      expect(ahead).toBeDefined()
      expect(s.requests[1]).toContain(`\r\n${ARCHIVE_FORMATS_HEADER}: ${DOWNLOAD_FORMATS.join(", ")}\r\n`)
    })
  )

  it.live("hands on pieces that stay what they were: 24 MiB held by a slow consumer, read back whole", () =>
    Effect.gen(function* () {
      const body = randomBytes(24 * 1024 * 1024)
      const s = yield* Effect.promise(() =>
        rawServer((socket) => {
          socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`)
          socket.end(body)
        })
      )
      const got = yield* withClient(opts(s.url), (c) =>
        c.download(
          "r1",
          () => undefined,
          (b) =>
            Stream.runCollect(Stream.tap(b, () => Effect.sleep(Duration.millis(1)))).pipe(
              Effect.map((pieces) => Buffer.concat(Chunk.toArray(pieces)))
            )
        )
      )
      expect(got.length).toBe(body.length)
      expect(got.equals(body)).toBe(true)
    })
  )

  it.live("reads a body that ends with the connection (no length, no chunks)", () =>
    Effect.gen(function* () {
      const s = yield* Effect.promise(() => rawServer(writeSlowly(["HTTP/1.1 200 OK\r\n\r\nab", "cd"])))
      expect((yield* downloadAll(s.url)).toString()).toBe("abcd")
    })
  )

  it.live("retries an answer cut short, and gets the whole of the next", () =>
    Effect.gen(function* () {
      const s = yield* Effect.promise(() =>
        rawServer(
          writeSlowly(["HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"]),
          writeSlowly(["HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nwxyz"])
        )
      )
      expect((yield* downloadAll(s.url)).toString()).toBe("wxyz")
      expect(s.requests).toHaveLength(2)
    })
  )

  it.live("refuses bad framing in the head as one Decode error naming the field, not retried", () =>
    Effect.gen(function* () {
      const s = yield* Effect.promise(() =>
        rawServer(
          writeSlowly([
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
          ])
        )
      )
      const result = yield* downloadEither(s.url)
      expect(Either.isLeft(result)).toBe(true)
      const e = Either.isLeft(result) ? result.left : undefined
      expect(e).toBeInstanceOf(ApiError)
      expect(e instanceof ApiError && e.kind).toBe("Decode")
      expect(e instanceof ApiError && e.message).toMatch(/transfer-encoding: both Transfer-Encoding and Content-Length/)
      expect(s.requests).toHaveLength(1)
    })
  )

  it.live("refuses a chunk longer than its size in the body the same way, after the pieces before it", () =>
    Effect.gen(function* () {
      const s = yield* Effect.promise(() =>
        rawServer(
          writeSlowly(["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", "2\r\nhello\r\n0\r\n\r\n"])
        )
      )
      const result = yield* downloadEither(s.url)
      const e = Either.isLeft(result) ? result.left : undefined
      expect(e instanceof ApiError && e.kind).toBe("Decode")
      expect(e instanceof ApiError && e.status).toBe(200)
      expect(e instanceof ApiError && e.message).toMatch(/status 200\), chunk-data/)
      expect(s.requests).toHaveLength(1)
    })
  )

  it.live("reads failure statuses as every call does: 503 with Retry-After retried, 401 answered at once", () =>
    Effect.gen(function* () {
      const busy = 'HTTP/1.1 503 Busy\r\nRetry-After: 0\r\nContent-Length: 19\r\n\r\n{"reason":"busy"}\r\n'
      const s = yield* Effect.promise(() =>
        rawServer(writeSlowly([busy]), writeSlowly(["HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"]))
      )
      expect((yield* downloadAll(s.url)).toString()).toBe("ok")
      expect(s.requests).toHaveLength(2)
      const denied = yield* Effect.promise(() =>
        rawServer(writeSlowly(['HTTP/1.1 401 Unauthorized\r\nContent-Length: 22\r\n\r\n{"reason":"bad token"}']))
      )
      const result = yield* downloadEither(denied.url)
      const e = Either.isLeft(result) ? result.left : undefined
      expect(e).toBeInstanceOf(Unauthorized)
      expect(e instanceof Unauthorized && e.reason).toMatch(/bad token \(401/)
      expect(denied.requests).toHaveLength(1)
    })
  )

  it.live("closes the connection when the download is interrupted mid-body", () =>
    Effect.gen(function* () {
      const s = yield* Effect.promise(() =>
        rawServer(async (socket) => {
          socket.write("HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\nabc")
          await sleep(10_000)
          socket.end()
        })
      )
      const fiber = yield* Effect.fork(downloadAll(s.url))
      while (s.requests[0] === undefined || s.requests[0] === "") yield* Effect.sleep(Duration.millis(5))
      yield* Effect.sleep(Duration.millis(50))
      yield* Fiber.interrupt(fiber)
      for (let i = 0; i < 100 && s.closed.length === 0; i++) yield* Effect.sleep(Duration.millis(10))
      expect(s.closed).toEqual([0])
    })
  )

  it.live("feeds the archive's reader from the slabs: stored and deflated members read the same", () =>
    Effect.gen(function* () {
      const files = Array.from({ length: 40 }, (_, i) => ({ path: `d${i % 3}/f${i}.txt`, bytes: randomBytes(i * 997) }))
      const tar = Buffer.concat([...files.map((f) => fileRecord(f.path, f.bytes)), END_OF_ARCHIVE])
      const stored = storedMember(tar, Buffer.alloc) ?? zlib.gzipSync(tar, { level: 0 })
      const archives: Array<Buffer> = [Buffer.from(stored), zlib.gzipSync(tar, { level: 6 })]
      for (const archive of archives) {
        const s = yield* Effect.promise(() =>
          rawServer(
            writeSlowly([
              `HTTP/1.1 200 OK\r\nContent-Length: ${archive.length}\r\n\r\n`,
              archive.subarray(0, 7_777),
              archive.subarray(7_777)
            ])
          )
        )
        const got = new Map<string, Array<Buffer>>()
        let inSlabs = 0
        yield* withClient(opts(s.url), (c) =>
          c.download(
            "r1",
            () => undefined,
            (body) =>
              readArchive(body, {
                file: (path) => {
                  const parts: Array<Buffer> = []
                  got.set(path, parts)
                  return {
                    write: (chunk) => {
                      // A view of a slab the socket read into (1 MiB), not of a copy.
                      if (chunk.buffer.byteLength === 1024 * 1024) inSlabs++
                      parts.push(chunk)
                    },
                    end: () => {}
                  }
                }
              })
          )
        )
        for (const f of files) expect(Buffer.concat(got.get(f.path) ?? []).equals(f.bytes)).toBe(true)
        // A stored member's bytes are views of the slabs themselves; zlib's output is its own.
        if (archive === archives[0]) expect(inSlabs).toBeGreaterThan(0)
      }
    })
  )

  it.live("reads at most about 8 MiB ahead of a consumer that does not take, and the rest once it does", () =>
    Effect.gen(function* () {
      const body = Buffer.alloc(40 * 1024 * 1024, 3)
      const s = yield* Effect.promise(() =>
        rawServer((socket) => {
          socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`)
          socket.end(body)
        })
      )
      const takes = yield* Effect.scoped(
        Effect.gen(function* () {
          const answer = yield* rawGet(new URL(`${s.url}/x`), {})
          yield* Effect.sleep(Duration.millis(500))
          const sizes: Array<number> = []
          yield* Stream.runForEachChunk(answer.body, (c) =>
            Effect.sync(() => sizes.push(Chunk.reduce(c, 0, (n, p) => n + p.length)))
          )
          return sizes
        })
      )
      // What was read while nobody took: the high-water mark and at most one slab's read more.
      expect(takes[0]).toBeGreaterThan(4 * 1024 * 1024)
      expect(takes[0]).toBeLessThanOrEqual(9 * 1024 * 1024)
      expect(takes.reduce((a, b) => a + b, 0)).toBe(body.length)
    })
  )

  it.live("bounds what is held by the bytes read, not by the body's: a flood of 1-byte chunks is paused too", () =>
    Effect.gen(function* () {
      // 1,600,000 chunks of one byte: 9.6 MiB on the wire, 1.6 MB of body.
      const unit = Buffer.from("1\r\nx\r\n")
      const block = Buffer.concat(Array.from({ length: 64_000 }, () => unit))
      const blocks = 25
      const s = yield* Effect.promise(() =>
        rawServer(async (socket) => {
          socket.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
          for (let i = 0; i < blocks && !socket.destroyed; i++)
            if (!socket.write(block)) await new Promise((r) => socket.once("drain", r))
          socket.end("0\r\n\r\n")
        })
      )
      const takes = yield* Effect.scoped(
        Effect.gen(function* () {
          const answer = yield* rawGet(new URL(`${s.url}/x`), {})
          yield* Effect.sleep(Duration.millis(1000))
          const seen: Array<{ pieces: number; bytes: number }> = []
          yield* Stream.runForEachChunk(answer.body, (c) =>
            Effect.sync(() => seen.push({ pieces: c.length, bytes: Chunk.reduce(c, 0, (n, p) => n + p.length) }))
          )
          return seen
        })
      )
      const [first] = takes
      // Held while nobody took: the wire's high-water mark and one read more (~9 MiB, 1.5 M one-byte chunks), in few
      // views (the tiny pieces copied together), not one object per chunk and not the whole body.
      expect(first?.pieces).toBeLessThan(1_000)
      expect(first?.bytes).toBeLessThan(blocks * 64_000)
      expect(takes.reduce((n, t) => n + t.bytes, 0)).toBe(blocks * 64_000)
    })
  )

  it.live("refuses bytes after the end of a Content-Length body read with it, not answering its prefix", () =>
    Effect.gen(function* () {
      const s = yield* Effect.promise(() =>
        rawServer(writeSlowly(["HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcGARBAGE"]))
      )
      expect(decodeMessage(yield* downloadEither(s.url))).toMatch(/status 200\), end: bytes after the end/)
      expect(s.requests).toHaveLength(1)
    })
  )

  it.live("refuses a Content-Length short of the archive sent as framing, not as a corrupt archive", () =>
    Effect.gen(function* () {
      const gz = zlib.gzipSync(Buffer.concat([fileRecord("a.txt", Buffer.from("hello")), END_OF_ARCHIVE]))
      const s = yield* Effect.promise(() =>
        rawServer((socket) => {
          socket.end(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${gz.length - 10}\r\n\r\n`), gz]))
        })
      )
      expect(decodeMessage(yield* archiveEither(s.url))).toMatch(/end: bytes after the end/)
      expect(s.requests).toHaveLength(1)
    })
  )

  it.live("reports a framing refused in the body whatever the consumer made of the framing bytes it was fed", () =>
    Effect.gen(function* () {
      // The first chunk's size says 9 bytes more than its data: the CRLF and the next size line go to gunzip, which
      // fails on them (invalid distance) before the reader refuses the chunk.
      const gz = zlib.gzipSync(Buffer.concat([fileRecord("a.txt", Buffer.from("hello")), END_OF_ARCHIVE]))
      const s = yield* Effect.promise(() =>
        rawServer((socket) => {
          socket.end(
            Buffer.concat([
              Buffer.from(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${(20 + 9).toString(16)}\r\n`),
              gz.subarray(0, 20),
              Buffer.from(`\r\n${(gz.length - 20).toString(16)}\r\n`),
              gz.subarray(20),
              Buffer.from("\r\n0\r\n\r\n")
            ])
          )
        })
      )
      expect(decodeMessage(yield* archiveEither(s.url))).toMatch(/status 200\), chunk-data/)
      expect(s.requests).toHaveLength(1)
    })
  )

  it.live("reads a head of lines ended by LF alone as refused framing at once, not as a server unreachable", () =>
    Effect.gen(function* () {
      const s = yield* Effect.promise(() => rawServer(writeSlowly(["HTTP/1.1 200 OK\nContent-Length: 3\n\nabc"])))
      expect(decodeMessage(yield* downloadEither(s.url))).toMatch(/header: a line ended by a lone LF/)
      expect(s.requests).toHaveLength(1)
    })
  )

  it.live("takes an exception of the reader's that is not a refusal for a defect, not a failure to retry", () =>
    Effect.gen(function* () {
      const s = yield* Effect.promise(() => rawServer(writeSlowly(["HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"])))
      hooks.breakReader = true
      const exit = yield* Effect.exit(downloadAll(s.url)).pipe(
        Effect.ensuring(Effect.sync(() => (hooks.breakReader = false)))
      )
      expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
      expect(Exit.isFailure(exit) && Cause.pretty(exit.cause)).toMatch(/a bug in the reader/)
      expect(s.requests).toHaveLength(1)
    })
  )
})

/** A body no stretch of which repeats at a slab's or a read's distance, served whole with its length. */
const patterned = (length: number) => {
  const body = Buffer.allocUnsafe(length)
  for (let i = 0; i < length; i++) body[i] = (i * 31 + Math.floor(i / 4099)) & 0xff
  return body
}
const serveWhole = (body: Buffer) =>
  rawServer((socket) => {
    socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`)
    socket.end(body)
  })

/** A whole download of `url` that asks for its slabs to be read into again, each pull's pieces handed to `each`. */
const pullReusing = <E>(url: string, each: (pieces: Chunk.Chunk<Uint8Array>) => Effect.Effect<void, E>) =>
  withClient(opts(url), (c) =>
    c.download(
      "r1",
      () => undefined,
      (b) => Stream.runForEachChunk(b, each),
      { reuse: true }
    )
  )

describe("a whole download whose consumer lets go of its pieces by its next pull (reuse)", () => {
  it.live("reads into the same slabs again: 64 MiB in far fewer than 64 slabs, every pull's pieces as sent", () =>
    Effect.gen(function* () {
      const body = patterned(64 * 1024 * 1024)
      const s = yield* Effect.promise(() => serveWhole(body))
      const slabs = new Set<ArrayBufferLike>()
      let at = 0
      let wrong = 0
      yield* pullReusing(s.url, (pieces) =>
        // A consumer that yields inside a pull (as the archive's reader does while the writer thread is busy): the
        // socket reads on meanwhile, and the pull's pieces must stay what they were until the next.
        Effect.zipRight(
          Effect.sleep(Duration.millis(2)),
          Effect.sync(() => {
            for (const p of pieces) {
              slabs.add(p.buffer)
              if (!body.subarray(at, at + p.length).equals(p)) wrong++
              at += p.length
            }
          })
        )
      )
      expect(at).toBe(body.length)
      expect(wrong).toBe(0)
      // Without reuse each 1 MiB slab is new: 64 or more.
      expect(slabs.size).toBeLessThan(40)
    })
  )

  it.live("never reads into a slab a view of which is held, however many pulls later", () =>
    Effect.gen(function* () {
      const body = patterned(40 * 1024 * 1024)
      const s = yield* Effect.promise(() => serveWhole(body))
      const kept: Array<{ readonly view: Uint8Array; readonly at: number }> = []
      let at = 0
      let n = 0
      yield* pullReusing(s.url, (pieces) =>
        Effect.sync(() => {
          for (const p of pieces) {
            // Every third piece held to the end, as the stored reader holds a member and the staged writer a small
            // file.
            if (n++ % 3 === 0) {
              hold(p)
              kept.push({ view: p, at })
            }
            at += p.length
          }
        })
      )
      expect(at).toBe(body.length)
      expect(kept.length).toBeGreaterThan(10)
      for (const k of kept) {
        expect(body.subarray(k.at, k.at + k.view.length).equals(k.view)).toBe(true)
        release(k.view)
      }
    })
  )

  it.live("never reads into a failure's slabs again, with reuse asked for: its body is read whole and kept", () =>
    Effect.gen(function* () {
      const body = patterned(6 * 1024 * 1024)
      const s = yield* Effect.promise(() =>
        rawServer(async (socket) => {
          socket.write(`HTTP/1.1 503 Busy\r\nContent-Length: ${body.length}\r\n\r\n`)
          for (let at = 0; at < body.length && !socket.destroyed; at += 256 * 1024) {
            socket.write(body.subarray(at, at + 256 * 1024))
            await sleep(1)
          }
          socket.end()
        })
      )
      const got = yield* Effect.scoped(
        Effect.gen(function* () {
          const answer = yield* rawGet(new URL(`${s.url}/x`), {}, { reuse: true })
          expect(answer.status).toBe(503)
          // Views kept across pulls, not held: as a failure's reader keeps them.
          const pieces: Array<Uint8Array> = []
          yield* Stream.runForEachChunk(answer.body, (c) => Effect.sync(() => pieces.push(...c)))
          return Buffer.concat(pieces)
        })
      )
      expect(got.equals(body)).toBe(true)
    })
  )
})
