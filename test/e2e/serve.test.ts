// `agentsync serve` as an operator runs it: settings from the environment, named start-up errors, probes, the access
// log and a bounded graceful stop — the built CLI on loopback over the real PostgreSQL.
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { request } from "node:http"
import { createServer, type Server } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
// @ts-expect-error: a plain ES module of the test scripts, without declarations
import { startPostgres } from "../../scripts/pg.mjs"
import { EXPORT_VERSION } from "../../src/domain/db/tables.js"
import { agentsync, BIN, cleanEnv, ensureBuilt, REPO, start } from "../support/cli.js"
import { freshDatabase } from "../support/pg.js"

const temps: Array<string> = []
const children: Array<ChildProcess> = []
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "agentsync-e2e-serve-"))
  temps.push(d)
  return d
}

/** A running `agentsync serve` with its stderr so far, and a wait for a line matching a pattern. */
const serve = (args: ReadonlyArray<string>, env: Record<string, string>) => {
  const started = start(["serve", ...args], { cwd: tempDir(), env, limitMs: 120_000 })
  children.push(started.child)
  let stderr = ""
  const waiters: Array<() => void> = []
  started.child.stderr!.on("data", (d) => {
    stderr += d
    for (const w of waiters.splice(0)) w()
  })
  const waitFor = (pattern: RegExp) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const check = () => {
        const m = pattern.exec(stderr)
        if (m) return resolve(m)
        waiters.push(check)
      }
      started.done.then((r) => reject(new Error(`serve ended (${r.code}) before ${pattern}: ${r.stderr}`)))
      check()
    })
  const url = waitFor(/listening on (http:\/\/\S+)/).then((m) => m[1]!)
  return { ...started, url, waitFor, stderr: () => stderr }
}

const accessLines = (stderr: string) =>
  stderr
    .split("\n")
    .filter((l) => l.startsWith('{"log":"access"'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)

let databaseUrl: string
let tenant: { tenant_id: string; token: string }

beforeAll(async () => {
  ensureBuilt()
  databaseUrl = await freshDatabase("e2eserve")
  const created = await agentsync(["--json", "tenant", "create", "Acme"], {
    cwd: tempDir(),
    env: { DATABASE_URL: databaseUrl }
  })
  expect(created.code, created.stderr).toBe(0)
  tenant = JSON.parse(created.stdout)
}, 120_000)

afterAll(() => {
  for (const c of children) c.kill("SIGKILL")
  for (const d of temps) rmSync(d, { recursive: true, force: true })
})

describe("start-up", () => {
  it("a busy port: names the address and EADDRINUSE, exits 1, no stack trace", async () => {
    const holder: Server = createServer()
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve))
    const port = (holder.address() as { port: number }).port
    try {
      const r = await agentsync(["serve"], { cwd: tempDir(), env: { DATABASE_URL: databaseUrl, PORT: String(port) } })
      expect(r.code).toBe(1)
      expect(r.stderr).toContain(`cannot listen on 127.0.0.1:${port}`)
      expect(r.stderr).toContain("EADDRINUSE")
      expect(r.stderr).not.toMatch(/^\s+at /m)
      expect(r.stderr).not.toContain("unexpected error")
    } finally {
      holder.close()
    }
  })

  it("an address this machine does not have is named (EADDRNOTAVAIL), HOST read from the environment", async () => {
    const r = await agentsync(["serve", "--port", "0"], {
      cwd: tempDir(),
      env: { DATABASE_URL: databaseUrl, HOST: "192.0.2.1" }
    })
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/cannot listen on 192\.0\.2\.1:0: .*\(EADDRNOTAVAIL\)/)
    expect(r.stderr).not.toMatch(/^\s+at /m)
  })

  it("an unreachable database is named by host and port, never with its password, exit 1", async () => {
    const r = await agentsync(["serve", "--port", "0"], {
      cwd: tempDir(),
      env: { DATABASE_URL: "postgres://app:s3cret-pw@127.0.0.1:1/app" }
    })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain("cannot connect to PostgreSQL at 127.0.0.1:1")
    expect(r.stderr).not.toContain("s3cret-pw")
  })

  it("a bad PORT is a usage error naming the variable (exit 2)", async () => {
    const r = await agentsync(["serve"], { cwd: tempDir(), env: { DATABASE_URL: databaseUrl, PORT: "eighty" } })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain("PORT")
  })
})

