// Job stores: the same claim rules in memory, in the state file and in Postgres; the run lock; replicas on one real database.
import { spawnSync } from "node:child_process"
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { hostname } from "node:os"
import { join } from "node:path"
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Either, Exit, Fiber, Layer, Option, Redacted, Ref, type Scope } from "effect"
import { EXPIRED_REASON, HISTORY_KEEP } from "../../../src/domain/jobs/runs.js"
import { timingOf } from "../../../src/domain/jobs/spec.js"
import * as Scheduler from "../../../src/programs/jobs/scheduler.js"
import { JobStore, type JobStoreShape, makeFile, makeMemory, statePaths } from "../../../src/services/jobs/JobStore.js"
import * as PgStore from "../../../src/services/jobs/pgStore.js"
import * as Database from "../../../src/services/ProjectDatabase.js"
import { freshDatabase, sqlRows } from "../../support/pg.js"
import { tempDirs } from "../../support/tree.js"

const tempDir = tempDirs("jobstore")
let url = ""
beforeAll(async () => {
  url = await freshDatabase("jobs")
})

const pgLayer = () =>
  PgStore.layer.pipe(
    Layer.provide(Database.layerMigrated({ url: Option.some(Redacted.make(url)), dataDir: "/nonexistent" }))
  )

/** Runs `f` on each kind of store (a fresh one each time); the Postgres one on the real database, its table emptied first. */
/**
 * An empty job table: emptied where an earlier test's layer made it (the first layer makes it). Forgetting its
 * migration would not do: a migrator runs no id below the highest it has applied.
 */
const emptyJobTable = Effect.suspend(() =>
  sqlRows(url, "DO $$ BEGIN IF to_regclass('job_runs') IS NOT NULL THEN TRUNCATE job_runs; END IF; END $$")
)

const kinds: ReadonlyArray<
  readonly [string, <A, E>(f: (store: JobStoreShape) => Effect.Effect<A, E, Scope.Scope>) => Effect.Effect<A, unknown>]
> = [
  ["memory", (f) => Effect.scoped(Effect.flatMap(makeMemory, f))],
  ["state file", (f) => Effect.suspend(() => Effect.scoped(f(makeFile(tempDir("file")))))],
  [
    "postgres",
    (f) => Effect.zipRight(emptyJobTable, Effect.scoped(Effect.flatMap(JobStore, f).pipe(Effect.provide(pgLayer()))))
  ]
]

const T0 = Date.parse("2024-01-01T00:00:00Z")
const req = (scheduledAt: number, owner: string, now = scheduledAt, lease = 60_000) =>
  ({ job: "j", scheduledAt, trigger: "schedule", owner, now, leaseUntil: now + lease }) as const
const done = (at: number) =>
  ({ status: "succeeded", finishedAt: at + 1_000, durationMs: 1_000, summary: "ok" }) as const

describe.each(kinds)("the %s store", (_, withStore) => {
  it.live("claims a fire once; a second claim names who has it", () =>
    Effect.gen(function* () {
      const r = yield* withStore((s) =>
        Effect.all([
          s.claim(req(T0, "a")),
          s.claim(req(T0, "b")),
          s.finish("j", T0, "a", done(T0)),
          s.claim(req(T0, "c"))
        ])
      )
      expect(r[0]).toEqual({ _tag: "Claimed" })
      expect(r[1]).toMatchObject({ _tag: "Taken", by: { owner: "a", status: "running" } })
      expect(r[2]).toBe(true)
      expect(r[3]).toMatchObject({ _tag: "Taken", by: { owner: "a", status: "succeeded" } })
    })
  )

  it.live(
    "one running run per job: another fire is busy while the lease holds, and expires it once the lease has passed",
    () =>
      Effect.gen(function* () {
        const r = yield* withStore((s) =>
          Effect.gen(function* () {
            const first = yield* s.claim(req(T0, "a", T0, 60_000))
            const busy = yield* s.claim(req(T0 + 30_000, "b"))
            const renewed = yield* s.heartbeat("j", T0, "a", T0 + 120_000)
            const stillBusy = yield* s.claim(req(T0 + 90_000, "b"))
            const claimed = yield* s.claim(req(T0 + 180_000, "b"))
            const late = yield* s.finish("j", T0, "a", done(T0 + 200_000))
            const heartbeatOfOther = yield* s.heartbeat("j", T0 + 180_000, "a", T0 + 400_000)
            const history = yield* s.history({ job: "j", limit: 10 })
            return { first, busy, renewed, stillBusy, claimed, late, heartbeatOfOther, history }
          })
        )
        expect(r.first._tag).toBe("Claimed")
        expect(r.busy).toMatchObject({ _tag: "Busy", by: { owner: "a" } })
        expect(r.renewed).toBe(true)
        expect(r.stillBusy._tag).toBe("Busy")
        expect(r.claimed._tag).toBe("Claimed")
        // The runner that lost its claim cannot record over the expiry, nor renew another owner's lease.
        expect(r.late).toBe(false)
        expect(r.heartbeatOfOther).toBe(false)
        expect(r.history.map((h) => [h.scheduled_at - T0, h.owner, h.status, h.error])).toEqual([
          [180_000, "b", "running", undefined],
          [0, "a", "expired", EXPIRED_REASON]
        ])
      })
  )

  it.live("knows each job's last fire, its newest run, and keeps the newest runs only", () =>
    Effect.gen(function* () {
      const r = yield* withStore((s) =>
        Effect.gen(function* () {
          for (let i = 0; i < HISTORY_KEEP + 5; i++) {
            const at = T0 + i * 60_000
            yield* s.claim(req(at, "a"))
            yield* s.finish("j", at, "a", {
              ...done(at),
              status: i % 2 === 0 ? "succeeded" : "failed",
              error: i % 2 === 0 ? undefined : "boom"
            })
          }
          yield* s.claim({ ...req(T0, "a"), job: "k" })
          return {
            last: yield* s.lastFire("j"),
            none: yield* s.lastFire("nope"),
            latest: yield* s.latestRuns(),
            all: yield* s.history({ job: "j", limit: 1_000 }),
            both: yield* s.history({ limit: 2 })
          }
        })
      )
      expect(r.last).toEqual(Option.some(T0 + (HISTORY_KEEP + 4) * 60_000))
      expect(r.none).toEqual(Option.none())
      expect([...r.latest.keys()].sort()).toEqual(["j", "k"])
      expect(r.latest.get("j")).toMatchObject({ status: "succeeded", summary: "ok", duration_ms: 1_000 })
      expect(r.all.length).toBe(HISTORY_KEEP)
      expect(r.all[1]).toMatchObject({ status: "failed", error: "boom" })
      expect(r.both.map((h) => h.job)).toEqual(["j", "j"])
    })
  )
})

