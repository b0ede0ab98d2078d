// The access log: every answered request writes one line (status, bytes, duration), streamed answers included,
// whether the body went out whole or the client went away during it.
import { randomBytes, randomUUID } from "node:crypto"
import { request } from "node:http"
import { describe, expect, it, layer } from "@effect/vitest"
import { Context, Effect, Layer, Redacted } from "effect"
import { vi } from "vitest"
import { FilesRoutes, SYNC_PREFIX } from "../../src/api/files.js"
import * as AccessLog from "../../src/server/accessLog.js"
import { scopedDatabase, sqlRows } from "../support/pg.js"
import { call, fastRetry, scopedServer, type TestServer, uploadArchive } from "./support.js"

const lines: Array<AccessLog.AccessLine> = []

class World extends Context.Tag("test/AccessLogWorld")<
  World,
  { readonly server: TestServer; readonly token: Redacted.Redacted<string>; readonly tenantId: string }
>() {}

const WorldLive = Layer.scoped(
  World,
  Effect.gen(function* () {
    const server = yield* scopedServer(yield* scopedDatabase("accesslog"), {
      accessLog: AccessLog.make((line) => {
        lines.push(line)
        written()
      })
    })
    const t = yield* server.createTenant("logged")
    return { server, token: t.token, tenantId: t.tenantId }
  })
)

/** A request read to its end (or, with `stopAfter`, cut once that many body bytes have arrived). */
const ask = (url: string, token: Redacted.Redacted<string>, stopAfter?: number) =>
  Effect.async<{ status: number; bytes: number }>((resume) => {
    const req = request(url, { headers: { authorization: `Bearer ${Redacted.value(token)}` } }, (res) => {
      let bytes = 0
      res.on("data", (d: Buffer) => {
        bytes += d.length
        if (stopAfter !== undefined && bytes >= stopAfter) {
          req.destroy()
          resume(Effect.succeed({ status: res.statusCode ?? 0, bytes }))
        }
      })
      res.on("end", () => resume(Effect.succeed({ status: res.statusCode ?? 0, bytes })))
      res.on("error", () => undefined)
    })
    req.on("error", () => undefined)
    req.end()
  })

/** Called after each line is written. */
let written: () => void = () => undefined

/** The lines of a method and route, once `count` of them are written (a streamed answer's is written at its end). */
const linesFor = (method: string, route: string, count: number) => {
  const found = () => lines.filter((l) => l.method === method && l.route === route)
  return Effect.async<ReadonlyArray<AccessLog.AccessLine>>((resume) => {
    const check = () => {
      if (found().length < count) return
      written = () => undefined
      resume(Effect.succeed(found()))
    }
    written = check
    check()
  }).pipe(Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => found() }), Effect.merge)
}

layer(WorldLive, { excludeTestServices: true })("the access log", (it) => {
  it.effect(
    "one line for each download, whole or cut off by the client, with its status, bytes and duration",
    () =>
      Effect.gen(function* () {
        const { server, token, tenantId } = yield* World
        const options = { endpoint: { mode: "direct" as const, origin: server.url }, token, retry: fastRetry }
        // Content that does not compress, so the archive is larger than what the client reads before cutting it.
        const noise = randomBytes(1024 * 1024).toString("base64")
        const pushed = yield* call(options, (c) =>
          c.upload(uploadArchive(null, [], { "config/a.yaml": "a: 1\n", "config/noise.txt": noise }), randomUUID())
        )
        const route = `${SYNC_PREFIX}${FilesRoutes.download}`
        const url = `${server.url}${route}?revision=${pushed.revision}`
        const whole = yield* ask(url, token)
        expect(whole.status).toBe(200)
        const [line] = yield* linesFor("GET", route, 1)
        expect(line).toMatchObject({ method: "GET", route, tenant: tenantId, status: 200, bytes: whole.bytes })
        expect(line?.bytes).toBeGreaterThan(1024 * 1024)
        expect(line?.duration_ms).toEqual(expect.any(Number))
        expect(line?.aborted).toBeUndefined()
        // The client goes away after the first 64 KiB: still one line (marked aborted when the server saw it go
        // before the end; loopback's socket buffers may take the whole body first).
        const cut = yield* ask(url, token, 64 * 1024)
        expect(cut.status).toBe(200)
        const after = yield* linesFor("GET", route, 2)
        expect(after).toHaveLength(2)
        expect(after[1]).toMatchObject({ route, tenant: tenantId, status: 200, bytes: expect.any(Number) })
        // A body that breaks off on the server (its stored content gone after the answer began): one line, aborted.
        yield* sqlRows(server.databaseUrl, "DELETE FROM blobs WHERE tenant_id = $1 AND size > 1000", [tenantId])
        const broken = yield* ask(url, token)
        expect(broken.status).toBe(200)
        const third = (yield* linesFor("GET", route, 3))[2]
        expect(third).toMatchObject({ route, tenant: tenantId, status: 200, aborted: true })
        expect(third?.bytes).toBeLessThan(1024 * 1024)
        // A download of a revision that does not exist: its 404, logged as any other answer.
        expect((yield* ask(`${server.url}${route}?revision=nope`, token)).status).toBe(404)
        expect((yield* linesFor("GET", route, 4))[3]).toMatchObject({ route, status: 404 })
        // The upload (a raw handler) and the manifest have theirs too.
        const upload = yield* linesFor("POST", `${SYNC_PREFIX}${FilesRoutes.upload}`, 1)
        expect(upload).toHaveLength(1)
        expect(upload[0]).toMatchObject({ method: "POST", status: 200, tenant: tenantId })
      }),
    60_000
  )
})

describe("the access log on stderr", () => {
  const line = (status: number): AccessLog.AccessLine => ({
    time: "2026-01-01T00:00:00.000Z",
    method: "GET",
    route: "/livez",
    tenant: null,
    status,
    bytes: 0,
    duration_ms: 0.1
  })

  it("writes the lines of one turn of the event loop in one write, in order, before the next turn", async () => {
    const writes: Array<string> = []
    const spy = vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
      writes.push(String(chunk))
      return true
    })
    try {
      AccessLog.toStderr(line(200))
      AccessLog.toStderr(line(304))
      AccessLog.toStderr(line(404))
      expect(writes).toEqual([])
      await new Promise((resolve) => setImmediate(resolve))
      expect(writes).toHaveLength(1)
      expect(
        writes[0]!
          .split("\n")
          .filter((l) => l !== "")
          .map((l) => JSON.parse(l))
      ).toEqual([200, 304, 404].map((status) => ({ log: "access", ...line(status) })))
      // A later turn's line is a write of its own; one flushed early is not written twice.
      AccessLog.toStderr(line(500))
      AccessLog.flushStderr()
      await new Promise((resolve) => setImmediate(resolve))
      expect(writes).toHaveLength(2)
      expect(JSON.parse(writes[1]!)).toEqual({ log: "access", ...line(500) })
    } finally {
      spy.mockRestore()
    }
  })
})
