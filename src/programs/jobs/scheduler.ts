/** The scheduler: runs programs at the fires of their schedules, each fire once across every runner that shares a JobStore. */
import { randomBytes } from "node:crypto"
import * as os from "node:os"
import { Cause, Clock, Console, Data, Effect, Exit, Fiber, Option, Ref, Schedule } from "effect"
import {
  type Decision,
  decide,
  dueFires,
  dueOnce,
  type Outcome,
  type Phase,
  type Trigger
} from "../../domain/jobs/runs.js"
import { formatDuration, formatInstant, nextFire } from "../../domain/jobs/schedule.js"
import type { JobTiming } from "../../domain/jobs/spec.js"
import { JobStore, type JobStoreShape } from "../../services/jobs/JobStore.js"

/** A job as the scheduler sees it: its timing and the program a run executes (any Effect: a library user's own too). */
export interface ScheduledJob<R = never> extends JobTiming {
  /** What a run does; a string it succeeds with is kept as the run's summary. */
  readonly program: Effect.Effect<unknown, unknown, R>
}

/** One structured log line: what happened, to which job, when (ISO times, in the job's zone where it has one). */
export interface JobEvent {
  readonly time: string
  readonly level: "info" | "warn" | "error"
  readonly event:
    | "scheduler.start"
    | "job.scheduled"
    | "run.start"
    | "run.end"
    | "fire.skipped"
    | "fire.taken"
    | "store.error"
    | "scheduler.stopping"
    | "scheduler.stop"
  readonly job?: string
  readonly [field: string]: unknown
}

export interface SchedulerOptions {
  /** Who claims the runs (default `host:pid:random`); two schedulers in one process are two owners. */
  readonly owner?: string | undefined
  /** How long a claim holds without a heartbeat (default 60 s); a runner renews it every third of that. */
  readonly lease?: number | undefined
  /** Runs at once in this scheduler (default 1: jobs due together run one after the other). */
  readonly concurrency?: number | undefined
  /** Where events go (default: one JSON line each on stderr). */
  readonly onEvent?: ((event: JobEvent) => Effect.Effect<void>) | undefined
}

export const DEFAULT_LEASE = 60_000

/** The longest the scheduler sleeps before it looks at the clock again. */
export const MAX_SLEEP = 3_600_000

export const defaultOwner = (): string => `${os.hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`

/** The default sink: one JSON object per line on stderr. */
export const logLine = (event: JobEvent): Effect.Effect<void> => Console.error(JSON.stringify(event))

class TimedOut extends Data.TaggedError("TimedOut")<{ readonly after: number }> {}
class LeaseLost extends Data.TaggedError("LeaseLost") {}

const messageOf = (u: unknown): string =>
  typeof u === "object" && u !== null && "message" in u && typeof u.message === "string" && u.message !== ""
    ? u.message
    : String(u)

const outcomeOf = (exit: Exit.Exit<unknown, unknown>, finishedAt: number, durationMs: number): Outcome => {
  const base = { finishedAt, durationMs }
  if (Exit.isSuccess(exit))
    return {
      ...base,
      status: "succeeded",
      summary: typeof exit.value === "string" && exit.value !== "" ? exit.value : undefined
    }
  const failure = Cause.failureOption(exit.cause)
  if (Option.isSome(failure)) {
    const e = failure.value
    if (e instanceof TimedOut)
      return { ...base, status: "timed_out", error: `did not finish within ${formatDuration(e.after)}; interrupted` }
    if (e instanceof LeaseLost)
      return {
        ...base,
        status: "failed",
        error: "lost its claim: the lease ran out while it ran (another runner may take the job)"
      }
    return { ...base, status: "failed", error: messageOf(e) }
  }
  const defect = Cause.dieOption(exit.cause)
  return {
    ...base,
    status: "failed",
    error: Option.isSome(defect) ? `defect: ${messageOf(defect.value)}` : "interrupted"
  }
}

