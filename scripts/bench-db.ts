// Benchmark of database sync: 10,000 users and 100,000 contexts between two real PostgreSQL databases, beside
// `pg_dump --data-only | psql` of the same tables; push, pull, a no-change rerun, and peak memory at 10k and 100k rows.
import { execFileSync, spawnSync } from "node:child_process"
import { join } from "node:path"
import { Reactivity } from "@effect/experimental"
import { PgClient } from "@effect/sql-pg"
import { Effect, Option, Redacted } from "effect"
import { Database } from "../src/services/ProjectDatabase.js"
import { diffSources, sqlSource } from "../src/stages/db/export.js"
import { importSource } from "../src/stages/db/import.js"
import { query } from "../test/support/pg.js"
import { seedVolume } from "../test/support/syncDb.js"
// @ts-expect-error: a plain ES module without types
import { startPostgres } from "./pg.mjs"

const USERS = 10_000
const CONTEXTS = 100_000

const exec = query

const createDb = async (admin: string, name: string) => {
  await exec(admin, `CREATE DATABASE ${name}`)
  const u = new URL(admin)
  u.pathname = `/${name}`
  const url = u.toString()
  await Effect.runPromise(
    Database.runProjectMigrations().pipe(
      Effect.provide(Database.layer({ url: Option.some(Redacted.make(url)), dataDir: "" })),
      Effect.scoped
    )
  )
  return url
}

/** The volume rows the tests use too, then fresh planner statistics. */
const seed = async (url: string, users: number, contexts: number) => {
  await seedVolume(url, users, contexts / users)
  await exec(url, "ANALYZE")
}

/** One import in this process: `--child FROM TO`; prints its time and counts as JSON. */
const child = async (from: string, to: string) => {
  const baseRssMb = process.memoryUsage().rss / 1024 / 1024
  const gc = (globalThis as { gc?: () => void }).gc
  gc?.()
  const baseLive = process.memoryUsage()
  const baseHeapMb = (baseLive.heapUsed + baseLive.arrayBuffers) / 1024 / 1024
  // Live memory, sampled: RSS also counts buffers that are garbage the collector has not reclaimed yet.
  let peakLiveMb = 0
  const sampler = setInterval(
    () => {
      // Under --expose-gc (the memory runs) garbage is collected first, so the sample is what is really held.
      gc?.()
      const m = process.memoryUsage()
      peakLiveMb = Math.max(peakLiveMb, (m.heapUsed + m.arrayBuffers) / 1024 / 1024)
    },
    gc === undefined ? 10 : 50
  )
  const started = performance.now()
  const report = await Effect.runPromise(
    Effect.gen(function* () {
      const src = yield* PgClient.make({ url: Redacted.make(from) })
      const dst = yield* PgClient.make({ url: Redacted.make(to) })
      return yield* importSource({ sql: dst }, sqlSource({ sql: src }), { dryRun: false })
    }).pipe(Effect.scoped, Effect.provide(Reactivity.layer))
  )
  const ms = performance.now() - started
  clearInterval(sampler)
  const rows = report.tables.reduce((n, t) => n + t.total, 0)
  const written = report.tables.reduce((n, t) => n + t.inserted + t.updated, 0)
  console.log(
    JSON.stringify({
      ms,
      rows,
      written,
      baseRssMb,
      maxRssMb: process.resourceUsage().maxRSS / 1024,
      liveAboveStartMb: peakLiveMb - baseHeapMb
    })
  )
}

interface ChildResult {
  readonly ms: number
  readonly rows: number
  readonly written: number
  readonly baseRssMb: number
  readonly maxRssMb: number
  readonly liveAboveStartMb: number
}
/** A diff of the two databases in this process: `--diff LEFT RIGHT`; prints its time. */
const diffChild = async (left: string, right: string) => {
  const started = performance.now()
  const tables = await Effect.runPromise(
    Effect.gen(function* () {
      const l = yield* PgClient.make({ url: Redacted.make(left) })
      const r = yield* PgClient.make({ url: Redacted.make(right) })
      return yield* diffSources(sqlSource({ sql: l }), sqlSource({ sql: r }))
    }).pipe(Effect.scoped, Effect.provide(Reactivity.layer))
  )
  console.log(JSON.stringify({ ms: performance.now() - started, equal: tables.reduce((n, t) => n + t.equal, 0) }))
}

const runDiff = (left: string, right: string): { ms: number; equal: number } => {
  const out = execFileSync(
    process.execPath,
    ["--import", "tsx", new URL(import.meta.url).pathname, "--diff", left, right],
    {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"]
    }
  )
  return JSON.parse(out.trim().split("\n").pop()!)
}

