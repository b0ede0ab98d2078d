// The no-change check answered in front of the HTTP framework: every request it takes gets the answer the framework
// gives (status, headers but Date, body, access-log line), and every one it does not take reaches the framework.
import { randomUUID } from "node:crypto"
import { Agent, request } from "node:http"
import { expect, layer } from "@effect/vitest"
import { Context, Effect, Layer, Redacted } from "effect"
import { FORMATS } from "../../src/domain/caps.js"
import * as AccessLog from "../../src/server/accessLog.js"
import { scopedDatabase } from "../support/pg.js"
import { call, fastRetry, scopedServer, type TestServer, uploadArchive } from "./support.js"

const fastLines: Array<AccessLog.AccessLine> = []
const frameworkLines: Array<AccessLog.AccessLine> = []
const counts = { answered: 0, handedOn: 0 }
/** The check's access log, counting the requests it answered or handed on. */
const fastLog: AccessLog.AccessLog = (() => {
  const log = AccessLog.make((line) => fastLines.push(line))
  return {
    ...log,
    begin: (method, url) => {
      const entry = log.begin(method, url)
      return {
        finish: (...args) => {
          counts.answered++
          entry.finish(...args)
        },
        handOff: () => {
          counts.handedOn++
          entry.handOff()
        }
      }
    }
  }
})()

interface Answer {
  readonly status: number
  readonly headers: ReadonlyArray<string>
  readonly body: string
}

/** Connections kept alive between requests, as clients do (the answer's Connection and Keep-Alive headers). */
const agent = Effect.acquireRelease(
  Effect.sync(() => new Agent({ keepAlive: true })),
  (a) => Effect.sync(() => a.destroy())
)

/** One request; the raw header lines in order, Date left out (it names the second). */
const ask = (agent: Agent, base: string, path: string, headers: Record<string, string>, method = "GET") =>
  new Promise<Answer>((resolve, reject) => {
    const req = request(`${base}${path}`, { method, headers, agent }, (res) => {
      let body = ""
      res.setEncoding("utf8")
      res.on("data", (d) => {
        body += d
      })
      res.on("end", () => {
        const lines: Array<string> = []
        for (let i = 0; i < res.rawHeaders.length; i += 2) {
          if (res.rawHeaders[i]!.toLowerCase() !== "date") lines.push(`${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}`)
        }
        resolve({ status: res.statusCode ?? 0, headers: lines, body })
      })
      res.on("error", reject)
    })
    req.on("error", reject)
    req.end()
  })

const withoutTimes = (line: AccessLog.AccessLine | undefined) => {
  if (line === undefined) return undefined
  const { time: _t, duration_ms: _d, ...rest } = line
  return rest
}

/**
 * Asks both servers the same; the answers and the log lines must be the same. Returns the answer and what the check
 * did with the request: "answered", "handed on", or "not taken".
 */
const both = (path: string, headers: Record<string, string>, method = "GET") =>
  Effect.flatMap(World, (w) => Effect.promise(() => bothOn(w, path, headers, method)))
const bothOn = async (w: World["Type"], path: string, headers: Record<string, string>, method: string) => {
  const before = { ...counts }
  const lines = [fastLines.length, frameworkLines.length] as const
  const viaFast = await ask(w.agent, w.fast.url, path, headers, method)
  const viaFramework = await ask(w.agent, w.framework.url, path, headers, method)
  expect(viaFast).toEqual(viaFramework)
  const logged = [fastLines.slice(lines[0]).map(withoutTimes), frameworkLines.slice(lines[1]).map(withoutTimes)]
  expect(logged[0]).toHaveLength(1)
  expect(logged[0]).toEqual(logged[1])
  const did =
    counts.answered > before.answered ? "answered" : counts.handedOn > before.handedOn ? "handed on" : "not taken"
  return { ...viaFast, did }
}

const bearer = (token: Redacted.Redacted<string>) => ({ authorization: `Bearer ${Redacted.value(token)}` })
const directPath = "/api/v1/sync/files/manifest"
const relayPath = (tenantId: string) => `/api/v1/cloud/tenants/${tenantId}/files/manifest`

/**
 * The server with the check in front (`fast`, its access log counting what the check answered or handed on), the
 * same API on the same database with a middleware of the caller's (`framework`: every request goes through the
 * framework), two tenants with a revision each, and the head of the first.
 */
class World extends Context.Tag("test/NotModifiedWorld")<
  World,
  {
    readonly fast: TestServer
    readonly framework: TestServer
    readonly agent: Agent
    readonly t: Tenant
    readonly other: Tenant
    readonly head: string
  }
