// The scheduler under the test clock: fire times (daylight-saving time included), overlap, failures, catch-up, shutdown, replicas.
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Clock, Deferred, Effect, Either, Fiber, Ref, TestClock } from "effect"
import { formatInstant } from "../../../src/domain/jobs/schedule.js"
import { timingOf } from "../../../src/domain/jobs/spec.js"
import * as Scheduler from "../../../src/programs/jobs/scheduler.js"
import { JobStore, type JobStoreShape, makeMemory } from "../../../src/services/jobs/JobStore.js"

type Spec = Parameters<typeof timingOf>[0]

const job = <R>(
  spec: Omit<Spec, "name"> & { readonly name?: string },
  program: Effect.Effect<unknown, unknown, R>
): Scheduler.ScheduledJob<R> => ({
  ...Either.getOrThrow(timingOf({ name: "j", ...spec })),
  program
})

const utc = (hhmm: string, day = "2024-01-01") => Date.parse(`${day}T${hhmm}:00Z`)
/** The scheduler service on the JobStore in context. */
const scheduler = Effect.provide(Scheduler.Scheduler, Scheduler.Scheduler.Default)

const iso = (ms: number) => new Date(ms).toISOString().replace(".000Z", "Z")

/** A scheduler on `store`, forked, with its events collected; the test clock set to `start` first. */
const start = <R>(
  start: number,
  jobs: ReadonlyArray<Scheduler.ScheduledJob<R>>,
  store: JobStoreShape,
  options: Scheduler.SchedulerOptions = {}
) =>
  Effect.gen(function* () {
    yield* TestClock.setTime(start)
    const events = yield* Ref.make<ReadonlyArray<Scheduler.JobEvent>>([])
    const fiber = yield* Effect.flatMap(scheduler, (s) =>
      s.run(jobs, {
        owner: "a",
        ...options,
        onEvent: (e) => Ref.update(events, (l) => [...l, e])
      })
    ).pipe(
      Effect.provideService(JobStore, store),
      // A daemon: a failed assertion must end the test, not wait for a run on a test clock that no longer moves.
      Effect.forkDaemon
    )
    yield* Effect.yieldNow()
    return {
      fiber,
      events: Ref.get(events),
      of: (name: string) => Effect.map(Ref.get(events), (l) => l.filter((e) => e.event === name)),
      /** Stops the scheduler, letting the test clock run on so that a run going on can finish. */
      stop: Effect.gen(function* () {
        const stopper = yield* Effect.fork(Fiber.interrupt(fiber))
        yield* TestClock.adjust("1 day")
        yield* Fiber.join(stopper)
      })
    }
  })

/** A program that records when it ran (test-clock time). */
const recorder = Effect.map(Ref.make<ReadonlyArray<number>>([]), (ref) => ({
  program: Effect.flatMap(Clock.currentTimeMillis, (t) => Ref.update(ref, (l) => [...l, t])),
  times: Effect.map(Ref.get(ref), (l) => l.map(iso))
}))