/** What became of a fire this runner tried: it ran (with its outcome), another runner has it, or the job was busy. */
export type FireResult =
  | { readonly _tag: "Ran"; readonly at: number; readonly trigger: Trigger; readonly outcome: Outcome }
  | { readonly _tag: "Taken"; readonly at: number; readonly owner: string }
  | { readonly _tag: "Busy"; readonly at: number; readonly owner: string }
  | { readonly _tag: "StoreError"; readonly at: number; readonly error: string }

const make = (store: JobStoreShape, options: SchedulerOptions) =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const owner = options.owner ?? defaultOwner()
    const lease = options.lease ?? DEFAULT_LEASE
    const sink = options.onEvent ?? logLine
    const permits = yield* Effect.makeSemaphore(options.concurrency ?? 1)
    const running = yield* Ref.make<ReadonlyMap<string, { readonly at: string; readonly timeout: string }>>(new Map())

    const emit = (level: JobEvent["level"], event: JobEvent["event"], fields: Record<string, unknown> = {}) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        sink({ time: new Date(now).toISOString(), level, event, ...fields })
      )

    const storeError = (job: string) => (e: { readonly message: string }) =>
      Effect.as(emit("error", "store.error", { job, error: e.message }), undefined)

    /** The program, bounded by the job's timeout and raced against its heartbeat (a lost claim stops it). */
    const guarded = <R>(job: ScheduledJob<R>, at: number) => {
      const timed = job.program.pipe(
        Effect.timeoutFail({ duration: job.timeout, onTimeout: () => new TimedOut({ after: job.timeout }) })
      )
      const beat = Effect.gen(function* () {
        for (;;) {
          yield* Effect.sleep(lease / 3)
          const now = yield* Clock.currentTimeMillis
          const ours = yield* store
            .heartbeat(job.name, at, owner, now + lease)
            .pipe(Effect.catchAll((e) => Effect.as(storeError(job.name)(e), true)))
          if (!ours) return yield* new LeaseLost()
        }
      })
      return Effect.raceFirst(timed, beat)
    }

    /**
     * Claims the fire and runs it, shielded from interruption from the claim on: a stop (SIGINT, SIGTERM, the
     * scheduler's fiber interrupted) waits for the claim's answer, then for a claimed run to finish, bounded by its
     * timeout, and records it. A claim cut off after the store recorded it would leave the fire to no one: another
     * replica finds it taken.
     */
    const attempt = <R>(job: ScheduledJob<R>, at: number, trigger: Trigger) =>
      permits.withPermits(1)(
        Effect.uninterruptibleMask((restore) =>
          Effect.gen(function* () {
            const started = yield* Clock.currentTimeMillis
            const claim = yield* store
              .claim({ job: job.name, scheduledAt: at, trigger, owner, now: started, leaseUntil: started + lease })
              .pipe(Effect.either)
            if (claim._tag === "Left") return { _tag: "StoreError", at, error: claim.left.message } satisfies FireResult
            if (claim.right._tag !== "Claimed")
              return { _tag: claim.right._tag, at, owner: claim.right.by.owner } satisfies FireResult
            const fire = formatInstant(job.schedule, at)
            yield* Ref.update(running, (m) =>
              new Map(m).set(job.name, { at: fire, timeout: formatDuration(job.timeout) })
            )
            yield* emit("info", "run.start", { job: job.name, scheduled_at: fire, trigger, owner })
            // Forked into the scheduler's scope, not as a child: an interrupted fiber passes the signal to its
            // children at once, and this run must be left to finish.
            const exit = yield* Fiber.await(yield* Effect.forkIn(restore(guarded(job, at)), scope))
            const finished = yield* Clock.currentTimeMillis
            const outcome = outcomeOf(exit, finished, finished - started)
            const recorded = yield* store
              .finish(job.name, at, owner, outcome)
              .pipe(Effect.catchAll(storeError(job.name)))
            yield* Ref.update(running, (m) => {
              const next = new Map(m)
              next.delete(job.name)
              return next
            })
            yield* emit(outcome.status === "succeeded" ? "info" : "error", "run.end", {
              job: job.name,
              scheduled_at: fire,
              trigger,
              status: outcome.status,
              duration_ms: outcome.durationMs,
              ...(outcome.summary === undefined ? {} : { summary: outcome.summary }),
              ...(outcome.error === undefined ? {} : { error: outcome.error }),
              ...(recorded === false ? { note: "the claim had expired before the run ended" } : {}),
              next: formatInstant(job.schedule, nextFire(job.schedule, Math.max(at, finished)))
            })
            return { _tag: "Ran", at, trigger, outcome } satisfies FireResult
          })
        )
      )

    /** A fire: run it; if another run of the job is still going elsewhere, skip it or (queue-one) wait until the next fire. */
    const fire = <R>(job: ScheduledJob<R>, at: number, trigger: Trigger): Effect.Effect<FireResult, never, R> =>
      Effect.gen(function* () {
        for (;;) {
          const result = yield* attempt(job, at, trigger)
          const scheduled_at = formatInstant(job.schedule, at)
          switch (result._tag) {
            case "Busy": {
              const now = yield* Clock.currentTimeMillis
              if (job.overlap === "queue-one" && nextFire(job.schedule, at) > now + lease / 4) {
                yield* Effect.sleep(Math.min(lease / 4, 5_000))
                continue
              }
              yield* emit("warn", "fire.skipped", {
                job: job.name,
                scheduled_at,
                reason: `another run of the job is still going (on ${result.owner})`
              })
              return result
            }
            case "Taken":
              yield* emit("info", "fire.taken", { job: job.name, scheduled_at, by: result.owner })
              return result
            case "StoreError":
              yield* emit("error", "store.error", { job: job.name, scheduled_at, error: result.error })
              return result
            case "Ran":
              return result
          }
        }
      })

    const skipped = <R>(job: ScheduledJob<R>, d: Extract<Decision, { run: false }>, from: number) =>
      emit("warn", "fire.skipped", {
        job: job.name,
        scheduled_at: formatInstant(job.schedule, d.at),
        ...(from === d.at ? {} : { missed_since: formatInstant(job.schedule, from) }),
        reason: d.reason
      })

    /** One job, for ever: resume after its last recorded fire, sleep until the next, decide, run. */
    const loop = <R>(job: ScheduledJob<R>): Effect.Effect<never, never, R> =>
      Effect.gen(function* () {
        const started = yield* Clock.currentTimeMillis
        const recorded = yield* store
          .lastFire(job.name)
          .pipe(
            Effect.tapError(storeError(job.name)),
            Effect.retry(Schedule.exponential("1 second").pipe(Schedule.union(Schedule.spaced("1 minute")))),
            Effect.orDie
          )
        let last = Option.getOrElse(recorded, () => started)
        let phase: Phase = "start"
        yield* emit("info", "job.scheduled", {
          job: job.name,
          next: formatInstant(job.schedule, nextFire(job.schedule, Math.max(last, started))),
          ...(Option.isSome(recorded) ? { last_fire: formatInstant(job.schedule, recorded.value) } : {})
        })
        for (;;) {
          const now = yield* Clock.currentTimeMillis
          const due = dueFires(job.schedule, last, now)
          if (due === undefined) {
            // In steps of at most an hour: a timer longer than 2^31 ms never fires, and a clock that jumped (NTP, a
            // machine that slept) is noticed within the hour.
            yield* Effect.sleep(Math.min(nextFire(job.schedule, last) - now, MAX_SLEEP))
            phase = "woke"
            continue
          }
          const d = decide(job, phase, due, now)
          if (d.run) {
            yield* fire(job, d.at, d.trigger)
            phase = "ran"
          } else yield* skipped(job, d, due.first)
          last = due.latest
        }
      })

    return { owner, store, emit, fire, loop, running }
  })

