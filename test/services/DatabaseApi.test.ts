// The database client's transport: retried like the file client's on transient failures, an import retried only
// with its idempotency key — against a real server over PostgreSQL, and a loopback server that fails on purpose.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Redacted, Stream } from "effect"
import { EXPORT_VERSION } from "../../src/domain/db/tables.js"
import { memorySource } from "../../src/server/db/handlers.js"
import * as DatabaseApi from "../../src/services/DatabaseApi.js"
import { fastRetry, serverForFile } from "../server/support.js"

const USER = {
  id: "u1",
  name: "ada",
  email: "ada@example.com",
  display_name: "Ada",
  roles: [],
  created_at: "2026-01-01T00:00:00.000Z",
  updated_at: "2026-01-01T00:00:00.000Z"
}
const client = (origin: string, token: string) =>
  DatabaseApi.make({
    endpoint: { mode: "direct", origin },
    token: Redacted.make(token),
    retry: fastRetry
  }).pipe(Effect.provide(FetchHttpClient.layer))

/** A loopback server whose answers the test scripts, closed with the scope; it records each request's idempotency key. */
const scripted = (answer: (n: number, req: IncomingMessage, res: ServerResponse) => void) =>
  Effect.acquireRelease(
    Effect.async<{ url: string; keys: Array<string | undefined>; server: Server }>((resume) => {
      const keys: Array<string | undefined> = []
      const server: Server = createServer((req, res) => {
        keys.push(req.headers["idempotency-key"] as string | undefined)
        req.resume()
        req.on("end", () => answer(keys.length, req, res))
      })
      server.listen(0, "127.0.0.1", () =>
        resume(Effect.succeed({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, keys, server }))
      )
    }),
    (s) => Effect.sync(() => s.server.close())
  )

describe("DatabaseApi transport", () => {
  it.scopedLive("retries a 503 and a connection cut, then gets the info", () =>
    Effect.gen(function* () {
      const s = yield* scripted((n, _req, res) => {
        if (n === 1) return res.writeHead(503).end("busy")
        if (n === 2) return res.socket?.destroy()
        res.writeHead(200, { "content-type": "application/json" })
        res.end(JSON.stringify({ url: null, schema: "t_x", counts: { users: 0, skills: 0, contexts: 0 } }))
      })
      const info = yield* Effect.flatMap(client(s.url, "ast_t"), (c) => c.info)
      expect(info.schema).toBe("t_x")
      expect(s.keys).toHaveLength(3)
    })
  )

  it.scopedLive(
    "an import whose answer is lost is retried with the same idempotency key; without a key, not at all",
    () =>
      Effect.gen(function* () {
        const ok = { dry_run: false, tables: [] }
        const s = yield* scripted((n, _req, res) => {
          if (n % 2 === 1) return res.socket?.destroy()
          res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(ok))
        })
        const empty = memorySource({ users: [], skills: [], contexts: [] })
        const withKey = yield* Effect.flatMap(client(s.url, "ast_t"), (c) => c.importFrom(empty, { dryRun: false }))
        expect(withKey.tables).toEqual([])
        expect(s.keys).toHaveLength(2)
        expect(s.keys[0]).toMatch(/^[0-9a-f-]{36}$/)
        expect(s.keys[1]).toBe(s.keys[0])
        const noKey = yield* Effect.either(
          Effect.flatMap(client(s.url, "ast_t"), (c) => c.importFrom(empty, { dryRun: false, idempotencyKey: null }))
        )
        expect(noKey._tag).toBe("Left")
        expect(s.keys).toHaveLength(3)
        expect(s.keys[2]).toBeUndefined()
      })
  )
})

describe("DatabaseApi export format", () => {
  it.scopedLive("digests of another export format are refused, naming both versions, not compared", () =>
    Effect.gen(function* () {
      const s = yield* scripted((_n, _req, res) => {
        res.writeHead(200, { "content-type": "application/x-ndjson" })
        res.end(
          [
            JSON.stringify({ kind: "header", version: EXPORT_VERSION - 1, exported_at: "2026-01-01T00:00:00Z" }),
            JSON.stringify({ kind: "digest", id: "pdf", digest: "0".repeat(32) }),
            JSON.stringify({ kind: "end", rows: 1 })
          ].join("\n")
        )
      })
      const c = yield* client(s.url, "ast_t")
      const digests = yield* Effect.either(Stream.runCollect(c.source.digests!("skills")))
      expect(digests._tag).toBe("Left")
      expect(String(digests._tag === "Left" ? digests.left.reason : "")).toContain(
        `the server sends export format version ${EXPORT_VERSION - 1}, this agentsync reads version ${EXPORT_VERSION}`
      )
      const rows = yield* Effect.either(Stream.runCollect(c.source.rows("skills")))
      expect(String(rows._tag === "Left" ? rows.left.reason : "")).toContain(
        `the server sends export format version ${EXPORT_VERSION - 1}, this agentsync reads version ${EXPORT_VERSION}`
      )
    })
  )
})

describe("the server's import idempotency", () => {
  const server = serverForFile("dbapi")

  it("a repeated key answers with the first import's result and does not run it again", async () => {
    const t = await server.createTenant("idem-db")
    const token = Redacted.value(t.token)
    const post = (key: string, name: string) =>
      fetch(`${server.url}/api/v1/sync/database/import`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/x-ndjson", "idempotency-key": key },
        body: [
          JSON.stringify({ kind: "header", version: EXPORT_VERSION, exported_at: "2026-01-01T00:00:00Z" }),
          JSON.stringify({ kind: "users", row: { ...USER, name } }),
          JSON.stringify({ kind: "end", rows: 1 })
        ].join("\n")
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as { tables: Array<Record<string, number>> } }))
    const first = await post("k1", "ada")
    expect(first.status, JSON.stringify(first.body)).toBe(200)
    const again = await post("k1", "grace")
    expect(again.body).toEqual(first.body)
    const other = await post("k2", "grace")
    const users = (b: typeof first.body) => b.tables.find((x) => x["table"] === ("users" as never))
    expect(users(first.body)).toMatchObject({ inserted: 1 })
    expect(users(other.body)).toMatchObject({ updated: 1 })
  }, 60_000)
})
