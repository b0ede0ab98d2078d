/** Runs of jobs: the record of one fire, the claim rules every store follows, and what to do with fires that are due. */
import { Schema } from "effect"
import { type JobSchedule, latestFire, nextFire } from "./schedule.js"
import type { JobTiming } from "./spec.js"

/** An instant: ISO 8601 text on the outside, epoch milliseconds inside. */
export const Instant = Schema.transform(
  Schema.String.pipe(Schema.filter((s) => !Number.isNaN(Date.parse(s)) || "expected an ISO 8601 time")),
  Schema.Number,
  {
    strict: true,
    decode: (s) => Date.parse(s),
    encode: (n) => new Date(n).toISOString()
  }
)

export const RunStatus = Schema.Literal("running", "succeeded", "failed", "timed_out", "expired")
export type RunStatus = typeof RunStatus.Type

/** Why a run started: its fire came, a missed fire caught up, a fire queued behind a long run, or by hand. */
export const Trigger = Schema.Literal("schedule", "catch-up", "queued", "manual")
export type Trigger = typeof Trigger.Type

const opt = <S extends Schema.Schema.All>(schema: S) => Schema.optionalWith(schema, { exact: true })

/** One fire of one job, claimed by one runner (`owner`); `lease_until` is renewed while it runs. */
export class JobRun extends Schema.Class<JobRun>("JobRun")({
  job: Schema.String,
  scheduled_at: Instant,
  trigger: Trigger,
  status: RunStatus,
  owner: Schema.String,
  started_at: Instant,
  lease_until: opt(Instant),
  finished_at: opt(Instant),
  duration_ms: opt(Schema.Number),
  summary: opt(Schema.String),
  error: opt(Schema.String)
}) {}

/** The runs of a store as their JSON form (state file, `--json`). */
export const JobRuns = Schema.Array(JobRun)

export interface ClaimRequest {
  readonly job: string
  readonly scheduledAt: number
  readonly trigger: Trigger
  readonly owner: string
  readonly now: number
  readonly leaseUntil: number
}

/** A claim's answer: this runner has the fire; another has (or had) it; another run of the job holds its lease. */
export type Claim =
  | { readonly _tag: "Claimed" }
  | { readonly _tag: "Taken"; readonly by: JobRun }
  | { readonly _tag: "Busy"; readonly by: JobRun }

export interface Outcome {
  readonly status: Exclude<RunStatus, "running" | "expired">
  readonly finishedAt: number
  readonly durationMs: number
  readonly summary?: string | undefined
  readonly error?: string | undefined
}

/** How many runs of each job a store keeps. */
export const HISTORY_KEEP = 100

export const EXPIRED_REASON = "its runner stopped without finishing (the claim's lease ran out)"

const same = (r: JobRun, job: string, at: number) => r.job === job && r.scheduled_at === at

/**
 * The claim rules, on a list of runs (the in-memory and single-machine stores; the Postgres store runs the same
 * rules in SQL): one row per (job, fire); at most one running row per job; a running row whose lease has passed
 * is expired by the next claim.
 */
export const claimIn = (runs: ReadonlyArray<JobRun>, req: ClaimRequest): readonly [ReadonlyArray<JobRun>, Claim] => {
  const taken = runs.find((r) => same(r, req.job, req.scheduledAt))
  if (taken !== undefined) return [runs, { _tag: "Taken", by: taken }]
  const running = runs.find((r) => r.job === req.job && r.status === "running")
  if (running !== undefined && (running.lease_until ?? Number.POSITIVE_INFINITY) >= req.now)
    return [runs, { _tag: "Busy", by: running }]
  const kept = runs.map((r) => (r === running ? expire(r, req.now) : r))
  const run = new JobRun({
    job: req.job,
    scheduled_at: req.scheduledAt,
    trigger: req.trigger,
    status: "running",
    owner: req.owner,
    started_at: req.now,
    lease_until: req.leaseUntil
  })
  return [prune([...kept, run], req.job), { _tag: "Claimed" }]
}

export const expire = (r: JobRun, now: number): JobRun =>
  new JobRun({ ...withoutLease(r), status: "expired", finished_at: now, error: EXPIRED_REASON })

const withoutLease = ({ lease_until: _, ...rest }: JobRun) => rest

const mine = (r: JobRun, job: string, at: number, owner: string) =>
  same(r, job, at) && r.owner === owner && r.status === "running"

/** Renews a lease; false when the run is no longer this runner's (expired by another). */
export const heartbeatIn = (
  runs: ReadonlyArray<JobRun>,
  job: string,
  at: number,
  owner: string,
  leaseUntil: number
) => {
  const found = runs.some((r) => mine(r, job, at, owner))
  return [
    found ? runs.map((r) => (mine(r, job, at, owner) ? new JobRun({ ...r, lease_until: leaseUntil }) : r)) : runs,
    found
  ] as const
}