describe("fire times", () => {
  it.effect("fires at the times of its schedule, computed from the last fire", () =>
    Effect.gen(function* () {
      const store = yield* makeMemory
      const r = yield* recorder
      const s = yield* start(utc("00:05"), [job({ cron: "*/15 * * * *" }, r.program)], store)
      yield* TestClock.adjust("1 hour")
      expect(yield* r.times).toEqual([
        "2024-01-01T00:15:00Z",
        "2024-01-01T00:30:00Z",
        "2024-01-01T00:45:00Z",
        "2024-01-01T01:00:00Z"
      ])
      const ends = yield* s.of("run.end")
      expect(ends.map((e) => [e["status"], e["trigger"], e["next"]])).toContainEqual([
        "succeeded",
        "schedule",
        "2024-01-01T01:15:00Z"
      ])
      yield* s.stop
    })
  )

  it.effect("Europe/Berlin: a daily 02:30 runs once in the spring gap (at 03:30) and once in the autumn overlap", () =>
    Effect.gen(function* () {
      const store = yield* makeMemory
      const r = yield* recorder
      const daily = job({ cron: "30 2 * * *", tz: "Europe/Berlin" }, r.program)
      const s = yield* start(utc("12:00", "2024-03-29"), [daily], store)
      yield* TestClock.adjust("3 days")
      expect(yield* r.times).toEqual(["2024-03-30T01:30:00Z", "2024-03-31T01:30:00Z", "2024-04-01T00:30:00Z"])
      yield* s.stop
      const t = yield* start(utc("12:00", "2024-10-25"), [daily], yield* makeMemory)
      yield* TestClock.adjust("3 days")
      expect((yield* r.times).slice(3)).toEqual([
        "2024-10-26T00:30:00Z",
        "2024-10-27T00:30:00Z",
        "2024-10-28T01:30:00Z"
      ])
      yield* t.stop
    })
  )

  it.effect("America/New_York: an hourly job keeps its pace through both changes of the clocks", () =>
    Effect.gen(function* () {
      const store = yield* makeMemory
      const r = yield* recorder
      const hourly = job({ cron: "0 * * * *", tz: "America/New_York" }, r.program)
      const s = yield* start(utc("05:30", "2024-03-10"), [hourly], store)
      yield* TestClock.adjust("3 hours")
      // 01:00 EST, 03:00 EDT (02:00 does not exist), 04:00 EDT: one hour apart in real time.
      expect(yield* r.times).toEqual(["2024-03-10T06:00:00Z", "2024-03-10T07:00:00Z", "2024-03-10T08:00:00Z"])
      yield* s.stop
      const t = yield* start(utc("04:30", "2024-11-03"), [hourly], yield* makeMemory)
      yield* TestClock.adjust("3 hours")
      // 01:00 EDT, 01:00 EST, 02:00 EST.
      expect((yield* r.times).slice(3)).toEqual([
        "2024-11-03T05:00:00Z",
        "2024-11-03T06:00:00Z",
        "2024-11-03T07:00:00Z"
      ])
      yield* t.stop
    })
  )
})

describe("long waits", () => {
  it.effect(
    "sleeps at most an hour at a time: a timer of more than 2^31 ms (a monthly job's wait) would never fire",
    () =>
      Effect.gen(function* () {
        const store = yield* makeMemory
        const s = yield* start(utc("00:30", "2024-01-02"), [job({ cron: "0 0 1 * *" }, Effect.void)], store)
        let sleeps: ReadonlyArray<number> = []
        for (let i = 0; i < 1000 && sleeps.length === 0; i++) {
          yield* Effect.yieldNow()
          sleeps = Chunk.toReadonlyArray(yield* TestClock.sleeps())
        }
        expect(sleeps.length).toBeGreaterThan(0)
        expect(Math.max(...sleeps)).toBeLessThanOrEqual(utc("01:30", "2024-01-02"))
        const scheduled = yield* s.of("job.scheduled")
        expect(scheduled[0]?.["next"]).toBe("2024-02-01T00:00:00Z")
        yield* s.stop
      })
  )
})

/** A program that takes `minutes` of test-clock time and records the most runs ever going at once. */
const slow = (minutes: number) =>
  Effect.map(Effect.all([Ref.make(0), Ref.make(0), Ref.make<ReadonlyArray<string>>([])]), ([now, most, starts]) => ({
    program: Effect.acquireUseRelease(
      Effect.zipRight(
        Effect.flatMap(Clock.currentTimeMillis, (t) => Ref.update(starts, (l) => [...l, iso(t)])),
        Effect.flatMap(
          Ref.updateAndGet(now, (n) => n + 1),
          (n) => Ref.update(most, (m) => Math.max(m, n))
        )
      ),
      () => Effect.sleep(`${minutes} minutes`),
      () => Ref.update(now, (n) => n - 1)
    ),
    most: Ref.get(most),
    starts: Ref.get(starts)
  }))

