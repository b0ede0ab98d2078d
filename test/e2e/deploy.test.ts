// `agentsync deploy` as a user runs it: the built CLI with stub docker/hook programs on PATH (there is no container
// engine here) against `agentsync serve` on loopback over the real PostgreSQL, with a health server in the test.
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { agentsync, BIN, cleanEnv, ensureBuilt, startServe } from "../support/cli.js"
import { type Call, healthServer, makeProject, makeStubs, type Stubs, stubDigest } from "../support/deploy.js"
import { freshDatabase, query } from "../support/pg.js"

const PASSWORD = "s3cr3t-Pa$$w0rd_for/registry"
const REGISTRY = "registry.example.com/acme"
const FLY_TOKEN = "fly-token-0123456789abcdef"
const YAML = `tenant_id: ignored-in-direct-mode
deploy:
  app: web
  registry: ${REGISTRY}
  build:
    - [make, assets]
  health:
    path: /healthz
    timeout: 3s
`

let stubs: Stubs
let databaseUrl: string
let server: { url: string; child: ChildProcess }
let tenant: { tenant_id: string; token: string }
let other: { tenant_id: string; token: string }
let health: Awaited<ReturnType<typeof healthServer>>
const unhealthy = new Set<string>()
const temps: Array<string> = []

const lastHookImage = () =>
  stubs
    .calls()
    .filter((c) => c.name === "hook")
    .at(-1)?.args[0]

const project = (yaml = YAML, dockerfile = true) => {
  const root = makeProject(yaml, dockerfile)
  temps.push(root)
  return root
}

const cli = (root: string, args: ReadonlyArray<string>, env: Record<string, string | undefined> = {}) =>
  agentsync(args, {
    cwd: root,
    env: {
      PATH: `${stubs.bin}:${process.env.PATH}`,
      STUB_DIR: stubs.dir,
      AGENTSYNC_DIRECT_URL: server.url,
      AGENTSYNC_TOKEN: tenant.token,
      ...env
    }
  })

type ReleaseRow = {
  number: number
  status: string
  image: string
  digest: string
  kind: string
  rollback_of: number | null
  reactivated: number | null
}
/** The tenant's releases, newest first, read straight from the server's database. */
const releases = async (_root?: string) =>
  query<ReleaseRow>(
    databaseUrl,
    "SELECT number, status, image, digest, kind, rollback_of, reactivated FROM releases WHERE tenant_id = $1 ORDER BY number DESC",
    [tenant.tenant_id]
  )

/** Every place a secret must never be: argv and environment of every call, and everything the CLI printed. */
const expectNoSecret = (calls: ReadonlyArray<Call>, ...outputs: ReadonlyArray<string>) => {
  for (const c of calls) {
    expect(c.args.join(" ")).not.toContain(PASSWORD)
    expect(JSON.stringify(c.env)).not.toContain(PASSWORD)
    expect(JSON.stringify(c.env)).not.toContain(Buffer.from(`bot:${PASSWORD}`).toString("base64"))
  }
  for (const o of outputs) expect(o).not.toContain(PASSWORD)
}

beforeAll(async () => {
  ensureBuilt()
  stubs = makeStubs()
  health = await healthServer((path) => path.startsWith("/healthz") && unhealthy.has(lastHookImage() ?? ""))
  databaseUrl = await freshDatabase("e2edeploy")
  const admin = makeProject("")
  temps.push(admin)
  for (const name of ["Acme", "Globex"]) {
    const created = await agentsync(["--json", "tenant", "create", name], {
      cwd: admin,
      env: { DATABASE_URL: databaseUrl }
    })
    expect(created.code, created.stderr).toBe(0)
    if (name === "Acme") tenant = JSON.parse(created.stdout)
    else other = JSON.parse(created.stdout)
  }
  server = await startServe(
    {
      DATABASE_URL: databaseUrl,
      STUB_DIR: stubs.dir,
      AGENTSYNC_DEPLOY_HOOK: JSON.stringify([join(stubs.bin, "hook"), "{image}", "{release}", "{tenant}"]),
      AGENTSYNC_DEPLOY_HEALTH_URL: health.url,
      AGENTSYNC_REGISTRY_USERNAME: "bot",
      AGENTSYNC_REGISTRY_PASSWORD: PASSWORD,
      AGENTSYNC_DEPLOY_LEASE_SECONDS: "3",
      // The operator's own secret that the hook needs: redacted from its output.
      FLY_API_TOKEN: FLY_TOKEN,
      AGENTSYNC_DEPLOY_REDACT: "FLY_API_TOKEN"
    },
    admin
  )
}, 60_000)