describe("probes", () => {
  it("/readyz is 200 with the database up and 503 within seconds once it stops; /livez stays 200", async () => {
    const pg = await startPostgres()
    try {
      const s = serve(["--port", "0"], { DATABASE_URL: pg.url })
      const url = await s.url
      const ready = await fetch(`${url}/readyz`)
      expect(ready.status).toBe(200)
      expect(await ready.json()).toMatchObject({ reachable: true, migrations: { applied: expect.any(Number) } })
      const health = await fetch(`${url}/api/v1/health`).then((r) => r.json())
      expect(health).toMatchObject({ ok: true, database: { reachable: true } })

      pg.stop()
      const before = Date.now()
      const down = await fetch(`${url}/readyz`)
      expect(Date.now() - before).toBeLessThan(10_000)
      expect(down.status).toBe(503)
      const body = (await down.json()) as { reason: string; database: { reachable: boolean } }
      expect(body.database.reachable).toBe(false)
      expect(body.reason).toMatch(/database unreachable/)
      expect((await fetch(`${url}/api/v1/health`)).status).toBe(503)
      expect((await fetch(`${url}/livez`)).status).toBe(200)
    } finally {
      pg.stop()
    }
  }, 60_000)
})

describe("access log", () => {
  it("one JSON line per request on stderr: method, route, tenant, status, bytes, duration; never the token", async () => {
    const s = serve(["--port", "0"], { DATABASE_URL: databaseUrl })
    const url = await s.url
    const auth = { authorization: `Bearer ${tenant.token}` }
    const manifest = await fetch(`${url}/api/v1/sync/files/manifest`, { headers: auth })
    const manifestBytes = (await manifest.arrayBuffer()).byteLength
    await (await fetch(`${url}/api/v1/sync/files/manifest?revision=nope`, { headers: auth })).arrayBuffer()
    await (
      await fetch(`${url}/api/v1/sync/files/manifest`, { headers: { authorization: "Bearer ast_wrong" } })
    ).arrayBuffer()
    await (await fetch(`${url}/livez`)).arrayBuffer()
    await s.waitFor(/"route":"\/livez"/)
    const lines = accessLines(s.stderr())
    expect(lines).toHaveLength(4)
    expect(lines[0]).toMatchObject({
      method: "GET",
      route: "/api/v1/sync/files/manifest",
      tenant: tenant.tenant_id,
      status: 200,
      bytes: manifestBytes
    })
    expect(lines[0]!["duration_ms"]).toEqual(expect.any(Number))
    expect(lines[1]).toMatchObject({ tenant: tenant.tenant_id, status: 404 })
    expect(lines[2]).toMatchObject({ tenant: null, status: 401 })
    expect(lines[3]).toMatchObject({ route: "/livez", tenant: null, status: 200 })
    expect(s.stderr()).not.toContain(tenant.token.slice(4))
    expect(s.stderr()).not.toContain("ast_wrong")
    expect(s.stderr()).not.toContain("nope")
  }, 60_000)
})

