import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { afterEach, describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Either, Option, Redacted, Schedule, Stream } from "effect"
import { RemoteManifest, standIn } from "../../src/api/files.js"
import { CurrentConfig, SyncConfig } from "../../src/config.js"
import {
  optionsFromConfig,
  parseRetryAfter,
  type SyncApiError,
  type SyncApiOptions
} from "../../src/services/SyncApi.js"
import { withClient, withClientEither } from "../support/apiClient.js"

const manifestBody = JSON.stringify({
  tenant: "t",
  revision: null,
  entries: [],
  checksum: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
})

const servers: Array<Server> = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))))
})

/** A loopback server answering from a script of handlers, one per request (the last repeats). */
const scripted = async (...script: Array<(req: IncomingMessage, res: ServerResponse) => void>) => {
  const seen: Array<{ url: string; key: string | undefined; auth: string | undefined; at: number }> = []
  const server = createServer((req, res) => {
    seen.push({
      url: req.url ?? "",
      key: req.headers["idempotency-key"] as string | undefined,
      auth: req.headers.authorization,
      at: Date.now()
    })
    req.resume()
    req.on("end", () => script[Math.min(seen.length - 1, script.length - 1)]!(req, res))
  })
  servers.push(server)
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return { url, seen }
}

const status =
  (code: number, headers: Record<string, string> = {}, body = "") =>
  (_: IncomingMessage, res: ServerResponse) => {
    res.writeHead(code, { "content-type": "application/json", ...headers })
    res.end(body)
  }
const ok = status(200, {}, manifestBody)
const opts = (url: string, extra: Partial<SyncApiOptions> = {}): SyncApiOptions => ({
  endpoint: { mode: "direct", origin: url },
  token: Redacted.make("ast_0000000000000000_secret"),
  retry: { maxRetries: 3, base: "10 millis", factor: 2, cap: "100 millis" },
  ...extra
})