>() {}
type Tenant = Effect.Effect.Success<ReturnType<TestServer["createTenant"]>>

const world = Layer.scoped(
  World,
  Effect.gen(function* () {
    const dbUrl = yield* scopedDatabase("notmod")
    const fast = yield* scopedServer(dbUrl, { accessLog: fastLog })
    const framework = yield* scopedServer(dbUrl, {
      middleware: AccessLog.make((line) => frameworkLines.push(line)).middleware
    })
    const t = yield* fast.createTenant("checked")
    const other = yield* fast.createTenant("other")
    const options = (token: Redacted.Redacted<string>) => ({
      endpoint: { mode: "direct" as const, origin: fast.url },
      token,
      retry: fastRetry
    })
    const head = (yield* call(options(t.token), (c) =>
      c.upload(uploadArchive(null, [], { "config/a.yaml": "a" }), randomUUID())
    )).revision
    yield* call(options(other.token), (c) => c.upload(uploadArchive(null, [], { "config/b.yaml": "b" }), randomUUID()))
    return { fast, framework, agent: yield* agent, t, other, head }
  }).pipe(Effect.orDie)
)

layer(world, { excludeTestServices: true })("the no-change check in front of the framework", (it) => {
  it.effect("answers the framework's 304, with its headers and log line, in both URL families", () =>
    Effect.gen(function* () {
      const { t, head } = yield* World
      for (const path of [directPath, relayPath(t.tenantId)]) {
        for (const tag of [`"${head}"`, `W/"${head}"`, `"stale", "${head}"`, "*"]) {
          const r = yield* both(path, { ...bearer(t.token), "if-none-match": tag })
          expect([tag, r.status, r.body, r.did]).toEqual([tag, 304, "", "answered"])
          expect(r.headers).toContain(`etag: "${head}"`)
          // What the client may upload in: the archive formats this server reads.
          expect(r.headers).toContain(`x-agentsync-archive: ${FORMATS.join(", ")}`)
          // And the kinds of entries it keeps (a push of another kind is refused by the client).
          expect(r.headers).toContain("x-agentsync-entries: executable, link")
          expect(r.headers).toContain("x-agentsync-upload: trailer")
        }
      }
      expect(fastLines.at(-1)).toMatchObject({
        route: relayPath(t.tenantId),
        tenant: t.tenantId,
        status: 304,
        bytes: 0
      })
      const closing = yield* both(directPath, { ...bearer(t.token), "if-none-match": `"${head}"`, connection: "close" })
      expect([closing.status, closing.did, closing.headers]).toEqual([
        304,
        "answered",
        [
          `etag: "${head}"`,
          `x-agentsync-archive: ${FORMATS.join(", ")}`,
          "x-agentsync-entries: executable, link",
          "x-agentsync-upload: trailer",
          "Connection: close"
        ]
      ])
      expect(fastLog.inFlight()).toBe(0)
    })
  )

  it.effect("hands a bad token, another tenant's path, a stale tag or an empty tenant to the framework", () =>
    Effect.gen(function* () {
      const { t, other, head, fast } = yield* World
      const tag = { "if-none-match": `"${head}"` }
      const wrong = Redacted.make(`${Redacted.value(t.token).slice(0, -4)}AAAA`)
      const cases: Array<[string, Record<string, string>, number]> = [
        [directPath, { ...bearer(wrong), ...tag }, 401],
        [directPath, { authorization: "Bearer", ...tag }, 401],
        [directPath, { authorization: `Basic ${Redacted.value(t.token)}`, ...tag }, 401],
        [relayPath(other.tenantId), { ...bearer(t.token), ...tag }, 403],
        [relayPath("no-such-tenant"), { ...bearer(t.token), ...tag }, 403],
        [directPath, { ...bearer(t.token), "if-none-match": '"stale"' }, 200],
        [directPath, { ...bearer(t.token), "if-none-match": "" }, 200],
        [directPath, { ...bearer(other.token), ...tag }, 200]
      ]
      for (const [path, headers, status] of cases) {
        const r = yield* both(path, headers)
        expect([path, headers, r.status, r.did]).toEqual([path, headers, status, "handed on"])
      }
      const empty = yield* fast.createTenant("empty")
      const r = yield* both(directPath, { ...bearer(empty.token), "if-none-match": "*" })
      expect([r.status, r.did]).toEqual([200, "handed on"])
      expect(fastLog.inFlight()).toBe(0)
    })
  )

  it.effect("leaves every other request to the framework untouched", () =>
    Effect.gen(function* () {
      const { t, head } = yield* World
      const tag = { "if-none-match": `"${head}"` }
      const cases: Array<[string, Record<string, string>, string]> = [
        [directPath, bearer(t.token), "GET"],
        [`${directPath}?revision=${head}`, { ...bearer(t.token), ...tag }, "GET"],
        [`${directPath}?other=1`, { ...bearer(t.token), ...tag }, "GET"],
        [`${directPath}/`, { ...bearer(t.token), ...tag }, "GET"],
        [directPath, tag, "GET"],
        [directPath, { ...bearer(t.token), ...tag }, "HEAD"],
        [directPath, { ...bearer(t.token), ...tag }, "POST"],
        [relayPath("Not_A-Tenant"), { ...bearer(t.token), ...tag }, "GET"],
        [relayPath(`${t.tenantId}/x`), { ...bearer(t.token), ...tag }, "GET"]
      ]
      for (const [path, headers, method] of cases) {
        const r = yield* both(path, headers, method)
        expect([path, method, r.did]).toEqual([path, method, "not taken"])
      }
    })
  )

  it.effect("writes a token's first use before its 304, as the framework's check does", () =>
    Effect.gen(function* () {
      const { t, head, fast } = yield* World
      const fresh = yield* Effect.orDie(fast.tenants.createToken(t.tenantId, "fresh"))
      const lastUse = Effect.map(Effect.orDie(fast.tenants.listTokens(t.tenantId)), (all) =>
        all.find((k) => k.id === fresh.info.id)
      )
      expect((yield* lastUse)?.last_used_at).toBeNull()
      const r = yield* Effect.promise(() =>
        ask(new Agent(), fast.url, directPath, { ...bearer(fresh.token), "if-none-match": `"${head}"` })
      )
      expect(r.status).toBe(304)
      expect((yield* lastUse)?.last_used_at).not.toBeNull()
    })
  )

  it.effect("refuses a token at once when it is revoked, and a tag at once when the head moves", () =>
    Effect.gen(function* () {
      const { t, head, fast, framework } = yield* World
      const second = yield* Effect.orDie(fast.tenants.createToken(t.tenantId, "second"))
      const token = second.token
      const tag = { "if-none-match": `"${head}"` }
      expect((yield* both(directPath, { ...bearer(token), ...tag })).did).toBe("answered")
      yield* Effect.orDie(framework.tenants.revokeToken(second.info.id))
      const revoked = yield* both(directPath, { ...bearer(token), ...tag })
      expect([revoked.status, revoked.did]).toEqual([401, "handed on"])
      const moved = yield* call(
        { endpoint: { mode: "direct", origin: framework.url }, token: t.token, retry: fastRetry },
        (c) =>
          Effect.flatMap(c.manifest(), (m) =>
            c.upload(uploadArchive(head, m.entries, { "config/c.yaml": "c" }), randomUUID())
          )
      )
      const stale = yield* both(relayPath(t.tenantId), { ...bearer(t.token), ...tag })
      expect([stale.status, stale.did, JSON.parse(stale.body).revision]).toEqual([200, "handed on", moved.revision])
      const now = yield* both(relayPath(t.tenantId), { ...bearer(t.token), "if-none-match": `"${moved.revision}"` })
      expect([now.status, now.did]).toEqual([304, "answered"])
      expect(fastLog.inFlight()).toBe(0)
    })
  )

  it.effect("answers from its prepared statements many times over, and still refuses a token revoked after them", () =>
    Effect.gen(function* () {
      const { t, fast, framework, agent } = yield* World
      const third = yield* Effect.orDie(fast.tenants.createToken(t.tenantId, "third"))
      // Any head (an earlier case moved it).
      const headers = { ...bearer(third.token), "if-none-match": "*" }
      // More checks at once than the check has connections, and more on each than PostgreSQL plans a prepared
      // statement for before it keeps a generic plan: all answered by the check.
      const before = counts.answered
      const answers = yield* Effect.promise(() =>
        Promise.all(Array.from({ length: 60 }, () => ask(agent, fast.url, directPath, headers)))
      )
      expect(answers.map((a) => a.status)).toEqual(answers.map(() => 304))
      expect(counts.answered - before).toBe(60)
      yield* Effect.orDie(framework.tenants.revokeToken(third.info.id))
      const after = yield* Effect.promise(() =>
        Promise.all(Array.from({ length: 16 }, () => ask(agent, fast.url, directPath, headers)))
      )
      expect(after.map((a) => a.status)).toEqual(after.map(() => 401))
      expect(fastLog.inFlight()).toBe(0)
    })
  )
})
