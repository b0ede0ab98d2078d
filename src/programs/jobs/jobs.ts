/** A project's scheduled jobs: run by the scheduler (for ever, or once), listed with their next fires, and their history. */
import * as CommandExecutor from "@effect/platform/CommandExecutor"
import { Clock, Config, ConfigError, Effect, Either, Layer, Option, Schema } from "effect"
import { CurrentConfig, type SyncConfig } from "../../config.js"
import { JobRun } from "../../domain/jobs/runs.js"
import { describeSchedule, formatDuration, formatInstant, nextFire, parseDuration } from "../../domain/jobs/schedule.js"
import { type Job, toJob } from "../../domain/jobs/spec.js"
import { JobStore, layerFile } from "../../services/jobs/JobStore.js"
import * as PgStore from "../../services/jobs/pgStore.js"
import * as Database from "../../services/ProjectDatabase.js"
import { scheduledJob } from "./programs.js"
import * as Scheduler from "./scheduler.js"

/** The jobs of `agentsync.yaml`, in the order written. */
export const jobsOf = (config: SyncConfig): ReadonlyArray<Job> => (config.project.jobs ?? []).map(toJob)

/**
 * Where runs are claimed and recorded: `job_runs` in the project database when DATABASE_URL is set (any number of
 * runners share the jobs), else `.agentsync/jobs.json` and the run lock (one scheduler on this machine).
 */
export const storeLayer = (config: SyncConfig) =>
  config.databaseUrl === undefined
    ? layerFile(config.projectRoot)
    : PgStore.layer.pipe(Layer.provide(Database.layerMigrated(Database.optionsFromConfig(config))))

/** `AGENTSYNC_JOBS_LEASE` (a duration such as `60s`): how long a claim holds without a heartbeat. */
const leaseSetting = Config.string("AGENTSYNC_JOBS_LEASE").pipe(
  Config.mapOrFail((text) => {
    const ms = parseDuration(text)
    return ms === undefined || ms < 1_000 || ms > 86_400_000
      ? Either.left(
          ConfigError.InvalidData([], `expected a duration from 1s to 1d such as 60s, got ${JSON.stringify(text)}`)
        )
      : Either.right(ms)
  }),
  Config.option
)

export interface RunOptions {
  /** One pass (`--once`) instead of running until stopped. */
  readonly once?: boolean | undefined
  /** With `once`: run only this job, now. */
  readonly only?: string | undefined
  readonly onEvent?: Scheduler.SchedulerOptions["onEvent"]
}

const schedulerOptions = (options: RunOptions) =>
  Effect.map(
    leaseSetting,
    (lease): Scheduler.SchedulerOptions => ({ lease: Option.getOrUndefined(lease), onEvent: options.onEvent })
  )

/** A job as `jobs list` shows it. */
export interface JobListing {
  readonly name: string
  readonly run: Job["run"]
  readonly schedule: string
  readonly tz: string
  readonly enabled: boolean
  readonly overlap: string
  readonly catch_up: string
  readonly timeout: string
  readonly next: string | null
  readonly last: typeof JobRun.Encoded | null
}

const encodeRun = Schema.encodeSync(JobRun)

/**
 * The project's jobs as a service: it closes over the configuration, the JobStore and the platform's processes
 * it was built with (the job programs run on those), and the scheduler over the same store.
 * `Jobs.Default` needs `CurrentConfig` and a `JobStore`: `storeLayer(config)` for the project's own, `PgStore.layer`
 * on a SqlClient for the tenant server's database.
 */
export class Jobs extends Effect.Service<Jobs>()("agentsync/Jobs", {
  dependencies: [Scheduler.Scheduler.Default],
  effect: Effect.gen(function* () {
    const config = yield* CurrentConfig
    const store = yield* JobStore
    const scheduler = yield* Scheduler.Scheduler
    const executor = yield* CommandExecutor.CommandExecutor
    const jobs = jobsOf(config).map((job) => {
      const scheduled = scheduledJob(job)
      return {
        ...scheduled,
        program: scheduled.program.pipe(
          Effect.provideService(CurrentConfig, config),
          Effect.provideService(CommandExecutor.CommandExecutor, executor)
        )
      }
    })

    /** Runs the project's jobs: until interrupted (a clean stop), or one pass. */
    const run = Effect.fn("Jobs.run")(function* (options: RunOptions = {}) {
      const scheduling = yield* schedulerOptions(options)
      return options.once === true
        ? yield* scheduler.runOnce(jobs, { ...scheduling, only: options.only })
        : yield* scheduler.run(jobs, scheduling)
    })

    /** Each job with its next fire and its last run. */
    const list = Effect.fn("Jobs.list")(function* () {
      const latest = yield* store.latestRuns()
      const now = yield* Clock.currentTimeMillis
      return jobsOf(config).map((j): JobListing => {
        const last = latest.get(j.name)
        return {
          name: j.name,
          run: j.run,
          schedule: describeSchedule(j.schedule),
          tz: j.schedule._tag === "Cron" ? j.schedule.tz : "UTC",
          enabled: j.enabled,
          overlap: j.overlap,
          catch_up: j.catchUp === "none" ? "none" : `latest within ${formatDuration(j.catchUpWindow)}`,
          timeout: formatDuration(j.timeout),
          next: j.enabled ? formatInstant(j.schedule, nextFire(j.schedule, now)) : null,
          last: last === undefined ? null : encodeRun(last)
        }
      })
    })

    /** The runs recorded, newest first. */
    const history = Effect.fn("Jobs.history")(function* (options: {
      readonly job?: string | undefined
      readonly limit: number
    }) {
      const runs = yield* store.history(options)
      return runs.map((r) => encodeRun(r))
    })

    return { run, list, history } as const
  })
}) {
  /** The service on the project's own store (`storeLayer`), for the configuration in context. */
  static readonly layerFromConfig = Layer.unwrapEffect(
    Effect.map(CurrentConfig, (config) => Jobs.Default.pipe(Layer.provide(storeLayer(config))))
  )
  /** The service on `job_runs` over the SqlClient in context (the tenant server's database, for `serve --jobs`). */
  static readonly layerOnDatabase = Jobs.Default.pipe(Layer.provide(PgStore.layer))
}