afterAll(async () => {
  server?.child.kill()
  await health?.close()
  stubs?.remove()
  for (const t of temps) rmSync(t, { recursive: true, force: true })
})

describe("agentsync deploy with stub docker", () => {
  it("--dry-run prints every command, secrets masked, and runs none", async () => {
    stubs.reset()
    const root = project()
    // No server is called, so neither a token nor a URL is needed.
    const r = await cli(root, ["--json", "deploy", "--dry-run", "--tag", "v1"], {
      AGENTSYNC_TOKEN: undefined,
      AGENTSYNC_DIRECT_URL: undefined
    })
    expect(r.code, r.stderr).toBe(0)
    const report = JSON.parse(r.stdout)
    expect(report.steps.map((s: { step: string; command: string }) => `${s.step}: ${s.command}`)).toEqual([
      "build 1/1: make assets",
      `image: docker build -f ${join(root, "Dockerfile")} -t ${REGISTRY}/web:v1 ${root}`,
      "login: docker login registry.example.com -u '<registry user>' --password-stdin",
      `push: docker push ${REGISTRY}/web:v1`,
      `release: POST …/deploy {image: ${REGISTRY}/web@<digest from the push>}`
    ])
    expect(stubs.calls()).toEqual([])
    expect(await releases(root)).toEqual([])
  })

  it("builds, logs in with the secret on stdin only, pushes, releases by digest and verifies, in that order", async () => {
    stubs.reset()
    const root = project()
    const r = await cli(root, ["--json", "deploy", "--tag", "v1", "--message", "first"])
    expect(r.code, r.stderr).toBe(0)
    const calls = stubs.calls()
    const image = `${REGISTRY}/web:v1`
    const digest = stubDigest(image)
    expect(calls.map((c) => [c.name, ...c.args])).toEqual([
      ["make", "assets"],
      ["docker", "build", "-f", join(root, "Dockerfile"), "-t", image, root],
      ["docker", "login", "registry.example.com", "-u", "bot", "--password-stdin"],
      ["docker", "push", image],
      ["hook", `${REGISTRY}/web@${digest}`, "1", tenant.tenant_id]
    ])
    const [make, build, login, push, hook] = calls as [Call, Call, Call, Call, Call]
    expect(login.stdin).toBe(PASSWORD)
    for (const c of [make, build, push, hook]) expect(c.stdin).toBe("")
    // One temporary DOCKER_CONFIG for login and push, gone afterwards; the build runs with the user's own.
    expect(login.env.DOCKER_CONFIG).toBeDefined()
    expect(push.env.DOCKER_CONFIG).toBe(login.env.DOCKER_CONFIG)
    expect(build.env.DOCKER_CONFIG).toBeUndefined()
    expect(existsSync(login.env.DOCKER_CONFIG!)).toBe(false)
    expect(make.cwd).toBe(root)
    expectNoSecret(calls, r.stdout, r.stderr)
    // Output streamed to stderr as the steps ran; one JSON document on stdout.
    expect(r.stderr).toMatch(
      /==> build 1\/1: make assets[\s\S]*==> image: docker build[\s\S]*Successfully built[\s\S]*==> push[\s\S]*==> verify: release 1[\s\S]*hook: ok/
    )
    const report = JSON.parse(r.stdout)
    expect(report.digest).toBe(digest)
    expect(report.release).toMatchObject({
      number: 1,
      status: "active",
      image: `${REGISTRY}/web@${digest}`,
      tag: "v1",
      who: "admin",
      message: "first"
    })
    const rows = await query<{ status: string; log: string }>(
      databaseUrl,
      "SELECT status, log FROM releases ORDER BY number"
    )
    expect(rows).toHaveLength(1)
    expect(rows[0]!.log).toContain(`health: 200 from GET ${health.url}/healthz`)
    expect(rows[0]!.log).not.toContain(PASSWORD)
    const lock = await cli(root, ["--json", "deploy", "lock", "status"])
    expect(JSON.parse(lock.stdout)).toEqual({ held: false, lock: null })
    const listed = await cli(root, ["--json", "deploy", "releases"])
    expect(JSON.parse(listed.stdout)).toMatchObject([{ number: 1, kind: "deploy", status: "active", digest }])
  })

  it("an interrupted deploy stops its step, removes its temporary DOCKER_CONFIG and frees the lock at once", async () => {
    const root = project()
    stubs.reset()
    stubs.sleepOn("push", 30)
    const before = await releases()
    const child = spawn(process.execPath, [BIN, "deploy", "--tag", "interrupted"], {
      cwd: root,
      env: cleanEnv({
        PATH: `${stubs.bin}:${process.env.PATH}`,
        STUB_DIR: stubs.dir,
        AGENTSYNC_DIRECT_URL: server.url,
        AGENTSYNC_TOKEN: tenant.token
      }),
      stdio: "ignore"
    })
    try {
      const deadline = Date.now() + 20_000
      while (!stubs.calls().some((c) => c.args[0] === "push") && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100))
      const push = stubs.calls().find((c) => c.args[0] === "push")!
      expect(existsSync(push.env.DOCKER_CONFIG!)).toBe(true)
      const closed = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)))
      child.kill("SIGINT")
      // The exit code of an interrupt is the process-wide signal handling's (130); here: what the deploy cleans up.
      await closed
      expect(existsSync(push.env.DOCKER_CONFIG!)).toBe(false)
      const lock = await cli(root, ["--json", "deploy", "lock", "status"])
      expect(JSON.parse(lock.stdout).held).toBe(false)
      expect(await releases()).toEqual(before)
    } finally {
      stubs.sleepOn(undefined)
      child.kill("SIGKILL")
    }
  }, 60_000)

  it("stops at the first failing step with the masked command, exit code and stderr tail, and records no release", async () => {
    const root = project()
    for (const [sub, code] of [
      ["push", 1],
      ["login", 1],
      ["build", 2]
    ] as const) {
      stubs.reset()
      stubs.failOn(sub, code)
      const before = await releases(root)
      const r = await cli(root, ["deploy", "--tag", `fail-${sub}`])
      stubs.failOn(undefined)
      expect(r.code).toBe(1)
      const step = sub === "build" ? "image" : sub
      expect(r.stderr).toContain(`error: ${step}: docker ${sub}`)
      expect(r.stderr).toContain(`exited with ${code}:`)
      expect(r.stderr).toContain("error: told to fail with")
      const names = stubs.calls().map((c) => `${c.name} ${c.args[0]}`)
      expect(names.at(-1)).toBe(`docker ${sub}`)
      expect(names).not.toContain("hook registry.example.com")
      expect(await releases(root)).toEqual(before)
      expectNoSecret(stubs.calls(), r.stdout, r.stderr)
      for (const c of stubs.calls())
        if (c.env.DOCKER_CONFIG !== undefined) expect(existsSync(c.env.DOCKER_CONFIG)).toBe(false)
    }
    const lock = await cli(root, ["--json", "deploy", "lock", "status"])
    expect(JSON.parse(lock.stdout).held).toBe(false)
  })

  it("a failed hook fails the release and re-activates the previous one, which stays active", async () => {
    const root = project()
    const [active] = await releases(root)
    stubs.reset()
    stubs.failOn("hook", 7, stubDigest(`${REGISTRY}/web:v2-broken-hook`).slice(7))
    const r = await cli(root, ["deploy", "--tag", "v2-broken-hook"])
    stubs.failOn(undefined)
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(
      new RegExp(`release \\d+ failed: the release hook exited with 7; release ${active!.number} was re-activated`)
    )
    const hooks = stubs.calls().filter((c) => c.name === "hook")
    // The broken release's hook, then the previous release's hook again.
    expect(hooks.map((c) => c.args[0])).toEqual([
      `${REGISTRY}/web@${stubDigest(`${REGISTRY}/web:v2-broken-hook`)}`,
      active!.image
    ])
    const [failed, ...rest] = await releases(root)
    expect(failed).toMatchObject({ status: "failed", reactivated: active!.number })
    expect(rest.find((x) => x.status === "active")?.number).toBe(active!.number)
  })

  it("a health check that never answers 2xx fails the release in its timeout and re-activates the previous one", async () => {
    const root = project()
    const image = `${REGISTRY}/web:v3-unhealthy`
    unhealthy.add(`${REGISTRY}/web@${stubDigest(image)}`)
    const before = (await releases(root)).find((x) => x.status === "active")!
    const started = Date.now()
    const r = await cli(root, ["deploy", "--tag", "v3-unhealthy"])
    expect(r.code).toBe(1)
    expect(Date.now() - started).toBeLessThan(30_000)
    expect(r.stderr).toContain(`health check GET ${health.url}/healthz gave no 2xx within 3 s (last: HTTP 503)`)
    expect(r.stderr).toContain(`release ${before.number} was re-activated`)
    expect((await releases(root)).find((x) => x.status === "active")!.number).toBe(before.number)
    const status = await cli(root, ["--json", "deploy", "status", "--wait"])
    expect(status.code).toBe(1)
    expect(JSON.parse(status.stdout)).toMatchObject({ status: "failed", reactivated: before.number })
  })

  it("rolls back to the release before the active one as a new release, and warns what a rollback does not undo", async () => {
    const root = project()
    stubs.reset()
    const second = await cli(root, ["--json", "deploy", "--tag", "v4"])
    expect(second.code, second.stderr).toBe(0)
    const v4 = JSON.parse(second.stdout).release
    const first = (await releases(root)).find((x) => x.number === 1)!
    const r = await cli(root, ["--json", "deploy", "rollback"])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toContain("does not undo anything else a hook did (a database migration a hook ran stays applied)")
    const release = JSON.parse(r.stdout)
    expect(release).toMatchObject({
      kind: "rollback",
      rollback_of: 1,
      status: "active",
      image: first.image,
      digest: first.digest
    })
    expect(
      stubs
        .calls()
        .filter((c) => c.name === "hook")
        .at(-1)!.args[0]
    ).toBe(first.image)
    const list = await releases(root)
    expect(list.find((x) => x.number === v4.number)!.status).toBe("superseded")
    expect(list.filter((x) => x.status === "active").map((x) => x.number)).toEqual([release.number])
    // History is never edited: release 1 keeps its record.
    expect(list.find((x) => x.number === 1)).toMatchObject({ kind: "deploy", status: "superseded", image: first.image })
    // Rolling back to the active image, to a failed release, or to a release that does not exist is refused.
    const failed = list.find((x) => x.status === "failed")!
    const refused = await cli(root, ["deploy", "rollback", String(failed.number)])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toContain(`release ${failed.number} failed; roll back to a release that was active`)
    const missing = await cli(root, ["deploy", "rollback", "999"])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toContain("no release 999")
    expect((await releases(root)).length).toBe(list.length)
  })

  it("answers an unknown release id with 404 and a non-zero exit", async () => {
    const root = project()
    const r = await cli(root, ["deploy", "status", "4242"])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/API error 404 .*no release 4242/)
  })

  it("refuses a deploy while another holds the lock, and a killed client's lock expires by itself", async () => {
    const root = project()
    stubs.reset()
    stubs.sleepOn("build", 30)
    const holder = spawn(process.execPath, [BIN, "deploy", "--tag", "held", "--message", "long build"], {
      cwd: root,
      env: cleanEnv({
        PATH: `${stubs.bin}:${process.env.PATH}`,
        STUB_DIR: stubs.dir,
        AGENTSYNC_DIRECT_URL: server.url,
        AGENTSYNC_TOKEN: tenant.token
      }),
      stdio: "ignore"
    })
    try {
      const deadline = Date.now() + 20_000
      while (!stubs.calls().some((c) => c.args[0] === "build") && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100))
      const status = await cli(root, ["--json", "deploy", "lock", "status"])
      expect(JSON.parse(status.stdout)).toMatchObject({ held: true, lock: { message: "long build", who: "admin" } })
      const before = await releases(root)
      const refused = await cli(root, ["deploy", "--tag", "second"])
      expect(refused.code).toBe(1)
      expect(refused.stderr).toMatch(
        /the deploy lock is held by .* \(token admin\) \("long build"\) until .*agentsync deploy lock release/
      )
      expect(
        stubs
          .calls()
          .filter((c) => c.args[1] === "-f")
          .map((c) => c.args[4])
      ).toEqual([`${REGISTRY}/web:held`])
      // The holder dies without releasing: the lease (3 s on this server) runs out and the next deploy goes ahead.
      holder.kill("SIGKILL")
      stubs.sleepOn(undefined)
      // Nothing releases it: the lock status reads free once the lease has run out (polled, within a generous bound).
      const freeBy = Date.now() + 30_000
      while (JSON.parse((await cli(root, ["--json", "deploy", "lock", "status"])).stdout).held === true)
        if (Date.now() > freeBy) throw new Error("the killed client's lock did not expire")
      const next = await cli(root, ["--json", "deploy", "--tag", "after-kill"])
      expect(next.code, next.stderr).toBe(0)
      expect((await releases(root)).length).toBe(before.length + 1)
    } finally {
      holder.kill("SIGKILL")
      stubs.sleepOn(undefined)
    }
  }, 60_000)

  it("a forced release stops the deploy that held the lock", async () => {
    const root = project()
    stubs.reset()
    stubs.sleepOn("build", 30)
    const run = cli(root, ["deploy", "--tag", "forced"])
    try {
      const deadline = Date.now() + 20_000
      while (!stubs.calls().some((c) => c.args[0] === "build") && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100))
      const before = await releases(root)
      const forced = await cli(root, ["--json", "deploy", "lock", "release"])
      expect(forced.code, forced.stderr).toBe(0)
      expect(JSON.parse(forced.stdout).held).toBe(false)
      const r = await run
      expect(r.code).toBe(1)
      expect(r.stderr).toContain("lock expired or was released by force")
      expect(await releases(root)).toEqual(before)
    } finally {
      stubs.sleepOn(undefined)
      await run
    }
  }, 60_000)

  it("works through the cloud-relay URL family, and another tenant's token gets 403", async () => {
    const root = project()
    const relay = {
      AGENTSYNC_DIRECT_URL: undefined,
      AGENTSYNC_API_URL: server.url,
      AGENTSYNC_TENANT_ID: tenant.tenant_id
    }
    const list = await cli(root, ["--json", "deploy", "releases"], relay)
    expect(list.code, list.stderr).toBe(0)
    expect(JSON.parse(list.stdout).length).toBeGreaterThan(0)
    const r = await cli(root, ["--json", "deploy", "--tag", "relay"], relay)
    expect(r.code, r.stderr).toBe(0)
    const wrong = await cli(root, ["deploy", "releases"], { ...relay, AGENTSYNC_TOKEN: other.token })
    expect(wrong.code).toBe(1)
    expect(wrong.stderr).toContain("403")
    const own = await cli(root, ["--json", "deploy", "releases"], { AGENTSYNC_TOKEN: other.token })
    expect(JSON.parse(own.stdout)).toEqual([])
    const doc = (await fetch(`${server.url}/api/v1/openapi.json`).then((x) => x.json())) as {
      paths: Record<string, unknown>
    }
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        "/api/v1/sync/registry-token",
        "/api/v1/sync/deploy",
        "/api/v1/sync/deploy/lock",
        "/api/v1/sync/deploy/lock/{lockId}",
        "/api/v1/sync/releases",
        "/api/v1/sync/releases/{number}",
        "/api/v1/sync/releases/{number}/rollback",
        "/api/v1/cloud/tenants/{tenantId}/registry-token",
        "/api/v1/cloud/tenants/{tenantId}/releases/{number}/rollback"
      ])
    )
  })

  it("names agentsync.yaml and the line for a missing app, exit 1, or an unreadable deploy: block, exit 2, and runs nothing", async () => {
    // Every other problem of the block is checked in process (test/config.test.ts): here, that the binary exits
    // with the code of each kind and prints the message.
    stubs.reset()
    for (const [yaml, code, expected] of [
      ["deploy:\n  registry: r.example.com\n", 1, /agentsync\.yaml:2: deploy\.app: missing/],
      [
        "deploy:\n  app: web\n  registry: r.example.com\n  build: make\n",
        2,
        /agentsync\.yaml:4: deploy\.build: Expected ReadonlyArray/
      ]
    ] as const) {
      const r = await cli(project(yaml), ["deploy"])
      expect(r.code, yaml).toBe(code)
      expect(r.stderr, yaml).toMatch(expected)
    }
    expect(stubs.calls()).toEqual([])
    const usage = await cli(project(), ["deploy", "--skip-build"])
    expect(usage.code).toBe(1)
    expect(usage.stderr).toContain("--skip-build: pushes an image built before: name its tag with --tag")
  })

  it("never shows the registry password, even when a step or the hook prints it", async () => {
    const root = project()
    writeFileSync(join(stubs.dir, "leak"), "")
    stubs.reset()
    try {
      const r = await cli(root, ["--json", "deploy", "--tag", "leaky"])
      expect(r.code, r.stderr).toBe(0)
      expect(r.stderr).toContain("debug: credential bot:***")
      expect(r.stderr).toMatch(/"auth":"\*\*\*"/)
      expectNoSecret(stubs.calls(), r.stdout, r.stderr)
      const log = (await cli(root, ["--json", "deploy", "status"])).stdout
      expect(log).toContain("debug: FLY_API_TOKEN=***")
      expect(log).not.toContain(FLY_TOKEN)
      // The hook never sees the server's own secrets.
      const hook = stubs.calls().find((c) => c.name === "hook")!
      expect(hook.env.AGENTSYNC_REGISTRY_PASSWORD).toBeUndefined()
      expect(hook.env.DATABASE_URL).toBeUndefined()
      expect(hook.env.FLY_API_TOKEN).toBe(FLY_TOKEN)
      const rows = await query<{ log: string }>(databaseUrl, "SELECT log FROM releases")
      for (const row of rows) expect(row.log).not.toContain(PASSWORD)
    } finally {
      rmSync(join(stubs.dir, "leak"))
    }
  })
})