/** Records how a run ended; false when it was no longer this runner's. */
export const finishIn = (runs: ReadonlyArray<JobRun>, job: string, at: number, owner: string, o: Outcome) => {
  const found = runs.some((r) => mine(r, job, at, owner))
  const done = (r: JobRun) =>
    new JobRun({
      ...withoutLease(r),
      status: o.status,
      finished_at: o.finishedAt,
      duration_ms: o.durationMs,
      ...(o.summary === undefined ? {} : { summary: o.summary }),
      ...(o.error === undefined ? {} : { error: o.error })
    })
  return [found ? runs.map((r) => (mine(r, job, at, owner) ? done(r) : r)) : runs, found] as const
}

/** Marks every running row expired: a single-machine scheduler that holds the run lock knows nobody runs them. */
export const expireAllIn = (runs: ReadonlyArray<JobRun>, now: number) =>
  runs.map((r) => (r.status === "running" ? expire(r, now) : r))

/** Keeps the newest HISTORY_KEEP runs of a job. */
const prune = (runs: ReadonlyArray<JobRun>, job: string): ReadonlyArray<JobRun> => {
  const ofJob = runs.filter((r) => r.job === job).sort((a, b) => b.scheduled_at - a.scheduled_at)
  if (ofJob.length <= HISTORY_KEEP) return runs
  const gone = new Set(ofJob.slice(HISTORY_KEEP))
  return runs.filter((r) => !gone.has(r))
}

export const lastFireIn = (runs: ReadonlyArray<JobRun>, job: string): number | undefined =>
  runs.reduce<number | undefined>(
    (m, r) => (r.job === job && (m === undefined || r.scheduled_at > m) ? r.scheduled_at : m),
    undefined
  )

/** Newest first, of one job or all. */
export const historyIn = (runs: ReadonlyArray<JobRun>, job: string | undefined, limit: number): ReadonlyArray<JobRun> =>
  runs
    .filter((r) => job === undefined || r.job === job)
    .sort((a, b) => b.scheduled_at - a.scheduled_at || a.job.localeCompare(b.job))
    .slice(0, limit)

// ---------------------------------------------------------------------------------------------------------
// Decisions on due fires

/** The fires in (after, upTo]: the first and the latest, or nothing. */
export interface Due {
  readonly first: number
  readonly latest: number
}

export const dueFires = (s: JobSchedule, after: number, upTo: number): Due | undefined => {
  const first = nextFire(s, after)
  if (first > upTo) return undefined
  return { first, latest: latestFire(s, upTo, after) ?? first }
}

/** Where the scheduler stands when fires are due: just started, woke for a fire, or just finished a run. */
export type Phase = "start" | "woke" | "ran"

/** A fire that comes this long after its time still counts as on time. */
export const ON_TIME = 60_000

export type Decision =
  | { readonly run: true; readonly at: number; readonly trigger: Trigger }
  | { readonly run: false; readonly at: number; readonly reason: string }

const catchUp = (t: JobTiming, due: Due, now: number): Decision => {
  if (t.catchUp === "none")
    return { run: false, at: due.latest, reason: "missed while no scheduler ran (catch_up: none)" }
  if (now - due.latest > t.catchUpWindow)
    return { run: false, at: due.latest, reason: "missed, and older than catch_up_window" }
  return { run: true, at: due.latest, trigger: "catch-up" }
}

/**
 * What to do with the due fires: only ever the latest runs. On waking for a single fire on time: run it. Fires
 * missed while no scheduler ran (or the machine slept): the catch-up policy. Fires that came while the previous
 * run was still going: the overlap policy, `queue-one` runs the latest once now, `skip` drops them.
 */
export const decide = (t: JobTiming, phase: Phase, due: Due, now: number): Decision => {
  switch (phase) {
    case "ran":
      return t.overlap === "queue-one"
        ? { run: true, at: due.latest, trigger: "queued" }
        : { run: false, at: due.latest, reason: "came while the previous run was still going (overlap: skip)" }
    case "woke":
      return due.first === due.latest && now - due.latest <= ON_TIME
        ? { run: true, at: due.latest, trigger: "schedule" }
        : catchUp(t, due, now)
    case "start":
      return catchUp(t, due, now)
  }
}

/**
 * For a one-shot run (`jobs run --once`, from cron or a timer): the latest fire since the job's last run, if it is
 * within the catch-up window. Between one-shot runs no scheduler is running, so every fire since the last run
 * counts, whatever `catch_up` says; a job that never ran counts its latest fire.
 */
export const dueOnce = (t: JobTiming, last: number | undefined, now: number): Decision | undefined => {
  const latest = latestFire(t.schedule, now, last)
  if (latest === undefined) return undefined
  if (now - latest > t.catchUpWindow)
    return { run: false, at: latest, reason: "missed, and older than catch_up_window" }
  return { run: true, at: latest, trigger: now - latest <= ON_TIME ? "schedule" : "catch-up" }
}