/**
 * Runs the enabled jobs until interrupted. Interruption is a clean stop: no new run starts, the runs going on
 * finish (each bounded by its timeout) and are recorded, then it ends. Fails only if the store cannot be taken
 * (another scheduler holds the single-machine run lock).
 */
const run =
  (store: JobStoreShape) =>
  <R>(jobs: ReadonlyArray<ScheduledJob<R>>, options: SchedulerOptions = {}) =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* make(store, options)
        yield* s.store.runner
        const enabled = jobs.filter((j) => j.enabled)
        yield* s.emit("info", "scheduler.start", {
          owner: s.owner,
          store: s.store.describe,
          jobs: enabled.length,
          disabled: jobs.length - enabled.length
        })
        const fibers = yield* Effect.forEach(enabled, (job) => Effect.fork(s.loop(job)))
        return yield* Fiber.joinAll(fibers).pipe(
          Effect.zipRight(Effect.never),
          Effect.onInterrupt(() =>
            Effect.gen(function* () {
              const going = [...(yield* Ref.get(s.running))].map(([job, r]) => ({
                job,
                scheduled_at: r.at,
                timeout: r.timeout
              }))
              yield* s.emit("info", "scheduler.stopping", { running: going })
              yield* Fiber.interruptAll(fibers)
              yield* s.emit("info", "scheduler.stop", {})
            })
          )
        )
      })
    )