describe("overlap", () => {
  it.effect("skip: a run longer than the interval is never overlapped; the fires it covered are dropped", () =>
    Effect.gen(function* () {
      const store = yield* makeMemory
      const p = yield* slow(25)
      const s = yield* start(utc("00:00") + 30_000, [job({ every: "10m" }, p.program)], store)
      yield* TestClock.adjust("1 hour")
      expect(yield* p.starts).toEqual(["2024-01-01T00:10:00Z", "2024-01-01T00:40:00Z"])
      expect(yield* p.most).toBe(1)
      const skipped = yield* s.of("fire.skipped")
      expect(skipped[0]).toMatchObject({ scheduled_at: "2024-01-01T00:30:00Z", missed_since: "2024-01-01T00:20:00Z" })
      yield* s.stop
    })
  )

  it.effect("queue-one: the latest fire that came during a run runs once, right after it", () =>
    Effect.gen(function* () {
      const store = yield* makeMemory
      const p = yield* slow(25)
      const s = yield* start(utc("00:00") + 30_000, [job({ every: "10m", overlap: "queue-one" }, p.program)], store)
      yield* TestClock.adjust("1 hour")
      expect(yield* p.starts).toEqual(["2024-01-01T00:10:00Z", "2024-01-01T00:35:00Z", "2024-01-01T01:00:00Z"])
      expect(yield* p.most).toBe(1)
      const starts = yield* s.of("run.start")
      expect(starts.map((e) => [e["scheduled_at"], e["trigger"]])).toEqual([
        ["2024-01-01T00:10:00Z", "schedule"],
        ["2024-01-01T00:30:00Z", "queued"],
        ["2024-01-01T01:00:00Z", "queued"]
      ])
      yield* s.stop
    })
  )
})

describe("failures", () => {
  it.effect("a failed run is logged with its error and the job runs again at its next fire", () =>
    Effect.gen(function* () {
      const store = yield* makeMemory
      const calls = yield* Ref.make(0)
      const flaky = Effect.flatMap(
        Ref.updateAndGet(calls, (n) => n + 1),
        (n) => (n === 1 ? Effect.fail(new Error("the database went away")) : Effect.succeed("3 synced"))
      )
      const s = yield* start(utc("00:05"), [job({ every: "15m" }, flaky)], store)
      yield* TestClock.adjust("30 minutes")
      const ends = yield* s.of("run.end")
      expect(ends.map((e) => [e["scheduled_at"], e["level"], e["status"], e["error"] ?? e["summary"]])).toEqual([
        ["2024-01-01T00:15:00Z", "error", "failed", "the database went away"],
        ["2024-01-01T00:30:00Z", "info", "succeeded", "3 synced"]
      ])
      const history = yield* store.history({ limit: 10 })
      expect(history.map((r) => r.status)).toEqual(["succeeded", "failed"])
      yield* s.stop
    })
  )

  it.effect("a run past its timeout is interrupted and recorded as timed out; a defect is a failure, not a crash", () =>
    Effect.gen(function* () {
      const store = yield* makeMemory
      const s = yield* start(
        utc("00:05"),
        [
          job({ name: "long", every: "1h", timeout: "10m" }, Effect.sleep("1 day")),
          job({ name: "bug", every: "1h" }, Effect.die(new Error("oops")))
        ],
        store
      )
      yield* TestClock.adjust("2 hours")
      const ends = yield* s.of("run.end")
      expect(ends.map((e) => [e["job"], e["status"], e["error"]]).sort()).toEqual([
        ["bug", "failed", "defect: oops"],
        ["long", "timed_out", "did not finish within 10m; interrupted"]
      ])
      yield* s.stop
    })
  )
})

