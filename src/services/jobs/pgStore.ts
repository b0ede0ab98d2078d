/** The JobStore on Postgres (`job_runs`): a fire is claimed by one row insert, so any number of runners share the jobs. */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Layer, Option } from "effect"
import {
  type Claim,
  EXPIRED_REASON,
  HISTORY_KEEP,
  JobRun,
  type RunStatus,
  type Trigger
} from "../../domain/jobs/runs.js"
import { DatabaseError } from "../../errors.js"
import { causeMessage } from "../ProjectDatabase.js"
import { JobStore, type JobStoreShape } from "./JobStore.js"

interface Row {
  readonly job: string
  readonly scheduled_at: Date
  readonly trigger: string
  readonly status: string
  readonly owner: string
  readonly started_at: Date
  readonly lease_until: Date | null
  readonly finished_at: Date | null
  readonly duration_ms: string | number | null
  readonly summary: string | null
  readonly error: string | null
}

const toRun = (r: Row): JobRun =>
  new JobRun({
    job: r.job,
    scheduled_at: r.scheduled_at.getTime(),
    trigger: r.trigger as Trigger,
    status: r.status as RunStatus,
    owner: r.owner,
    started_at: r.started_at.getTime(),
    ...(r.lease_until === null ? {} : { lease_until: r.lease_until.getTime() }),
    ...(r.finished_at === null ? {} : { finished_at: r.finished_at.getTime() }),
    ...(r.duration_ms === null ? {} : { duration_ms: Number(r.duration_ms) }),
    ...(r.summary === null ? {} : { summary: r.summary }),
    ...(r.error === null ? {} : { error: r.error })
  })

const failed = (what: string) => (cause: SqlError) =>
  new DatabaseError({ reason: `job runs: ${what}: ${causeMessage(cause)}`, cause })

/**
 * Runs in `job_runs` on the SqlClient in context. No session state and no advisory lock: every rule is a single
 * statement (a row insert that does nothing on conflict, updates guarded by owner and status), so it works behind
 * PgBouncer and on Postgres-compatible distributed databases. Times come from the runners' clocks.
 */
export const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const at = (ms: number) => new Date(ms)

  const claim = Effect.fn("JobStore.claim")(
    function* (req: Parameters<JobStoreShape["claim"]>[0]) {
      for (let attempt = 0; ; attempt++) {
        const inserted = yield* sql<{ job: string }>`
        INSERT INTO job_runs (job, scheduled_at, trigger, status, owner, started_at, lease_until)
        VALUES (${req.job}, ${at(req.scheduledAt)}, ${req.trigger}, 'running', ${req.owner}, ${at(req.now)}, ${at(req.leaseUntil)})
        ON CONFLICT DO NOTHING
        RETURNING job`
        if (inserted.length > 0) return { _tag: "Claimed" } satisfies Claim
        // The fire's row exists (Taken), or another run of the job holds the one running row (Busy or expired).
        const rows = yield* sql<Row>`
        SELECT * FROM job_runs WHERE job = ${req.job} AND (scheduled_at = ${at(req.scheduledAt)} OR status = 'running')
        ORDER BY (scheduled_at = ${at(req.scheduledAt)}) DESC`
        const first = rows[0]
        if (first === undefined) continue // finished between the two statements: claim again
        const run = toRun(first)
        if (run.scheduled_at === req.scheduledAt) return { _tag: "Taken", by: run } satisfies Claim
        if ((run.lease_until ?? Number.POSITIVE_INFINITY) >= req.now || attempt >= 3)
          return { _tag: "Busy", by: run } satisfies Claim
        yield* sql`
        UPDATE job_runs SET status = 'expired', finished_at = ${at(req.now)}, lease_until = NULL, error = ${EXPIRED_REASON}
        WHERE job = ${req.job} AND scheduled_at = ${at(run.scheduled_at)} AND status = 'running' AND lease_until < ${at(req.now)}`
      }
    },
    Effect.mapError(failed("claim"))
  )

  const heartbeat: JobStoreShape["heartbeat"] = (job, scheduledAt, owner, leaseUntil) =>
    sql`
      UPDATE job_runs SET lease_until = ${at(leaseUntil)}
      WHERE job = ${job} AND scheduled_at = ${at(scheduledAt)} AND owner = ${owner} AND status = 'running'
      RETURNING job`.pipe(
      Effect.map((rows) => rows.length > 0),
      Effect.mapError(failed("heartbeat")),
      Effect.withSpan("JobStore.heartbeat")
    )

  // One statement: the run's outcome, and the job's runs beyond the newest HISTORY_KEEP pruned.
  const finish: JobStoreShape["finish"] = (job, scheduledAt, owner, o) =>
    sql<{ mine: boolean }>`
      WITH done AS (
        UPDATE job_runs SET status = ${o.status}, finished_at = ${at(o.finishedAt)}, lease_until = NULL,
          duration_ms = ${o.durationMs}, summary = ${o.summary ?? null}, error = ${o.error ?? null}
        WHERE job = ${job} AND scheduled_at = ${at(scheduledAt)} AND owner = ${owner} AND status = 'running'
        RETURNING job
      ), pruned AS (
        DELETE FROM job_runs WHERE job = ${job} AND status <> 'running' AND scheduled_at < (
          SELECT scheduled_at FROM job_runs WHERE job = ${job} ORDER BY scheduled_at DESC OFFSET ${HISTORY_KEEP - 1} LIMIT 1)
      )
      SELECT EXISTS (SELECT 1 FROM done) AS mine`.pipe(
      Effect.map((rows) => rows[0]?.mine === true),
      Effect.mapError(failed("finish")),
      Effect.withSpan("JobStore.finish")
    )

  const store: JobStoreShape = {
    describe: "job_runs in the database",
    runner: Effect.void,
    lastFire: (job) =>
      sql<{ last: Date | null }>`SELECT max(scheduled_at) AS last FROM job_runs WHERE job = ${job}`.pipe(
        Effect.map((rows) => Option.map(Option.fromNullable(rows[0]?.last), (d) => d.getTime())),
        Effect.mapError(failed("last fire"))
      ),
    claim,
    heartbeat,
    finish,
    history: ({ job, limit }) =>
      (job === undefined
        ? sql<Row>`SELECT * FROM job_runs ORDER BY scheduled_at DESC, job LIMIT ${limit}`
        : sql<Row>`SELECT * FROM job_runs WHERE job = ${job} ORDER BY scheduled_at DESC LIMIT ${limit}`
      ).pipe(
        Effect.map((rows) => rows.map(toRun)),
        Effect.mapError(failed("history"))
      ),
    latestRuns: () =>
      sql<Row>`SELECT DISTINCT ON (job) * FROM job_runs ORDER BY job, scheduled_at DESC`.pipe(
        Effect.map((rows) => new Map(rows.map((r) => [r.job, toRun(r)] as const))),
        Effect.mapError(failed("latest runs"))
      )
  }
  return store
})

/** The store on the database in context; its table comes with the project (or the server) migrations. */
export const layer = Layer.effect(JobStore, make)