const runChild = (from: string, to: string, exposeGc = false): ChildResult => {
  const flags = exposeGc ? ["--expose-gc"] : []
  const out = execFileSync(
    process.execPath,
    [...flags, "--import", "tsx", new URL(import.meta.url).pathname, "--child", from, to],
    {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"]
    }
  )
  return JSON.parse(out.trim().split("\n").pop()!)
}

const main = async () => {
  const server = await startPostgres()
  try {
    const admin: string = server.url
    const [local, cloud, baseline, pulled, small, smallCloud, memSmall, memLarge] = await Promise.all(
      [
        "bench_local",
        "bench_cloud",
        "bench_baseline",
        "bench_pulled",
        "bench_small",
        "bench_small_cloud",
        "bench_mem_small",
        "bench_mem_large"
      ].map((n) => createDb(admin, n))
    )
    await seed(local!, USERS, CONTEXTS)
    await seed(small!, USERS / 10, CONTEXTS / 10)
    const tables = ["users", "skills", "user_contexts"].flatMap((t) => ["-t", t])
    // The baseline twice into emptied tables, keeping the faster run: the same machine may be busy.
    const dumpOnce = async () => {
      await exec(baseline!, "TRUNCATE users, skills, user_contexts CASCADE")
      await exec(admin, "CHECKPOINT")
      const t0 = performance.now()
      const dump = spawnSync(
        "sh",
        [
          "-c",
          `"${join(server.bin, "pg_dump")}" --data-only ${tables.join(" ")} "${local}" | "${join(server.bin, "psql")}" -q -v ON_ERROR_STOP=1 "${baseline}"`
        ],
        { encoding: "utf8" }
      )
      if (dump.status !== 0) throw new Error(`pg_dump | psql failed: ${dump.stderr}`)
      return performance.now() - t0
    }
    const baselineMs = Math.min(await dumpOnce(), await dumpOnce())
    // Each timed import also runs twice into emptied tables, after a checkpoint, keeping the faster run.
    const twice = async (from: string, to: string) => {
      const once = async () => {
        await exec(to, "TRUNCATE users, skills, user_contexts CASCADE")
        await exec(admin, "CHECKPOINT")
        return runChild(from, to)
      }
      const a = await once()
      const b = await once()
      return a.ms <= b.ms ? a : b
    }
    const push = await twice(local!, cloud!)
    const rerunA = runChild(local!, cloud!)
    const rerunB = runChild(local!, cloud!)
    const rerun = rerunA.ms <= rerunB.ms ? rerunA : rerunB
    const pull = await twice(cloud!, pulled!)
    const diff = runDiff(local!, cloud!)
    const smallPush = runChild(small!, smallCloud!)
    const liveSmall = runChild(small!, memSmall!, true)
    const liveLarge = runChild(local!, memLarge!, true)
    const [counts] = await exec(
      pulled!,
      "SELECT (SELECT count(*) FROM users)::int AS users, (SELECT count(*) FROM user_contexts)::int AS contexts"
    )
    const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`
    const lines = [
      `database sync benchmark: ${USERS.toLocaleString("en")} users + ${CONTEXTS.toLocaleString("en")} contexts, two databases on one PostgreSQL ${server.bin.split("/").at(-2)}`,
      `  pg_dump --data-only | psql  ${fmt(baselineMs)}`,
      `  push (empty cloud)          ${fmt(push.ms)}  ${(push.ms / baselineMs).toFixed(2)}x baseline  (${push.written} rows written)`,
      `  pull (empty local)          ${fmt(pull.ms)}  ${(pull.ms / baselineMs).toFixed(2)}x baseline  (${pull.written} rows written; local now ${counts!.users} users, ${counts!.contexts} contexts)`,
      `  db diff (no change)         ${fmt(diff.ms)}  (${diff.equal} rows equal)`,
      `  no-change rerun             ${fmt(rerun.ms)}  ${(rerun.ms / push.ms).toFixed(2)}x the first push  (${rerun.written} rows written)`,
      ...[
        [smallPush, liveSmall],
        [push, liveLarge]
      ].map(
        ([r, live]) =>
          `  peak memory, push of ${r!.rows.toLocaleString("en").padStart(7)} rows: RSS ${r!.maxRssMb.toFixed(0)} MB (${(r!.maxRssMb - r!.baseRssMb).toFixed(0)} MB above the process at start); live heap + buffers ${live!.liveAboveStartMb.toFixed(0)} MB above start (sampled after a forced GC)`
      )
    ]
    console.log(lines.join("\n"))
  } finally {
    server.stop()
  }
}

if (process.argv[2] === "--child") await child(process.argv[3]!, process.argv[4]!)
else if (process.argv[2] === "--diff") await diffChild(process.argv[3]!, process.argv[4]!)
else await main()