/** What `runOnce` did for a job. */
export interface OnceResult {
  readonly job: string
  readonly result: "ran" | "not-due" | "skipped" | "taken" | "busy" | "disabled" | "store-error"
  readonly scheduled_at?: string
  readonly trigger?: Trigger
  readonly status?: Outcome["status"]
  readonly duration_ms?: number
  readonly summary?: string
  readonly error?: string
  readonly reason?: string
  readonly next?: string
}

/**
 * One pass, for a system timer: every enabled job whose latest fire since its last run is due runs once (see
 * `dueOnce`); with `only`, that job runs now whatever its schedule (trigger `manual`). Jobs run one after another.
 */
const runOnce =
  (store: JobStoreShape) =>
  <R>(jobs: ReadonlyArray<ScheduledJob<R>>, options: SchedulerOptions & { readonly only?: string | undefined } = {}) =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* make(store, options)
        yield* s.store.runner
        const results: Array<OnceResult> = []
        for (const job of jobs) {
          if (options.only !== undefined && job.name !== options.only) continue
          const now = yield* Clock.currentTimeMillis
          const next = formatInstant(job.schedule, nextFire(job.schedule, now))
          let decision: Decision | undefined = { run: true, at: now, trigger: "manual" }
          if (options.only === undefined) {
            if (!job.enabled) {
              results.push({ job: job.name, result: "disabled" })
              continue
            }
            decision = dueOnce(job, Option.getOrUndefined(yield* s.store.lastFire(job.name)), now)
          }
          if (decision === undefined) {
            results.push({ job: job.name, result: "not-due", next })
            continue
          }
          const scheduled_at = formatInstant(job.schedule, decision.at)
          if (!decision.run) {
            results.push({ job: job.name, result: "skipped", scheduled_at, reason: decision.reason, next })
            continue
          }
          const r = yield* s.fire(job, decision.at, decision.trigger)
          switch (r._tag) {
            case "Ran":
              results.push({
                job: job.name,
                result: "ran",
                scheduled_at,
                trigger: r.trigger,
                status: r.outcome.status,
                duration_ms: r.outcome.durationMs,
                ...(r.outcome.summary === undefined ? {} : { summary: r.outcome.summary }),
                ...(r.outcome.error === undefined ? {} : { error: r.outcome.error }),
                next
              })
              break
            case "StoreError":
              results.push({ job: job.name, result: "store-error", scheduled_at, error: r.error })
              break
            default:
              results.push({
                job: job.name,
                result: r._tag === "Taken" ? "taken" : "busy",
                scheduled_at,
                reason: `by ${r.owner}`
              })
          }
        }
        return results
      })
    )

/**
 * The scheduler as a service over the JobStore it was built with: `run` and `runOnce` need only what the jobs'
 * own programs need.
 */
export class Scheduler extends Effect.Service<Scheduler>()("agentsync/Scheduler", {
  effect: Effect.map(JobStore, (store) => ({ run: run(store), runOnce: runOnce(store) }))
}) {}