describe("graceful stop", () => {
  /**
   * Starts an import whose body is held after its header line; `finish` sends the rest. `reached` resolves when
   * the server has the request (its `100 Continue` is sent as it starts handling it).
   */
  const slowImport = (url: string) => {
    const req = request(`${url}/api/v1/sync/database/import?dry_run=true`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${tenant.token}`,
        "content-type": "application/x-ndjson",
        expect: "100-continue"
      }
    })
    const reached = new Promise<void>((resolve) => req.on("continue", () => resolve()))
    const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
      req.on("response", (res) => {
        let body = ""
        res.on("data", (d) => {
          body += d
        })
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }))
        res.on("error", reject)
      })
      req.on("error", reject)
    })
    req.write(`${JSON.stringify({ kind: "header", version: EXPORT_VERSION, exported_at: new Date().toISOString() })}\n`)
    return { answer, reached, finish: () => req.end(`${JSON.stringify({ kind: "end", rows: 0 })}\n`) }
  }

  it("SIGTERM waits for the request in flight, which completes, says so, and exits 0", async () => {
    const s = serve(["--port", "0"], { DATABASE_URL: databaseUrl })
    const url = await s.url
    const inFlight = slowImport(url)
    await inFlight.reached
    s.child.kill("SIGTERM")
    await s.waitFor(/waiting up to 10s for 1 request\(s\) in flight/)
    inFlight.finish()
    const answer = await inFlight.answer
    expect(answer.status, answer.body).toBe(200)
    const r = await s.done
    expect(r.code).toBe(0)
    expect(r.stderr).toContain("stopped: every request finished")
  }, 60_000)

  it("a request still running after the bound is cut, and the stop says how many", async () => {
    const s = serve(["--port", "0", "--shutdown-timeout", "1"], { DATABASE_URL: databaseUrl })
    const url = await s.url
    const inFlight = slowImport(url)
    inFlight.answer.catch(() => {})
    await inFlight.reached
    s.child.kill("SIGTERM")
    const r = await s.done
    expect(r.code).toBe(0)
    expect(r.stderr).toMatch(/stopped: 1 request\(s\) cut after 1s/)
  }, 60_000)
})

describe("heap growth", () => {
  // V8's own trace of the factor each full collection sets the next limit with; a heap snapshot (asked for with a
  // signal) is a full collection at a moment the test chooses, after the server has started.
  it("`agentsync serve` runs its full collections with a growing factor of 4", async () => {
    const child = spawn(process.execPath, ["--trace-gc-verbose", "--heapsnapshot-signal=SIGUSR2", BIN, "serve"], {
      cwd: tempDir(),
      env: cleanEnv({ DATABASE_URL: databaseUrl, PORT: "0" }),
      stdio: ["ignore", "pipe", "pipe"]
    })
    children.push(child)
    let stdout = ""
    let stderr = ""
    const seen: Array<() => void> = []
    const wake = () => {
      for (const w of seen.splice(0)) w()
    }
    child.stdout!.on("data", (d) => {
      stdout += d
      wake()
    })
    child.stderr!.on("data", (d) => {
      stderr += d
      wake()
    })
    const ended = new Promise<never>((_, reject) =>
      child.on("close", (code) => reject(new Error(`serve ended (${code}): ${stderr}`)))
    )
    const until = (test: () => boolean) =>
      Promise.race([
        ended,
        new Promise<void>((resolve) => {
          const check = () => (test() ? resolve() : seen.push(check))
          check()
        })
      ])
    const limits = () => [...stdout.matchAll(/\[HeapController\] Limit: .*\((\d+\.\d+)\)\s*$/gm)].map((m) => m[1])
    await until(() => /listening on http:\/\//.test(stderr))
    const before = limits().length
    child.kill("SIGUSR2")
    await until(() => limits().length > before)
    child.kill("SIGKILL")
    expect(limits().slice(before)).toEqual(
      limits()
        .slice(before)
        .map(() => "4.0")
    )
  }, 60_000)

  // A V8 flag holds for the whole process: a program that embeds the library owns its process, and `listen` with it.
  it("is the command's alone: the built library never sets it", () => {
    const files = (dir: string): Array<string> =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)]
      )
    const flag = /heap[-_]growing[-_]percent/
    expect(readFileSync(join(REPO, "dist", "cli.cjs"), "utf8")).toMatch(flag)
    const library = files(join(REPO, "dist", "lib"))
    expect(library.length).toBeGreaterThan(0)
    expect(library.filter((f) => flag.test(readFileSync(f, "utf8")))).toEqual([])
  })
})