/** A store holding one finished run of job `j` at `at`. */
const storeWithRun = (at: number) =>
  Effect.gen(function* () {
    const store = yield* makeMemory
    yield* store.claim({
      job: "j",
      scheduledAt: at,
      trigger: "schedule",
      owner: "old",
      now: at,
      leaseUntil: at + 60_000
    })
    yield* store.finish("j", at, "old", { status: "succeeded", finishedAt: at + 1000, durationMs: 1000 })
    return store
  })

describe("catch-up after downtime", () => {
  it.effect("catch_up latest: the fires missed while down run once, as the latest, then the schedule goes on", () =>
    Effect.gen(function* () {
      const store = yield* storeWithRun(utc("00:00"))
      const r = yield* recorder
      const s = yield* start(utc("05:20"), [job({ cron: "0 * * * *" }, r.program)], store)
      yield* TestClock.adjust("50 minutes")
      expect(yield* r.times).toEqual(["2024-01-01T05:20:00Z", "2024-01-01T06:00:00Z"])
      const starts = yield* s.of("run.start")
      expect(starts.map((e) => [e["scheduled_at"], e["trigger"]])).toEqual([
        ["2024-01-01T05:00:00Z", "catch-up"],
        ["2024-01-01T06:00:00Z", "schedule"]
      ])
      yield* s.stop
    })
  )

  it.effect("catch_up none, or a miss older than the window: nothing runs until the next fire", () =>
    Effect.gen(function* () {
      for (const spec of [{ catch_up: "none" as const }, { catch_up_window: "10m" }]) {
        const store = yield* storeWithRun(utc("00:00"))
        const r = yield* recorder
        const s = yield* start(utc("05:20"), [job({ cron: "0 * * * *", ...spec }, r.program)], store)
        yield* TestClock.adjust("50 minutes")
        expect(yield* r.times).toEqual(["2024-01-01T06:00:00Z"])
        expect((yield* s.of("fire.skipped"))[0]).toMatchObject({
          scheduled_at: "2024-01-01T05:00:00Z",
          missed_since: "2024-01-01T01:00:00Z"
        })
        yield* s.stop
      }
    })
  )

  it.effect("a job never run before starts at its next fire", () =>
    Effect.gen(function* () {
      const store = yield* makeMemory
      const r = yield* recorder
      const s = yield* start(utc("05:20"), [job({ cron: "0 * * * *" }, r.program)], store)
      yield* TestClock.adjust("50 minutes")
      expect(yield* r.times).toEqual(["2024-01-01T06:00:00Z"])
      yield* s.stop
    })
  )
})