describe("the state file and the run lock", () => {
  const holdRunner = (root: string) => Effect.scoped(Effect.flatMap(Effect.succeed(makeFile(root)), (s) => s.runner))

  it.live(
    "one scheduler at a time: a second is refused while the first holds the lock; a lock of a dead process is taken over",
    () =>
      Effect.gen(function* () {
        const root = tempDir("lock")
        const result = yield* Effect.scoped(
          Effect.gen(function* () {
            yield* makeFile(root).runner
            return yield* Effect.exit(holdRunner(root))
          })
        )
        expect(Exit.isFailure(result) && String(result.cause)).toContain("SyncInProgress")
        // Released with its scope.
        expect(existsSync(statePaths(root).lock)).toBe(false)
        // A lock left by a process that has exited.
        const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], {
          encoding: "utf8"
        }).stdout
        const host = hostname()
        writeFileSync(
          statePaths(root).lock,
          JSON.stringify({ pid: Number(dead), host, started: 1, token: "gone", what: "jobs run" })
        )
        yield* holdRunner(root)
      })
  )

  it.live(
    "a run left running by the last scheduler is expired when the next one takes the lock; the file is JSON",
    () =>
      Effect.gen(function* () {
        const root = tempDir("state")
        yield* makeFile(root).claim(req(T0, "gone"))
        yield* holdRunner(root)
        const state = JSON.parse(readFileSync(statePaths(root).state, "utf8"))
        expect(state).toMatchObject({
          version: 1,
          runs: [{ job: "j", scheduled_at: "2024-01-01T00:00:00.000Z", status: "expired", owner: "gone" }]
        })
      })
  )

  it.live("a state file that is not one is named, not overwritten", () =>
    Effect.gen(function* () {
      const root = tempDir("bad")
      yield* makeFile(root).claim(req(T0, "a"))
      writeFileSync(statePaths(root).state, "{ not json")
      const exit = yield* Effect.exit(makeFile(root).claim(req(T0 + 1, "a")))
      expect(Exit.isFailure(exit) && String(exit.cause)).toContain(join(".agentsync", "jobs.json"))
      expect(readFileSync(statePaths(root).state, "utf8")).toBe("{ not json")
    })
  )
})

describe("replicas on one real database", () => {
  it.live(
    "two schedulers against one Postgres run each fire exactly once, and lose none",
    () =>
      Effect.gen(function* () {
        yield* emptyJobTable
        const result = yield* Effect.gen(function* () {
          // Every run started, by fire, whichever scheduler started it; each run takes a while.
          const ran = yield* Ref.make<ReadonlyArray<string>>([])
          const started = (e: Scheduler.JobEvent) =>
            e.event === "run.start" ? Ref.update(ran, (l) => [...l, `${e["scheduled_at"]}`]) : Effect.void
          const job = {
            ...Either.getOrThrow(timingOf({ name: "tick", every: "1s" })),
            program: Effect.sleep("150 millis")
          }
          const scheduler = yield* Effect.provide(Scheduler.Scheduler, Scheduler.Scheduler.Default)
          const a = yield* Effect.fork(scheduler.run([job], { owner: "a", onEvent: started }))
          const b = yield* Effect.fork(scheduler.run([job], { owner: "b", onEvent: started }))
          yield* Effect.sleep("5500 millis")
          yield* Fiber.interrupt(a)
          yield* Fiber.interrupt(b)
          return yield* Ref.get(ran)
        }).pipe(Effect.provide(pgLayer()))
        const rows = yield* sqlRows<{ scheduled_at: Date; owner: string; status: string }>(
          url,
          "SELECT scheduled_at, owner, status FROM job_runs WHERE job = 'tick' ORDER BY scheduled_at"
        )
        // Exactly once: each fire started once between the two, and is one succeeded row.
        expect(new Set(result).size).toBe(result.length)
        expect(rows.map((r) => r.scheduled_at.toISOString().replace(".000Z", "Z")).sort()).toEqual([...result].sort())
        expect(rows.every((r) => r.status === "succeeded")).toBe(true)
        // None lost: consecutive seconds from the first to the last.
        const secs = rows.map((r) => r.scheduled_at.getTime() / 1000)
        expect(secs.length).toBeGreaterThanOrEqual(4)
        expect(secs.at(-1)! - secs[0]!).toBe(secs.length - 1)
      }),
    30_000
  )
})