describe("SyncApiClient retries", () => {
  it.live("retries 408/429/502/503/504 and then succeeds, sending the bearer token", () =>
    Effect.gen(function* () {
      const s = yield* Effect.promise(() => scripted(status(503), status(502), status(429), ok))
      const m = yield* withClient(opts(s.url), (c) => c.manifest())
      expect(m.revision).toBeNull()
      expect(s.seen.length).toBe(4)
      expect(s.seen[0]!.auth).toBe("Bearer ast_0000000000000000_secret")
      expect(s.seen[0]!.url).toBe("/api/v1/sync/files/manifest")
    })
  )

  it.live("does not retry other failures: 500, 400, 401, 409 are answered at once", () =>
    Effect.gen(function* () {
      for (const [code, tag] of [
        [500, "ApiError"],
        [400, "InvalidInput"],
        [401, "Unauthorized"],
        [409, "Conflict"]
      ] as const) {
        const s = yield* Effect.promise(() =>
          scripted(status(code, {}, JSON.stringify({ _tag: "X", reason: `because ${code}` })), ok)
        )
        const r = yield* withClientEither(opts(s.url), (c) => c.manifest())
        expect(Either.isLeft(r) && r.left._tag).toBe(tag)
        expect(Either.isLeft(r) && r.left.message).toContain(`because ${code}`)
        expect(s.seen.length).toBe(1)
      }
    })
  )

  it.live("a 200 that is not a manifest (a proxy's page, a wrong shape) is one clear error, not retried", () =>
    Effect.gen(function* () {
      for (const body of [
        "<html>gateway</html>",
        JSON.stringify({ tenant: "t", revision: null, entries: [{ path: "../x", size: 1, sha256: "0" }] })
      ]) {
        const s = yield* Effect.promise(() => scripted(status(200, {}, body)))
        const r = yield* withClientEither(opts(s.url), (c) => c.manifest())
        expect(Either.isLeft(r) && r.left._tag).toBe("UnsafeRemote")
        expect(Either.isLeft(r) && r.left.message).toMatch(/refused what the server sent .*nothing was written/)
        expect(s.seen.length).toBe(1)
      }
    })
  )

  it.live("honours Retry-After, even above the backoff", () =>
    Effect.gen(function* () {
      const s = yield* Effect.promise(() => scripted(status(503, { "retry-after": "1" }), ok))
      yield* withClient(
        opts(s.url, { retry: { maxRetries: 2, base: "10 millis", factor: 2, cap: "5 seconds" } }),
        (c) => c.manifest()
      )
      expect(s.seen[1]!.at - s.seen[0]!.at).toBeGreaterThanOrEqual(950)
    })
  )

  it.live("caps every wait, Retry-After included", () =>
    Effect.gen(function* () {
      const s = yield* Effect.promise(() => scripted(status(503, { "retry-after": "30" }), ok))
      const started = Date.now()
      yield* withClient(
        opts(s.url, { retry: { maxRetries: 2, base: "10 millis", factor: 2, cap: "200 millis" } }),
        (c) => c.manifest()
      )
      expect(Date.now() - started).toBeLessThan(5000)
    })
  )

  it.live("gives up on a dead server with one clear error after the configured attempts", () =>
    Effect.gen(function* () {
      const s = yield* Effect.promise(() => scripted(ok))
      const dead = s.url
      yield* Effect.promise(() => new Promise((r) => servers.pop()!.close(r)))
      const r = yield* withClientEither(
        opts(dead, { retry: { maxRetries: 2, base: "10 millis", factor: 2, cap: "50 millis" } }),
        (c) => c.manifest()
      )
      expect(Either.isLeft(r)).toBe(true)
      if (Either.isLeft(r)) {
        expect(r.left._tag).toBe("ApiError")
        expect(r.left.message).toMatch(/server unreachable \(gave up after 3 attempts/)
        expect(r.left._tag === "ApiError" && r.left.kind).toBe("Transport")
        expect(r.left.message).toContain(dead)
        expect(r.left.message).not.toContain("secret")
      }
    })
  )

  it.live("says how a call failed in ApiError.kind: Timeout, Status or Decode (Transport above)", () =>
    Effect.gen(function* () {
      const kindOf = (options: SyncApiOptions, call: "manifest" | "revisions") =>
        Effect.map(
          withClientEither(
            options,
            (c): Effect.Effect<unknown, SyncApiError> => (call === "manifest" ? c.manifest() : c.revisions())
          ),
          (r) => (Either.isLeft(r) && r.left._tag === "ApiError" ? [r.left.kind, r.left.status, r.left.message] : r)
        )
      const silent = yield* Effect.promise(() => scripted(() => {}))
      const noRetry = { maxRetries: 0, base: "10 millis", factor: 2, cap: "10 millis" } as const
      expect(yield* kindOf(opts(silent.url, { retry: noRetry, limits: { exchangeMs: 100 } }), "manifest")).toEqual([
        "Timeout",
        408,
        expect.stringMatching(/did not answer in time .*no answer within 0.1 s/)
      ])
      const failing = yield* Effect.promise(() =>
        scripted(status(500, {}, JSON.stringify({ _tag: "ApiError", status: 500, reason: "disk" })))
      )
      expect(yield* kindOf(opts(failing.url), "manifest")).toEqual(["Status", 500, expect.stringMatching(/500 .*disk/)])
      const nonsense = yield* Effect.promise(() => scripted(status(200, {}, JSON.stringify([{ id: 7 }]))))
      expect(yield* kindOf(opts(nonsense.url), "revisions")).toEqual([
        "Decode",
        200,
        expect.stringMatching(/^unexpected answer from the API/)
      ])
      expect(nonsense.seen.length).toBe(1)
    })
  )

  it.live("times out a silent server and retries it", () =>
    Effect.gen(function* () {
      const s = yield* Effect.promise(() => scripted(() => {}, ok))
      const m = yield* withClient(opts(s.url, { limits: { exchangeMs: 200 } }), (c) => c.manifest())
      expect(m.entries).toEqual([])
      expect(s.seen.length).toBe(2)
    })
  )

  it.live("retries an upload with the same idempotency key, re-creating its body", () =>
    Effect.gen(function* () {
      const result = JSON.stringify({ revision: "r1", parent: null, created: true, files: 1, received: 1 })
      const s = yield* Effect.promise(() => scripted(status(504), status(200, {}, result)))
      let bodies = 0
      const r = yield* withClient(opts(s.url), (c) =>
        c.upload(() => {
          bodies++
          return Stream.make(new Uint8Array([1, 2, 3]))
        }, "key-1")
      )
      expect(r.revision).toBe("r1")
      expect(bodies).toBe(2)
      expect(s.seen.map((x) => x.key)).toEqual(["key-1", "key-1"])
    })
  )

  it.live("an upload whose body fails ends with the body's own error, not retried as a transport failure", () =>
    Effect.gen(function* () {
      const s = yield* Effect.promise(() => scripted(status(200, {}, "{}")))
      const r = yield* withClientEither(opts(s.url), (c) =>
        c.upload(
          () => Stream.concat(Stream.make(new Uint8Array([1, 2, 3])), Stream.fail("changed while bundling")),
          "k"
        )
      )
      expect(Either.isLeft(r) && r.left).toBe("changed while bundling")
      expect(s.seen.length).toBeLessThanOrEqual(1)
    })
  )

  it.live(
    "an upload whose answer never comes is retried once the exchange deadline after its end has passed",
    () =>
      Effect.gen(function* () {
        const result = JSON.stringify({ revision: "r1", parent: null, created: false, files: 1, received: 1 })
        const s = yield* Effect.promise(() => scripted(() => {}, status(200, {}, result)))
        const r = yield* withClient(opts(s.url, { limits: { exchangeMs: 300 } }), (c) =>
          c.upload(() => Stream.make(new Uint8Array([1, 2, 3])), "key-2")
        )
        expect(r.revision).toBe("r1")
        expect(s.seen.map((x) => x.key)).toEqual(["key-2", "key-2"])
      }),
    20_000
  )

  it.live(
    "takes an Effect Schedule for its retries: it decides how many and how far apart, still only for transient failures",
    () =>
      Effect.gen(function* () {
        const s = yield* Effect.promise(() => scripted(status(503)))
        const spaced = Schedule.spaced("150 millis").pipe(Schedule.intersect(Schedule.recurs(2)))
        const r = yield* withClientEither(opts(s.url, { retry: spaced }), (c) => c.manifest())
        expect(Either.isLeft(r) && r.left.message).toMatch(/gave up after 3 attempts/)
        expect(s.seen.length).toBe(3)
        expect(s.seen[2]!.at - s.seen[1]!.at).toBeGreaterThanOrEqual(140)
        // A failure that is not transient is answered at once whatever the schedule allows.
        const refused = yield* Effect.promise(() => scripted(status(401)))
        yield* withClientEither(opts(refused.url, { retry: Schedule.forever }), (c) => c.manifest())
        expect(refused.seen.length).toBe(1)
        // Retry-After is a floor under the schedule's waits too.
        const busy = yield* Effect.promise(() => scripted(status(503, { "retry-after": "1" }), ok))
        yield* withClient(opts(busy.url, { retry: Schedule.recurs(1) }), (c) => c.manifest())
        expect(busy.seen[1]!.at - busy.seen[0]!.at).toBeGreaterThanOrEqual(950)
      })
  )

  it("reads Retry-After as seconds or as an HTTP date", () => {
    expect(Option.map(parseRetryAfter("3"), Duration.toMillis)).toEqual(Option.some(3000))
    const now = Date.parse("2026-01-01T00:00:00Z")
    expect(Option.map(parseRetryAfter("Thu, 01 Jan 2026 00:00:05 GMT", now), Duration.toMillis)).toEqual(
      Option.some(5000)
    )
    expect(parseRetryAfter("soon")).toEqual(Option.none())
  })
})

describe("SyncApiClient conditional manifest", () => {
  /** A server whose head is `head`: a 304 when If-None-Match names it, else the manifest; it records the header. */
  const headAt = async (head: string) => {
    const conditions: Array<string | undefined> = []
    const body = JSON.stringify({ ...JSON.parse(manifestBody), revision: head })
    const server = createServer((req, res) => {
      const condition = req.headers["if-none-match"]
      conditions.push(condition)
      req.resume()
      if (condition === `"${head}"`) res.writeHead(304).end()
      else res.writeHead(200, { "content-type": "application/json" }).end(body)
    })
    servers.push(server)
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, conditions }
  }

  it.live("asks on the held head's revision and answers with the held manifest itself while it is the head", () =>
    Effect.gen(function* () {
      const s = yield* Effect.promise(() => headAt("r1"))
      const held = standIn("t", "r1")
      const same = yield* withClient(opts(s.url), (c) => c.manifest({ known: held }))
      expect(same).toBe(held)
      const moved = yield* withClient(opts(s.url), (c) => c.manifest({ known: standIn("t", "r0") }))
      expect(moved.revision).toBe("r1")
      expect(moved).toBeInstanceOf(RemoteManifest)
      expect(s.conditions).toEqual(['"r1"', '"r0"'])
    })
  )

  it.live("asks unconditionally for a held manifest of no revision, or for a named revision", () =>
    Effect.gen(function* () {
      const s = yield* Effect.promise(() => headAt("r1"))
      const empty = new RemoteManifest({ ...JSON.parse(manifestBody), revision: null })
      const fresh = yield* withClient(opts(s.url), (c) => c.manifest({ known: empty }))
      expect(fresh).not.toBe(empty)
      const named = yield* withClient(opts(s.url), (c) => c.manifest({ revision: "r1", known: standIn("t", "r1") }))
      expect(named.revision).toBe("r1")
      expect(s.conditions).toEqual([undefined, undefined])
    })
  )
})

