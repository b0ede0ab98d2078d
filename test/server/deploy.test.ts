// The deploy API of the tenant server on loopback over the real PostgreSQL: the lock under contention, idempotent
// releases, a lock held by a running release, and a release abandoned by a server that stopped.
import { randomUUID } from "node:crypto"
import { Effect, Either, type Redacted } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { DeployRequest } from "../../src/api/deploy.js"
import { DeployApi, layer as deployLayer } from "../../src/services/DeployApi.js"
import { makeStubs, type Stubs } from "../support/deploy.js"
import { freshDatabase, query } from "../support/pg.js"
import { fastRetry, startServer } from "./support.js"

let stubs: Stubs
let dbUrl: string
let server: Awaited<ReturnType<typeof startServer>>
let acme: { tenantId: string; token: Redacted.Redacted<string> }

const api = <A, E>(f: (c: typeof DeployApi.Service) => Effect.Effect<A, E>) =>
  Effect.runPromise(
    Effect.either(
      Effect.flatMap(DeployApi, f).pipe(
        Effect.provide(
          deployLayer({ endpoint: { mode: "direct", origin: server.url }, token: acme.token, retry: fastRetry })
        )
      )
    )
  )
const ok = async <A, E>(f: (c: typeof DeployApi.Service) => Effect.Effect<A, E>) => {
  const r = await api(f)
  if (Either.isLeft(r)) throw new Error(String(r.left))
  return r.right
}

const DIGEST = `sha256:${"d".repeat(64)}`
const request = (lockId: string, image = `registry.example.com/web@${DIGEST}`): DeployRequest =>
  ({ image, tag: "v1", source_sha: null, dirty: null, lock_id: lockId, message: "", health: null }) as DeployRequest

const waitSettled = async (number: number) => {
  const deadline = Date.now() + 20_000
  for (;;) {
    const r = await ok((c) => c.release(number))
    if (!["pending", "hook", "checking"].includes(r.status) || Date.now() > deadline) return r
    await new Promise((res) => setTimeout(res, 100))
  }
}

beforeAll(async () => {
  stubs = makeStubs(["hook"])
  process.env.STUB_DIR = stubs.dir
  process.env.AGENTSYNC_DEPLOY_HOOK = JSON.stringify([`${stubs.bin}/hook`, "{image}", "{release}"])
  process.env.AGENTSYNC_DEPLOY_LEASE_SECONDS = "2"
  dbUrl = await freshDatabase("srvdeploy")
  server = await startServer(dbUrl)
  acme = await server.createTenant("Acme")
}, 60_000)

afterAll(async () => {
  await server?.stop()
  stubs?.remove()
})

describe("deploy lock and releases", () => {
  it("grants the lock to exactly one of many concurrent deploys", async () => {
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => api((c) => c.lock({ holder: `client ${i}`, message: "" })))
    )
    const granted = results.filter(Either.isRight)
    expect(granted).toHaveLength(1)
    for (const r of results.filter(Either.isLeft)) expect(r.left._tag).toBe("DeployLocked")
    const grant = granted[0]!.right
    const status = await ok((c) => c.lockStatus)
    expect(status.held).toBe(true)
    expect(status.lock?.holder).toBe(grant.lock.holder)
    await ok((c) => c.unlock(grant.id))
    expect((await ok((c) => c.lockStatus)).held).toBe(false)
    // A released lock's id is worth nothing: renewing it or releasing under it fails.
    const lost = await api((c) => c.heartbeat(grant.id))
    expect(Either.isLeft(lost) && lost.left._tag === "ApiError" && lost.left.status).toBe(409)
    const noRelease = await api((c) => c.deploy(request(grant.id), randomUUID()))
    expect(Either.isLeft(noRelease) && noRelease.left.message).toMatch(/does not hold the tenant's deploy lock/)
  })

  it("makes one release for a repeated idempotency key, and runs its hook once", async () => {
    stubs.reset()
    const grant = await ok((c) => c.lock({ holder: "idem", message: "" }))
    const key = randomUUID()
    // A retry racing its first attempt: both answer the one release.
    const [a, b] = await Promise.all([
      ok((c) => c.deploy(request(grant.id), key)),
      ok((c) => c.deploy(request(grant.id), key))
    ])
    expect(a.number).toBe(b.number)
    expect((await waitSettled(a.number)).status).toBe("active")
    expect(stubs.calls().filter((c) => c.name === "hook")).toHaveLength(1)
    const again = await ok((c) => c.deploy(request(grant.id), key))
    expect(again.number).toBe(a.number)
    await ok((c) => c.unlock(grant.id))
  })

  it("refuses a bad image, keeps a running release's lock held after its holder lets go, and refuses to force it", async () => {
    const grant = await ok((c) => c.lock({ holder: "running", message: "" }))
    const bad = await api((c) => c.deploy(request(grant.id, "registry.example.com/web:latest"), randomUUID()))
    expect(Either.isLeft(bad) && bad.left._tag).toBe("InvalidInput")
    stubs.sleepOn("hook", 4)
    const release = await ok((c) =>
      c.deploy(request(grant.id, `registry.example.com/web@sha256:${"e".repeat(64)}`), randomUUID())
    )
    await ok((c) => c.unlock(grant.id))
    const status = await ok((c) => c.lockStatus)
    expect(status).toMatchObject({ held: true, lock: { release: release.number } })
    const taken = await api((c) => c.lock({ holder: "second", message: "" }))
    expect(Either.isLeft(taken) && taken.left._tag).toBe("DeployLocked")
    const forced = await api((c) => c.forceUnlock)
    expect(Either.isLeft(forced) && forced.left._tag).toBe("DeployLocked")
    stubs.sleepOn(undefined)
    expect((await waitSettled(release.number)).status).toBe("active")
    expect((await ok((c) => c.lockStatus)).held).toBe(false)
  }, 30_000)

  it("marks a release abandoned by a stopped server failed when the next deploy takes the lock", async () => {
    const tenant = (await query<{ id: string }>(dbUrl, "SELECT id FROM tenants"))[0]!.id
    // A release some server started and then died with: still 'hook', its heartbeat long gone.
    await query(
      dbUrl,
      `INSERT INTO releases (id, tenant_id, number, kind, image, digest, status, who, heartbeat_at)
       VALUES ($1, $2, 999, 'deploy', 'registry.example.com/web@${DIGEST}', '${DIGEST}', 'hook', 'admin', now() - interval '1 hour')`,
      [randomUUID(), tenant]
    )
    const grant = await ok((c) => c.lock({ holder: "after crash", message: "" }))
    const abandoned = await ok((c) => c.release(999))
    expect(abandoned.status).toBe("failed")
    expect(abandoned.reason).toMatch(/abandoned/)
    await ok((c) => c.unlock(grant.id))
  })
})
