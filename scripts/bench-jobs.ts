// Benchmark of scheduled jobs: `npm run bench:jobs`.
// 1. Next-fire computation in a zone with daylight-saving time, beside Effect's `Cron.next` on the same expression
//    (which does not keep an hourly job's pace through a repeated hour): the cost of getting the transitions right.
// 2. Claims on a real PostgreSQL 15: one claim and one finish of `job_runs` per fire, beside a bare
//    `INSERT … ON CONFLICT DO NOTHING` + `UPDATE` pair of the same rows through node-postgres.
// 3. The CLI: `jobs run --once` with nothing due, beside `agentsync --version`.
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { Cron, Effect, Either, Layer, Option, Redacted } from "effect"
import pg from "pg"
import { nextFire, parseCron } from "../src/domain/jobs/schedule.js"
import { JobStore } from "../src/services/jobs/JobStore.js"
import * as PgStore from "../src/services/jobs/pgStore.js"
import * as Database from "../src/services/ProjectDatabase.js"
// @ts-expect-error: a plain ES module without types
import { startPostgres } from "./pg.mjs"

const ms = (t0: number) => performance.now() - t0
const fmt = (n: number) => (n < 10 ? n.toFixed(2) : n.toFixed(0))

// 1. Next fires.
const FIRES = 20_000
const schedule = Either.getOrThrow(parseCron("*/15 * * * *", "Europe/Berlin"))
const from = Date.parse("2024-01-01T00:00:00Z")
let t = from
let t0 = performance.now()
for (let i = 0; i < FIRES; i++) t = nextFire(schedule, t)
const ours = ms(t0)
const effectCron = Cron.unsafeParse("*/15 * * * *", "Europe/Berlin")
let d = new Date(from)
t0 = performance.now()
for (let i = 0; i < FIRES; i++) d = Cron.next(effectCron, d)
const baseline = ms(t0)
console.log(
  `next fire, */15 in Europe/Berlin, ${FIRES.toLocaleString("en")} fires (${((t - from) / 86_400_000).toFixed(0)} days, two transitions):`
)
console.log(
  `  agentsync ${fmt((ours * 1000) / FIRES)} µs a fire   Cron.next ${fmt((baseline * 1000) / FIRES)} µs   ratio ${(ours / baseline).toFixed(1)}×`
)

// 2. Claims on PostgreSQL.
const CLAIMS = 2_000
const server = await startPostgres()
try {
  const admin = new pg.Client({ connectionString: server.url })
  await admin.connect()
  await admin.query("CREATE DATABASE bench_jobs")
  await admin.end()
  const url = server.url.replace(/\/postgres$/, "/bench_jobs")
  const layer = PgStore.layer.pipe(
    Layer.provide(Database.layerMigrated({ url: Option.some(Redacted.make(url)), dataDir: "" }))
  )
  const storeMs = await Effect.runPromise(
    Effect.gen(function* () {
      const store = yield* JobStore
      const start = performance.now()
      for (let i = 0; i < CLAIMS; i++) {
        const at = from + i * 1000
        yield* store.claim({
          job: "a",
          scheduledAt: at,
          trigger: "schedule",
          owner: "o",
          now: at,
          leaseUntil: at + 60_000
        })
        yield* store.finish("a", at, "o", { status: "succeeded", finishedAt: at + 10, durationMs: 10 })
      }
      return ms(start)
    }).pipe(Effect.provide(layer))
  )
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  t0 = performance.now()
  for (let i = 0; i < CLAIMS; i++) {
    const at = new Date(from + i * 1000)
    await client.query(
      "INSERT INTO job_runs (job, scheduled_at, trigger, status, owner, started_at, lease_until) VALUES ('b', $1, 'schedule', 'running', 'o', $1, $1) ON CONFLICT DO NOTHING",
      [at]
    )
    await client.query(
      "UPDATE job_runs SET status = 'succeeded', finished_at = $2 WHERE job = 'b' AND scheduled_at = $1 AND owner = 'o'",
      [at, at]
    )
  }
  const rawMs = ms(t0)
  await client.end()
  console.log(
    `claims on PostgreSQL 15, ${CLAIMS.toLocaleString("en")} fires (claim + finish, history pruned to 100 a job):`
  )
  console.log(
    `  agentsync ${fmt((storeMs * 1000) / CLAIMS)} µs a fire   bare INSERT + UPDATE ${fmt((rawMs * 1000) / CLAIMS)} µs   ratio ${(storeMs / rawMs).toFixed(1)}×`
  )
} finally {
  server.stop()
}

// 3. The CLI.
const bin = nodePath.join(import.meta.dirname, "..", "dist", "bin.js")
const project = fs.mkdtempSync(nodePath.join(os.tmpdir(), "agentsync-bench-jobs-"))
fs.writeFileSync(
  nodePath.join(project, "agentsync.yaml"),
  "jobs:\n  - name: yearly\n    run: db-push\n    cron: '0 0 1 1 *'\n"
)
const { DATABASE_URL: _, ...env } = process.env
const best = (args: Array<string>) => {
  let min = Number.POSITIVE_INFINITY
  for (let i = 0; i < 5; i++) {
    const s = performance.now()
    execFileSync(process.execPath, [bin, ...args], { cwd: project, env, stdio: "ignore" })
    min = Math.min(min, ms(s))
  }
  return min
}
best(["jobs", "run", "--once"]) // the code cache for this command
const once = best(["jobs", "run", "--once"])
const version = best(["--version"])
console.log(
  `jobs run --once, nothing due (best of 5): ${fmt(once)} ms   agentsync --version ${fmt(version)} ms   ratio ${(once / version).toFixed(2)}×`
)
fs.rmSync(project, { recursive: true, force: true })