describe("SyncApiClient configuration", () => {
  const config = (fields: Partial<ConstructorParameters<typeof SyncConfig>[0]>) =>
    new SyncConfig({ projectRoot: "/p", servicesPath: "/p/services", ...fields })
  const resolve = (c: SyncConfig) =>
    Effect.either(Effect.provideService(Effect.flatMap(CurrentConfig, optionsFromConfig), CurrentConfig, c))

  it.live("chooses direct mode from a direct URL, relay mode from an API URL and tenant id", () =>
    Effect.gen(function* () {
      const token = Redacted.make("t")
      const d = yield* resolve(config({ directUrl: "http://h:1/", token }))
      expect(Either.isRight(d) && d.right.endpoint).toEqual({ mode: "direct", origin: "http://h:1" })
      const r = yield* resolve(config({ apiUrl: "https://api.example", tenantId: "acme-1", token }))
      expect(Either.isRight(r) && r.right.endpoint).toEqual({
        mode: "relay",
        api: "https://api.example",
        tenantId: "acme-1"
      })
    })
  )

  it.live(
    "the builder makes either mode, the four-argument form relay mode; a schedule it carries reaches the client",
    () =>
      Effect.gen(function* () {
        const direct = SyncConfig.builder("/p/services").direct("http://h:1", "tok").build()
        const d = yield* resolve(direct)
        expect(Either.isRight(d) && d.right.endpoint).toEqual({ mode: "direct", origin: "http://h:1" })
        expect([direct.projectRoot, direct.apiUrl, direct.tenantId]).toEqual(["/p", undefined, undefined])
        const relay = yield* resolve(
          SyncConfig.builder("/p/services").relay("https://api.example", "acme-1", "tok").build()
        )
        const legacy = yield* resolve(SyncConfig.builder("acme-1", "https://api.example", "tok", "/p/services").build())
        for (const r of [relay, legacy])
          expect(Either.isRight(r) && r.right.endpoint).toEqual({
            mode: "relay",
            api: "https://api.example",
            tenantId: "acme-1"
          })
        // The later mode wins: a builder switched from relay to direct has no relay fields left.
        const switched = SyncConfig.builder("acme-1", "https://api.example", "tok", "/p/services").direct(
          "http://h:2",
          "t2"
        )
        expect(switched.build().apiUrl).toBeUndefined()
        const schedule = Schedule.recurs(7)
        const withRetry = yield* resolve(
          SyncConfig.builder("/p/services").direct("http://h:1", "tok").withRetry(schedule).build()
        )
        expect(Either.isRight(withRetry) && withRetry.right.retry).toBe(schedule)
        // Without files or servers: a builder with no mode is a local-only config, and asking it for a client says what is missing.
        const local = yield* resolve(SyncConfig.builder("/p/services").build())
        expect(Either.isLeft(local) && local.left.key).toBe("AGENTSYNC_TOKEN")
      })
  )

  it.live(
    "reads the retry and timeout variables through Config: set ones override the defaults, malformed ones fail naming the variable",
    () =>
      Effect.gen(function* () {
        const withEnv = (env: Record<string, string>) =>
          Effect.either(optionsFromConfig(config({ directUrl: "http://h", token: Redacted.make("t") }))).pipe(
            Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))
          )
        const set = yield* withEnv({
          AGENTSYNC_RETRY_MAX: "7",
          AGENTSYNC_TIMEOUT_MS: "1500",
          AGENTSYNC_RETRY_CAP_MS: "",
          AGENTSYNC_COMPRESSION: "always"
        })
        expect(Either.isRight(set) && set.right.retry).toMatchObject({ maxRetries: 7, cap: "10 seconds" })
        expect(Either.isRight(set) && set.right.limits).toMatchObject({ exchangeMs: 1500, deadlineMs: 30 * 60_000 })
        // Read once, here: the upload compresses as the client says.
        expect(Either.isRight(set) && set.right.compress).toBe("always")
        for (const [name, value] of [
          ["AGENTSYNC_RETRY_MAX", "abc"],
          ["AGENTSYNC_RETRY_MAX", "1.5"],
          ["AGENTSYNC_RETRY_BASE_MS", "-5"],
          ["AGENTSYNC_TRANSFER_TIMEOUT_MS", "soon"],
          ["AGENTSYNC_MIN_RATE", "NaN"],
          ["AGENTSYNC_COMPRESSION", "fast"]
        ]) {
          const bad = yield* withEnv({ [name!]: value! })
          expect(Either.isLeft(bad) && bad.left.message).toMatch(
            new RegExp(`^missing configuration ${name}: must be a`)
          )
        }
      })
  )

  it.live("names what is missing: token, URL, tenant id; refuses odd URLs", () =>
    Effect.gen(function* () {
      const token = Redacted.make("t")
      const key = (c: SyncConfig) => Effect.map(resolve(c), (r) => (Either.isLeft(r) ? r.left.key : undefined))
      expect(yield* key(config({ directUrl: "http://h" }))).toBe("AGENTSYNC_TOKEN")
      expect(yield* key(config({ token }))).toBe("AGENTSYNC_DIRECT_URL")
      expect(yield* key(config({ apiUrl: "http://h", token }))).toBe("AGENTSYNC_TENANT_ID")
      expect(yield* key(config({ directUrl: "-oProxyCommand=x", token }))).toBe("AGENTSYNC_DIRECT_URL")
      expect(yield* key(config({ apiUrl: "http://h", tenantId: "../x", token }))).toBe("AGENTSYNC_TENANT_ID")
    })
  )
})
