// The deploy client reports failures as the other clients do: one status mapping, Transient retries with Retry-After, ApiError by kind.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { Effect, Redacted } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { DeployApi, layer } from "../../src/services/DeployApi.js"
import type { SyncApiOptions } from "../../src/services/SyncApi.js"

const servers: Array<Server> = []
afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
})

type Handler = (res: ServerResponse) => void

/** A loopback server answering from a script, one handler per request (the last repeats), noting when each came. */
const scripted = async (...script: Array<Handler>) => {
  const at: Array<number> = []
  const server = createServer((req: IncomingMessage, res) => {
    at.push(Date.now())
    req.resume()
    req.on("end", () => script[Math.min(at.length - 1, script.length - 1)]?.(res))
  })
  servers.push(server)
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}`, at }
}

const answer =
  (code: number, body: string, headers: Record<string, string> = {}): Handler =>
  (res) => {
    res.writeHead(code, { "content-type": "application/json", ...headers })
    res.end(body)
  }

const options = (url: string): SyncApiOptions => ({
  endpoint: { mode: "direct", origin: url },
  token: Redacted.make("ast_0000000000000000_secret"),
  retry: { maxRetries: 2, base: "10 millis", factor: 2, cap: "5 seconds" }
})

const releases = (url: string) =>
  Effect.runPromise(
    Effect.flatMap(DeployApi, (api) => api.releases()).pipe(Effect.either, Effect.provide(layer(options(url))))
  )

describe("DeployApi failures", () => {
  it("waits at least the Retry-After of a 503 before trying again, then succeeds", async () => {
    const s = await scripted(answer(503, '{"reason":"busy"}', { "retry-after": "1" }), answer(200, "[]"))
    const r = await releases(s.url)
    expect(r._tag === "Right" && r.right).toEqual([])
    expect(s.at.length).toBe(2)
    expect((s.at[1] ?? 0) - (s.at[0] ?? 0)).toBeGreaterThanOrEqual(900)
  })

  it("a status that stays transient ends as ApiError kind Status, naming the attempts", async () => {
    const s = await scripted(answer(502, '{"reason":"bad gateway"}'))
    const r = await releases(s.url)
    expect(r._tag === "Left" && r.left._tag === "ApiError" && [r.left.kind, r.left.status]).toEqual(["Status", 502])
    expect(r._tag === "Left" && r.left.message).toMatch(/bad gateway \(gave up after 3 attempts\)/)
    expect(s.at.length).toBe(3)
  })

  it("no server is ApiError kind Transport (unreachable), an answer that does not decode kind Decode", async () => {
    const gone = await scripted()
    await new Promise((r) => servers.pop()?.close(r))
    const down = await releases(gone.url)
    expect(down._tag === "Left" && down.left._tag === "ApiError" && down.left.kind).toBe("Transport")
    expect(down._tag === "Left" && down.left.message).toMatch(/server unreachable/)
    const s = await scripted(answer(200, '{"not":"a list"}'))
    const bad = await releases(s.url)
    expect(bad._tag === "Left" && bad.left._tag === "ApiError" && bad.left.kind).toBe("Decode")
  })

  it("the deploy area's own 409s: DeployLocked with its holder, a lost lock an ApiError with status 409", async () => {
    const lock = {
      holder: "ci",
      message: "nightly",
      who: "ast_1111111111111111",
      acquired_at: "2026-01-01T00:00:00Z",
      expires_at: "2026-01-01T00:05:00Z",
      release: null
    }
    const s = await scripted(
      answer(409, JSON.stringify({ _tag: "DeployLocked", reason: "held", lock })),
      answer(409, JSON.stringify({ _tag: "LockLost", reason: "this deploy's lock expired" }))
    )
    const locked = await releases(s.url)
    expect(locked._tag === "Left" && locked.left._tag === "DeployLocked" && locked.left.holder).toBe(
      "ci (token ast_1111111111111111)"
    )
    const lost = await releases(s.url)
    expect(lost._tag === "Left" && lost.left._tag === "ApiError" && [lost.left.status, lost.left.reason]).toEqual([
      409,
      "this deploy's lock expired"
    ])
  })
})
