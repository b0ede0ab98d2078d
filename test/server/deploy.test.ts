// The deploy API of the tenant server on loopback over the real PostgreSQL: the lock under contention, idempotent
// releases, a lock held by a running release, and a release abandoned by a server that stopped.
import { randomUUID } from "node:crypto"
import { expect, layer } from "@effect/vitest"
import { Context, Effect, Either, Layer, type Redacted } from "effect"
import type { DeployRequest } from "../../src/api/deploy.js"
import { DeployApi, layer as deployLayer } from "../../src/services/DeployApi.js"
import { makeStubs } from "../support/deploy.js"
import { scopedDatabase, sqlRows } from "../support/pg.js"
import { fastRetry, scopedServer } from "./support.js"

/** Variables set for the file's server (its hook, the stubs' folder, a short lease), put back when it stops. */
const scopedEnv = (vars: Record<string, string>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]))
      Object.assign(process.env, vars)
      return saved
    }),
    (saved) =>
      Effect.sync(() => {
        for (const [k, v] of Object.entries(saved)) {
          if (v === undefined) delete process.env[k]
          else process.env[k] = v
        }
      })
  )

/** One server for the file, with a stub hook, over a fresh database, and its first tenant. */
class World extends Context.Tag("test/DeployWorld")<
  World,
  {
    readonly stubs: ReturnType<typeof makeStubs>
    readonly dbUrl: string
    readonly url: string
    readonly token: Redacted.Redacted<string>
  }
>() {}
const world = Layer.scoped(
  World,
  Effect.gen(function* () {
    const stubs = yield* Effect.acquireRelease(
      Effect.sync(() => makeStubs(["hook"])),
      (s) => Effect.sync(() => s.remove())
    )
    yield* scopedEnv({
      STUB_DIR: stubs.dir,
      AGENTSYNC_DEPLOY_HOOK: JSON.stringify([`${stubs.bin}/hook`, "{image}", "{release}"]),
      AGENTSYNC_DEPLOY_LEASE_SECONDS: "2"
    })
    const dbUrl = yield* scopedDatabase("srvdeploy")
    const server = yield* scopedServer(dbUrl)
    const acme = yield* server.createTenant("Acme")
    return { stubs, dbUrl, url: server.url, token: acme.token }
  })
)

const api = <A, E>(f: (c: typeof DeployApi.Service) => Effect.Effect<A, E>) =>
  Effect.flatMap(World, (w) =>
    Effect.either(
      Effect.flatMap(DeployApi, f).pipe(
        Effect.provide(deployLayer({ endpoint: { mode: "direct", origin: w.url }, token: w.token, retry: fastRetry }))
      )
    )
  )
const ok = <A, E>(f: (c: typeof DeployApi.Service) => Effect.Effect<A, E>) =>
  Effect.flatMap(api(f), (r) => (Either.isLeft(r) ? Effect.dieMessage(String(r.left)) : Effect.succeed(r.right)))

const DIGEST = `sha256:${"d".repeat(64)}`
const request = (lockId: string, image = `registry.example.com/web@${DIGEST}`): DeployRequest =>
  ({ image, tag: "v1", source_sha: null, dirty: null, lock_id: lockId, message: "", health: null }) as DeployRequest

const waitSettled = (number: number) =>
  Effect.gen(function* () {
    const deadline = Date.now() + 20_000
    for (;;) {
      const r = yield* ok((c) => c.release(number))
      if (!["pending", "hook", "checking"].includes(r.status) || Date.now() > deadline) return r
      yield* Effect.sleep("100 millis")
    }
  })

