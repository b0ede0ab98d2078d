// `agentsync jobs` as a user runs it: bad configuration refused at start, next fires listed, one-shot runs on a
// real PostgreSQL, and the scheduler process under SIGTERM and SIGKILL with `agentsync serve` on loopback.
import { type ChildProcess, spawn } from "node:child_process"
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { createServer, request } from "node:http"
import type { AddressInfo } from "node:net"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { EXPIRED_REASON } from "../../src/domain/jobs/runs.js"
import { agentsync, BIN, cleanEnv, ensureBuilt, REPO, startServe } from "../support/cli.js"
import { freshDatabase, query } from "../support/pg.js"
import { tempDirs } from "../support/tree.js"

const tempDir = tempDirs("e2e-jobs")
const children: Array<ChildProcess> = []
afterAll(() => {
  for (const c of children) c.kill("SIGKILL")
})

/** A project: the example's services/ and an agentsync.yaml with `yaml` (the example's own when left out). */
const project = (yaml?: string) => {
  const root = tempDir("p")
  cpSync(join(REPO, "examples/project"), root, { recursive: true, filter: (src) => !src.includes(".agentsync") })
  if (yaml !== undefined) writeFileSync(join(root, "agentsync.yaml"), yaml)
  return root
}

/** Polls `check` until it holds (a generous deadline: the machine may be loaded). */
const eventually = async (check: () => boolean, what: string, ms = 60_000) => {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

type Event = Record<string, unknown> & { readonly event: string }

/** A long-running `agentsync ARGS`: its JSON event lines on stderr, and its exit. */
const launch = (args: ReadonlyArray<string>, cwd: string, env: Record<string, string>) => {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd,
    env: cleanEnv(env),
    stdio: ["ignore", "ignore", "pipe"]
  })
  children.push(child)
  let stderr = ""
  child.stderr!.on("data", (d) => {
    stderr += d
  })
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal }))
  )
  const events = (): Array<Event> =>
    stderr
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Event)
  return {
    child,
    exit,
    events,
    stderr: () => stderr,
    until: (p: (e: Event) => boolean, what: string) => eventually(() => events().some(p), `${what} in:\n${stderr}`)
  }
}

/** An HTTP proxy to `target` that can hold requests (a push "under way") until released. */
const gatedProxy = async (target: string) => {
  let holding = false
  const held: Array<() => void> = []
  const server = createServer((req, res) => {
    const forward = () => {
      const up = request(`${target}${req.url}`, { method: req.method, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers)
        r.pipe(res)
      })
      up.on("error", () => res.destroy())
      req.pipe(up)
    }
    if (holding) held.push(forward)
    else forward()
  })
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  afterAll(() => server.close())
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hold: () => {
      holding = true
    },
    held: () => held.length,
    release: () => {
      holding = false
      for (const f of held.splice(0)) f()
    }
  }
}

let serverDb = ""
let proxy: Awaited<ReturnType<typeof gatedProxy>>
let token = ""

beforeAll(async () => {
  ensureBuilt()
  serverDb = await freshDatabase("e2ejobsserver")
  const admin = tempDir("admin")
  const created = await agentsync(["--json", "tenant", "create", "Acme"], {
    cwd: admin,
    env: { DATABASE_URL: serverDb }
  })
  expect(created.code, created.stderr).toBe(0)
  token = JSON.parse(created.stdout).token
  const server = await startServe({ DATABASE_URL: serverDb }, admin)
  children.push(server.child)
  proxy = await gatedProxy(server.url)
}, 120_000)

const job = (fields: string) => `jobs:\n  - name: push\n    run: files-push\n${fields}`