describe("shutdown", () => {
  it.effect("interrupting the scheduler lets the running job finish and records it, then nothing more runs", () =>
    Effect.gen(function* () {
      const store = yield* makeMemory
      const p = yield* slow(10)
      const s = yield* start(utc("00:05"), [job({ every: "15m" }, p.program)], store)
      yield* TestClock.adjust("10 minutes") // 00:15: the run started, it ends at 00:25
      const stopper = yield* Effect.fork(Fiber.interrupt(s.fiber))
      yield* Effect.yieldNow()
      expect(stopper.unsafePoll()).toBeNull()
      yield* TestClock.adjust("10 minutes")
      yield* Fiber.join(stopper)
      const events = (yield* s.events).map((e) => e.event)
      expect(events.slice(-3)).toEqual(["scheduler.stopping", "run.end", "scheduler.stop"])
      expect((yield* s.of("scheduler.stopping"))[0]?.["running"]).toEqual([
        { job: "j", scheduled_at: "2024-01-01T00:15:00Z", timeout: "1h" }
      ])
      expect((yield* store.history({ limit: 5 })).map((r) => [iso(r.scheduled_at), r.status])).toEqual([
        ["2024-01-01T00:15:00Z", "succeeded"]
      ])
      yield* TestClock.adjust("2 hours")
      expect(yield* p.starts).toEqual(["2024-01-01T00:15:00Z"])
    })
  )

  it.effect("a stop during a claim runs the fire it claimed: the claim is not left running", () =>
    Effect.gen(function* () {
      const memory = yield* makeMemory
      // The claim is recorded, then its answer is slow to come back: the stop arrives in between.
      const answered = yield* Deferred.make<void>()
      const claiming = yield* Deferred.make<void>()
      const store: JobStoreShape = {
        ...memory,
        claim: (request) =>
          Effect.zipLeft(
            memory.claim(request),
            Effect.zipRight(Deferred.succeed(claiming, undefined), Deferred.await(answered))
          )
      }
      const p = yield* slow(1)
      const s = yield* start(utc("00:05"), [job({ every: "15m" }, p.program)], store)
      yield* TestClock.adjust("10 minutes") // 00:15: the fire is being claimed
      yield* Deferred.await(claiming)
      const stopper = yield* Effect.fork(Fiber.interrupt(s.fiber))
      yield* Effect.yieldNow()
      yield* Deferred.succeed(answered, undefined)
      yield* TestClock.adjust("1 hour")
      yield* Fiber.join(stopper)
      // Another replica found this fire taken: had this one dropped it, it would never run.
      expect(yield* p.starts).toEqual(["2024-01-01T00:15:00Z"])
      expect((yield* memory.history({ limit: 5 })).map((r) => [iso(r.scheduled_at), r.status])).toEqual([
        ["2024-01-01T00:15:00Z", "succeeded"]
      ])
    })
  )

  it.effect("a stop waits no longer than the running job's timeout", () =>
    Effect.gen(function* () {
      const store = yield* makeMemory
      const s = yield* start(utc("00:05"), [job({ every: "15m", timeout: "30m" }, Effect.sleep("1 day"))], store)
      yield* TestClock.adjust("10 minutes")
      const stopper = yield* Effect.fork(Fiber.interrupt(s.fiber))
      yield* TestClock.adjust("30 minutes")
      yield* Fiber.join(stopper)
      expect((yield* store.history({ limit: 5 })).map((r) => [iso(r.finished_at!), r.status])).toEqual([
        ["2024-01-01T00:45:00Z", "timed_out"]
      ])
    })
  )
})