layer(world, { excludeTestServices: true })("deploy lock and releases", (it) => {
  it.effect("grants the lock to exactly one of many concurrent deploys", () =>
    Effect.gen(function* () {
      const results = yield* Effect.all(
        Array.from({ length: 8 }, (_, i) => api((c) => c.lock({ holder: `client ${i}`, message: "" }))),
        { concurrency: "unbounded" }
      )
      const granted = results.filter(Either.isRight)
      expect(granted).toHaveLength(1)
      for (const r of results.filter(Either.isLeft)) expect(r.left._tag).toBe("DeployLocked")
      const grant = granted[0]!.right
      const status = yield* ok((c) => c.lockStatus)
      expect(status.held).toBe(true)
      expect(status.lock?.holder).toBe(grant.lock.holder)
      yield* ok((c) => c.unlock(grant.id))
      expect((yield* ok((c) => c.lockStatus)).held).toBe(false)
      // A released lock's id is worth nothing: renewing it or releasing under it fails.
      const lost = yield* api((c) => c.heartbeat(grant.id))
      expect(Either.isLeft(lost) && lost.left._tag === "ApiError" && lost.left.status).toBe(409)
      const noRelease = yield* api((c) => c.deploy(request(grant.id), randomUUID()))
      expect(Either.isLeft(noRelease) && noRelease.left.message).toMatch(/does not hold the tenant's deploy lock/)
    })
  )

  it.effect("makes one release for a repeated idempotency key, and runs its hook once", () =>
    Effect.gen(function* () {
      const { stubs } = yield* World
      stubs.reset()
      const grant = yield* ok((c) => c.lock({ holder: "idem", message: "" }))
      const key = randomUUID()
      // A retry racing its first attempt: both answer the one release.
      const [a, b] = yield* Effect.all(
        [ok((c) => c.deploy(request(grant.id), key)), ok((c) => c.deploy(request(grant.id), key))],
        { concurrency: "unbounded" }
      )
      expect(a.number).toBe(b.number)
      expect((yield* waitSettled(a.number)).status).toBe("active")
      expect(stubs.calls().filter((c) => c.name === "hook")).toHaveLength(1)
      const again = yield* ok((c) => c.deploy(request(grant.id), key))
      expect(again.number).toBe(a.number)
      yield* ok((c) => c.unlock(grant.id))
    })
  )

  it.effect(
    "refuses a bad image, keeps a running release's lock held after its holder lets go, and refuses to force it",
    () =>
      Effect.gen(function* () {
        const { stubs } = yield* World
        const grant = yield* ok((c) => c.lock({ holder: "running", message: "" }))
        const bad = yield* api((c) => c.deploy(request(grant.id, "registry.example.com/web:latest"), randomUUID()))
        expect(Either.isLeft(bad) && bad.left._tag).toBe("InvalidInput")
        stubs.sleepOn("hook", 4)
        const release = yield* ok((c) =>
          c.deploy(request(grant.id, `registry.example.com/web@sha256:${"e".repeat(64)}`), randomUUID())
        )
        yield* ok((c) => c.unlock(grant.id))
        const status = yield* ok((c) => c.lockStatus)
        expect(status).toMatchObject({ held: true, lock: { release: release.number } })
        const taken = yield* api((c) => c.lock({ holder: "second", message: "" }))
        expect(Either.isLeft(taken) && taken.left._tag).toBe("DeployLocked")
        const forced = yield* api((c) => c.forceUnlock)
        expect(Either.isLeft(forced) && forced.left._tag).toBe("DeployLocked")
        stubs.sleepOn(undefined)
        expect((yield* waitSettled(release.number)).status).toBe("active")
        expect((yield* ok((c) => c.lockStatus)).held).toBe(false)
      }),
    30_000
  )

  it.effect("marks a release abandoned by a stopped server failed when the next deploy takes the lock", () =>
    Effect.gen(function* () {
      const { dbUrl } = yield* World
      const tenant = (yield* sqlRows<{ id: string }>(dbUrl, "SELECT id FROM tenants"))[0]!.id
      // A release some server started and then died with: still 'hook', its heartbeat long gone.
      yield* sqlRows(
        dbUrl,
        `INSERT INTO releases (id, tenant_id, number, kind, image, digest, status, who, heartbeat_at)
       VALUES ($1, $2, 999, 'deploy', 'registry.example.com/web@${DIGEST}', '${DIGEST}', 'hook', 'admin', now() - interval '1 hour')`,
        [randomUUID(), tenant]
      )
      const grant = yield* ok((c) => c.lock({ holder: "after crash", message: "" }))
      const abandoned = yield* ok((c) => c.release(999))
      expect(abandoned.status).toBe("failed")
      expect(abandoned.reason).toMatch(/abandoned/)
      yield* ok((c) => c.unlock(grant.id))
    })
  )
})