describe("bad configuration: one clear error at start naming agentsync.yaml:LINE, exit 2, nothing run", () => {
  const cases: ReadonlyArray<readonly [string, string, string]> = [
    [
      "an invalid cron expression",
      job("    cron: '61 * * * *'\n"),
      ':4: jobs.0.cron: invalid cron expression "61 * * * *": Expected a value between 0 and 59'
    ],
    [
      "an unknown time zone",
      job("    cron: '0 3 * * *'\n    tz: Europe/Berln\n"),
      ':5: jobs.0.tz: unknown time zone "Europe/Berln"'
    ],
    [
      "a cron expression that never fires",
      job("    cron: '0 0 31 2 *'\n"),
      ':4: jobs.0.cron: cron expression "0 0 31 2 *" never fires'
    ],
    [
      "an unknown run",
      "jobs:\n  - name: x\n    run: content-sync\n    every: 15m\n",
      ':3: jobs.0.run: Expected "local-sync" | "access-sync"'
    ],
    [
      "an option the program does not take",
      job("    every: 15m\n    options:\n      delete: true\n      kinds: [content]\n"),
      ':7: jobs.0.options.kinds: is unexpected, expected: "delete" | "force"'
    ],
    [
      "options for a program that takes none",
      "jobs:\n  - name: x\n    run: db-push\n    every: 1h\n    options: { dry_run: true }\n",
      ":5: jobs.0.options.dry_run: db-push takes no options"
    ],
    [
      "a bad option value",
      "jobs:\n  - name: x\n    run: local-sync\n    every: 1h\n    options:\n      direction: sideways\n",
      ":6: jobs.0.options.direction: expected one of to_db, to_disk"
    ],
    [
      "both cron and every",
      job("    cron: '* * * * *'\n    every: 1m\n"),
      ":5: jobs.0.every: give exactly one of cron or every"
    ],
    [
      "a timeout longer than a timer can wait",
      job("    every: 1d\n    timeout: 30d\n"),
      ':5: jobs.0.timeout: at most 24d, got "30d"'
    ],
    [
      "two jobs of one name",
      `${job("    every: 1h\n")}  - name: push\n    run: files-pull\n    every: 1h\n`,
      ':5: jobs.1.name: another job is already named "push"'
    ]
  ]
  it("each malformed entry is refused with the line of the field at fault", async () => {
    await Promise.all(
      cases.map(async ([what, yaml, message], i) => {
        const root = project(yaml)
        const r = await agentsync(i === 0 ? ["jobs", "list"] : ["jobs", "run"], { cwd: root })
        expect(r.code, `${what}: ${r.stderr}`).toBe(2)
        expect(r.stderr, what).toContain(`${join(root, "agentsync.yaml")}${message}`)
        expect(r.stderr.trim().split("\n").length, what).toBe(1)
        expect(existsSync(join(root, ".agentsync")), what).toBe(false)
      })
    )
  })

  it("--job naming no job, --job without --once, and a file without jobs are usage errors", async () => {
    const root = project()
    const unknown = await agentsync(["jobs", "run", "--once", "--job", "nightly"], { cwd: root })
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain('--job: no job named "nightly"')
    expect(unknown.stderr).toContain("its jobs are content_sync, access_control_sync, nightly_push")
    expect((await agentsync(["jobs", "run", "--job", "content_sync"], { cwd: root })).code).toBe(2)
    const lease = await agentsync(["jobs", "run", "--once"], { cwd: root, env: { AGENTSYNC_JOBS_LEASE: "soon" } })
    expect(lease.code).toBe(2)
    expect(lease.stderr).toContain("AGENTSYNC_JOBS_LEASE")
    const none = project("services: services\n")
    const empty = await agentsync(["jobs", "run"], { cwd: none })
    expect(empty.code).toBe(2)
    expect(empty.stderr).toContain("no jobs in")
    expect(existsSync(join(root, ".agentsync"))).toBe(false)
  })

  it("jobs list and jobs history with no jobs configured list nothing, say how to add one, and exit 0", async () => {
    const none = project("services: services\n")
    const file = join(none, "agentsync.yaml")
    const text = await agentsync(["jobs", "list"], { cwd: none })
    expect([text.code, text.stderr]).toEqual([0, ""])
    expect(text.stdout.trim()).toBe(`no jobs in ${file}: add a jobs: list (see README, "Scheduled jobs")`)
    // The --json document keeps its shape, empty.
    const json = await agentsync(["--json", "jobs", "list"], { cwd: none })
    expect(json.code, json.stderr).toBe(0)
    expect(JSON.parse(json.stdout)).toEqual({ jobs: [] })
    const history = await agentsync(["jobs", "history"], { cwd: none })
    expect(history.code, history.stderr).toBe(0)
    expect(history.stdout).toContain(`no runs: no jobs in ${file}: add a jobs: list`)
    const historyJson = await agentsync(["--json", "jobs", "history"], { cwd: none })
    expect(historyJson.code, historyJson.stderr).toBe(0)
    expect(JSON.parse(historyJson.stdout)).toEqual({ runs: [] })
    expect(existsSync(join(none, ".agentsync"))).toBe(false)
  })

  it("serve --jobs with a bad jobs list never starts listening", async () => {
    const root = project(job("    cron: '0 25 * * *'\n"))
    const r = await agentsync(["serve", "--port", "0", "--jobs"], { cwd: root, env: { DATABASE_URL: serverDb } })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(":4: jobs.0.cron:")
    expect(r.stderr).not.toContain("listening")
  })
})