describe("replicas sharing one store", () => {
  it.effect("two schedulers run each fire exactly once between them", () =>
    Effect.gen(function* () {
      const store = yield* makeMemory
      const ran = yield* Ref.make<ReadonlyArray<string>>([])
      const program = Effect.flatMap(Clock.currentTimeMillis, (t) => Ref.update(ran, (l) => [...l, iso(t)]))
      const a = yield* start(utc("00:01"), [job({ every: "5m" }, program)], store, { owner: "a" })
      const b = yield* start(utc("00:01"), [job({ every: "5m" }, program)], store, { owner: "b" })
      yield* TestClock.adjust("30 minutes")
      const fires = yield* Ref.get(ran)
      expect(fires).toEqual(["00:05", "00:10", "00:15", "00:20", "00:25", "00:30"].map((t) => iso(utc(t))))
      expect((yield* store.history({ limit: 100 })).length).toBe(6)
      // Each fire: one scheduler ran it, the other found it taken.
      const taken = [...(yield* a.of("fire.taken")), ...(yield* b.of("fire.taken"))]
      expect(taken.map((e) => e["scheduled_at"]).sort()).toEqual(fires)
      yield* a.stop
      yield* b.stop
    })
  )

  it.effect("a run going on one replica is not overlapped by another", () =>
    Effect.gen(function* () {
      const store = yield* makeMemory
      const p = yield* slow(7)
      // A long lease: fewer heartbeats for the test clock to step through.
      const a = yield* start(utc("00:01"), [job({ every: "5m" }, p.program)], store, { owner: "a", lease: 1_800_000 })
      const b = yield* start(utc("00:01"), [job({ every: "5m" }, p.program)], store, { owner: "b", lease: 1_800_000 })
      yield* TestClock.adjust("30 minutes")
      expect(yield* p.most).toBe(1)
      expect(yield* p.starts).toEqual(["2024-01-01T00:05:00Z", "2024-01-01T00:15:00Z", "2024-01-01T00:25:00Z"])
      yield* a.stop
      yield* b.stop
    })
  )

  it.effect(
    "a claim whose runner died expires with its lease; the next fire runs, a queued fire waits for the expiry",
    () =>
      Effect.gen(function* () {
        const store = yield* makeMemory
        // A runner claimed 00:00 and died: its lease ends at 00:01 and nobody renews it.
        yield* store.claim({
          job: "j",
          scheduledAt: utc("00:00"),
          trigger: "schedule",
          owner: "dead",
          now: utc("00:00"),
          leaseUntil: utc("00:01")
        })
        const r = yield* recorder
        const s = yield* start(utc("00:00") + 30_000, [job({ every: "5m" }, r.program)], store)
        yield* TestClock.adjust("6 minutes")
        expect(yield* r.times).toEqual(["2024-01-01T00:05:00Z"])
        const history = yield* store.history({ limit: 5 })
        expect(history.map((x) => [iso(x.scheduled_at), x.owner, x.status])).toEqual([
          ["2024-01-01T00:05:00Z", "a", "succeeded"],
          ["2024-01-01T00:00:00Z", "dead", "expired"]
        ])
        yield* s.stop

        const queued = yield* makeMemory
        yield* queued.claim({
          job: "j",
          scheduledAt: utc("00:04"),
          trigger: "manual",
          owner: "dead",
          now: utc("00:04"),
          leaseUntil: utc("00:06")
        })
        const q = yield* recorder
        const t = yield* start(utc("00:04") + 30_000, [job({ every: "5m", overlap: "queue-one" }, q.program)], queued)
        yield* TestClock.adjust("4 minutes")
        const [first] = yield* q.times
        expect(Date.parse(first!)).toBeGreaterThan(utc("00:06"))
        expect(Date.parse(first!)).toBeLessThanOrEqual(utc("00:06") + 5_000)
        expect(
          formatInstant(
            (yield* Effect.succeed(job({ every: "5m" }, q.program))).schedule,
            (yield* queued.history({ limit: 1 }))[0]!.scheduled_at
          )
        ).toBe("2024-01-01T00:05:00Z")
        yield* t.stop
      })
  )
})

describe("runOnce", () => {
  it.effect("runs the jobs that are due since their last run, skips the rest, and runs a named job now", () =>
    Effect.gen(function* () {
      const store = yield* storeWithRun(utc("00:00"))
      const r = yield* recorder
      yield* TestClock.setTime(utc("00:20"))
      const jobs = [
        job({ name: "j", every: "15m" }, r.program),
        job({ name: "k", every: "1h" }, r.program),
        job({ name: "off", every: "1m", enabled: false }, r.program)
      ]
      const once = (only?: string) =>
        Effect.flatMap(scheduler, (s) => s.runOnce(jobs, { owner: "a", only, onEvent: () => Effect.void })).pipe(
          Effect.provideService(JobStore, store)
        )
      const first = yield* once()
      expect(first.map((x) => [x.job, x.result, x.scheduled_at ?? x.next])).toEqual([
        ["j", "ran", "2024-01-01T00:15:00Z"],
        ["k", "ran", "2024-01-01T00:00:00Z"],
        ["off", "disabled", undefined]
      ])
      const again = yield* once()
      expect(again.map((x) => [x.job, x.result, x.next])).toEqual([
        ["j", "not-due", "2024-01-01T00:30:00Z"],
        ["k", "not-due", "2024-01-01T01:00:00Z"],
        ["off", "disabled", undefined]
      ])
      const named = yield* once("off")
      expect(named).toMatchObject([{ job: "off", result: "ran", trigger: "manual", status: "succeeded" }])
    })
  )
})