describe("jobs list, jobs run --once, jobs history", () => {
  it("lists the example project's jobs with their next fires", async () => {
    const root = project()
    const before = Date.now()
    const r = await agentsync(["--json", "jobs", "list"], { cwd: root })
    expect(r.code, r.stderr).toBe(0)
    const jobs = JSON.parse(r.stdout).jobs as Array<Record<string, unknown>>
    expect(jobs.map((j) => [j["name"], j["run"], j["schedule"], j["tz"], j["last"]])).toEqual([
      ["content_sync", "local-sync", "cron */15 * * * *", "UTC", null],
      ["access_control_sync", "access-sync", "every 1h", "UTC", null],
      ["nightly_push", "files-push", "cron 30 2 * * *", "Europe/Berlin", null]
    ])
    const quarter = Date.parse(jobs[0]!["next"] as string)
    expect(quarter % 900_000).toBe(0)
    expect(quarter).toBeGreaterThan(before - 1000)
    expect(quarter - before).toBeLessThanOrEqual(900_000)
    expect(Date.parse(jobs[1]!["next"] as string) % 3_600_000).toBe(0)
    expect(jobs[2]!["next"]).toBeNull()
    const text = await agentsync(["jobs", "list"], { cwd: root })
    expect(text.stdout).toMatch(/^NAME +RUN +SCHEDULE +TZ +NEXT +LAST +RESULT/)
    expect(text.stdout).toMatch(/nightly_push +files-push +cron 30 2 \* \* \* +Europe\/Berlin +disabled +never/)
  })

  it("with DATABASE_URL: --once --job runs one job now, --once runs what is due, history and list show the runs", async () => {
    const root = project()
    const env = { DATABASE_URL: await freshDatabase("e2ejobsonce") }
    const named = await agentsync(["--json", "jobs", "run", "--once", "--job", "access_control_sync"], {
      cwd: root,
      env
    })
    expect(named.code, named.stderr).toBe(0)
    expect(JSON.parse(named.stdout).runs).toEqual([
      expect.objectContaining({ job: "access_control_sync", result: "ran", trigger: "manual", status: "succeeded" })
    ])
    // As many content items as the example holds: what the diff says the database lacks, less files beside items.
    const diff = await agentsync(["--json", "local", "diff", "--kind", "content"], { cwd: root, env })
    const changes: ReadonlyArray<{ key: string; status: string }> = JSON.parse(diff.stdout).kinds[0].changes
    const items = changes.filter((c) => c.status === "Added" && !c.key.startsWith("file:")).length
    expect(items).toBeGreaterThan(0)
    const pass = await agentsync(["--json", "jobs", "run", "--once"], { cwd: root, env })
    expect(pass.code, pass.stderr).toBe(0)
    expect(
      JSON.parse(pass.stdout).runs.map((r: Record<string, unknown>) => [r["job"], r["result"], r["status"]])
    ).toEqual([
      ["content_sync", "ran", "succeeded"],
      ["access_control_sync", "not-due", undefined],
      ["nightly_push", "disabled", undefined]
    ])
    const rows = await query(env.DATABASE_URL, "SELECT job, trigger, status FROM job_runs ORDER BY job")
    expect(rows).toEqual([
      { job: "access_control_sync", trigger: "manual", status: "succeeded" },
      { job: "content_sync", trigger: expect.stringMatching(/^(schedule|catch-up)$/), status: "succeeded" }
    ])
    const contents = await query<{ n: string }>(env.DATABASE_URL, "SELECT count(*) AS n FROM contents")
    expect(Number(contents[0]!.n)).toBe(items)
    const history = JSON.parse(
      (await agentsync(["--json", "jobs", "history", "--job", "content_sync"], { cwd: root, env })).stdout
    ).runs
    expect(history).toEqual([
      expect.objectContaining({
        job: "content_sync",
        status: "succeeded",
        summary: `content: ${changes.length} synced, 0 deleted`
      })
    ])
    const list = JSON.parse((await agentsync(["--json", "jobs", "list"], { cwd: root, env })).stdout).jobs
    expect(list[1].last).toMatchObject({ job: "access_control_sync", trigger: "manual", status: "succeeded" })
  })
})

describe("the scheduler process", () => {
  it("jobs run under SIGTERM lets the running job finish, records it, and exits 0", async () => {
    const root = project(job("    every: 1s\n"))
    proxy.hold()
    const p = launch(["jobs", "run"], root, { AGENTSYNC_DIRECT_URL: proxy.url, AGENTSYNC_TOKEN: token })
    await p.until((e) => e.event === "run.start", "the first run")
    await eventually(() => proxy.held() > 0, "the push to reach the server")
    p.child.kill("SIGTERM")
    await p.until((e) => e.event === "scheduler.stopping", "the stop")
    // The push is still held at the proxy: the scheduler waits for it rather than exiting.
    expect(p.child.exitCode).toBeNull()
    expect(p.events().find((e) => e.event === "scheduler.stopping")?.["running"]).toEqual([
      expect.objectContaining({ job: "push" })
    ])
    proxy.release()
    expect(await p.exit).toEqual({ code: 0, signal: null })
    const events = p.events().map((e) => [e.event, e["status"]])
    expect(events.slice(-3)).toEqual([
      ["scheduler.stopping", undefined],
      ["run.end", "succeeded"],
      ["scheduler.stop", undefined]
    ])
    expect(events.filter(([e]) => e === "run.start").length).toBe(1)
    const state = JSON.parse(readFileSync(join(root, ".agentsync/jobs.json"), "utf8"))
    expect(state.runs).toEqual([expect.objectContaining({ job: "push", status: "succeeded" })])
    expect(existsSync(join(root, ".agentsync/jobs.lock"))).toBe(false)
    // The push it finished reached the server: nothing left to send.
    const diff = await agentsync(["--json", "files", "diff"], {
      cwd: root,
      env: { AGENTSYNC_DIRECT_URL: proxy.url, AGENTSYNC_TOKEN: token }
    })
    expect(JSON.parse(diff.stdout).counts).toMatchObject({ added: 0, modified: 0, removed: 0 })
  })

  it("a second scheduler on the same machine is refused while the first runs", async () => {
    const root = project(job("    every: 1h\n"))
    const first = launch(["jobs", "run"], root, { AGENTSYNC_DIRECT_URL: proxy.url, AGENTSYNC_TOKEN: token })
    await first.until((e) => e.event === "scheduler.start", "the first scheduler")
    const second = await agentsync(["jobs", "run", "--once"], { cwd: root })
    expect(second.code).toBe(1)
    expect(second.stderr).toContain(join(".agentsync", "jobs.lock"))
    first.child.kill("SIGINT")
    expect((await first.exit).code).toBe(0)
  })

  it("with Postgres: a runner killed mid-run leaves a claim that expires, and the next fire runs on another runner", async () => {
    const root = project(job("    every: 1s\n"))
    const db = await freshDatabase("e2ejobskill")
    const env = {
      DATABASE_URL: db,
      AGENTSYNC_JOBS_LEASE: "2s",
      AGENTSYNC_DIRECT_URL: proxy.url,
      AGENTSYNC_TOKEN: token
    }
    proxy.hold()
    const a = launch(["jobs", "run"], root, env)
    await a.until((e) => e.event === "run.start", "the first run")
    await eventually(() => proxy.held() > 0, "the push to reach the server")
    a.child.kill("SIGKILL")
    await a.exit
    const owner = a.events().find((e) => e.event === "run.start")?.["owner"]
    expect(await query(db, "SELECT owner, status FROM job_runs")).toEqual([{ owner, status: "running" }])
    proxy.release()

    const b = launch(["jobs", "run"], root, env)
    await b.until((e) => e.event === "run.end" && e["status"] === "succeeded", "a run on the second runner")
    b.child.kill("SIGTERM")
    expect((await b.exit).code).toBe(0)
    const rows = await query<{ owner: string; status: string; error: string | null }>(
      db,
      "SELECT owner, status, error FROM job_runs ORDER BY scheduled_at"
    )
    expect(rows[0]).toEqual({ owner, status: "expired", error: EXPIRED_REASON })
    expect(rows.slice(1).every((r) => r.owner !== owner && r.status === "succeeded")).toBe(true)
    expect(rows.length).toBeGreaterThan(1)
  })
})

describe("serve --jobs", () => {
  it("the server runs the jobs too, claimed in its database", async () => {
    const root = project(job("    every: 1s\n"))
    const db = await freshDatabase("e2ejobsserve")
    mkdirSync(join(root, "data"))
    const s = launch(["serve", "--port", "0", "--jobs", "--data", "data"], root, {
      DATABASE_URL: db,
      AGENTSYNC_DIRECT_URL: proxy.url,
      AGENTSYNC_TOKEN: token
    })
    await s.until((e) => e.event === "run.end", "a run in the server")
    s.child.kill("SIGTERM")
    await s.exit
    expect(s.stderr()).toContain("listening on")
    const rows = await query<{ job: string; status: string }>(db, "SELECT job, status FROM job_runs")
    expect(rows.length).toBeGreaterThan(0)
    expect(rows.every((r) => r.job === "push" && r.status === "succeeded")).toBe(true)
  })
})
