/** `agentsync jobs run | list | history`: the scheduled jobs of `agentsync.yaml`. */
import * as nodePath from "node:path"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Effect, Option } from "effect"
import { PROJECT_FILE, type SyncConfig } from "../config.js"
import { CommandFailed } from "../errors.js"
import type { JobListing, Jobs } from "../programs/jobs/jobs.js"
import type { OnceResult } from "../programs/jobs/scheduler.js"
import { ProgressReporter, silentProgress } from "../services/Progress.js"
import { runsUntilStopped } from "../services/RunStatus.js"
import { emit, table, tableOf } from "./output.js"
import { withProgram } from "./program.js"
import { projectConfig, usage } from "./root.js"

const jobOption = Options.text("job").pipe(
  Options.withDescription("one job, by its name in agentsync.yaml"),
  Options.optional
)

/** What a configuration without jobs is told: where to add them. */
const noJobs = (config: SyncConfig) =>
  `no jobs in ${nodePath.join(config.projectRoot, PROJECT_FILE)}: add a jobs: list (see README, "Scheduled jobs")`

/**
 * No jobs in the configuration (for what runs them), or `--job` naming none of them, is a usage error (exit 2); a
 * listing of no jobs is not an error, and does not ask this (see `list`).
 */
const checkJobs = (config: SyncConfig, job: Option.Option<string>) =>
  Effect.gen(function* () {
    const names = (config.project.jobs ?? []).map((j) => j.name)
    const file = nodePath.join(config.projectRoot, PROJECT_FILE)
    if (names.length === 0) return yield* usage(noJobs(config))
    if (Option.isSome(job) && !names.includes(job.value)) {
      return yield* usage(
        `--job: no job named ${JSON.stringify(job.value)} in ${file}; its jobs are ${names.join(", ")}`
      )
    }
    return config
  })

/** The configuration, with its jobs (checked as above). */
export const configWithJobs = (job: Option.Option<string>) =>
  Effect.flatMap(projectConfig(), (config) => checkJobs(config, job))

/**
 * Runs a program of the project's jobs (their code loaded only now) on its store, once the configuration is
 * checked to have them.
 */
const withJobs = <A, E>(job: Option.Option<string>, program: (jobs: Jobs) => Effect.Effect<A, E>) =>
  withProgram(
    () => import("../programs/jobs/jobs.js"),
    (J, config) =>
      Effect.zipRight(checkJobs(config, job), Effect.flatMap(J.Jobs, program)).pipe(
        Effect.provide(J.Jobs.layerFromConfig)
      )
  )

/** A program of the jobs' store with no check of the configured jobs: what reads the record of past runs. */
const storeOf = <A, E>(program: (jobs: Jobs) => Effect.Effect<A, E>) =>
  withProgram(
    () => import("../programs/jobs/jobs.js"),
    (J) => Effect.flatMap(J.Jobs, program).pipe(Effect.provide(J.Jobs.layerFromConfig))
  )

const onceText = (results: ReadonlyArray<OnceResult>) =>
  table(
    ["JOB", "RESULT", "FIRE", "DURATION", "NOTE"],
    results.map((r) => [
      r.job,
      r.result === "ran" ? (r.status ?? "") : r.result,
      r.scheduled_at ?? "",
      r.duration_ms === undefined ? "" : `${r.duration_ms} ms`,
      r.error ?? r.summary ?? r.reason ?? (r.next === undefined ? "" : `next ${r.next}`)
    ])
  )

const runOnce = (job: Option.Option<string>) =>
  Effect.gen(function* () {
    const results = yield* withJobs(job, (jobs) => jobs.run({ once: true, only: Option.getOrUndefined(job) }))
    const failed = results.filter((r) => (r.result === "ran" && r.status !== "succeeded") || r.result === "store-error")
    yield* emit(
      { runs: results },
      () => onceText(results),
      failed.length === 0
        ? Effect.void
        : Effect.fail(
            new CommandFailed({
              command: "agentsync jobs run --once",
              exitCode: 1,
              stderr: failed.map((r) => `${r.job}: ${r.error ?? r.status ?? r.result}`).join("\n")
            })
          )
    )
  })

const run = Command.make(
  "run",
  {
    once: Options.boolean("once").pipe(
      Options.withDescription("run the jobs that are due (or --job, now) once and exit: for cron or a systemd timer")
    ),
    job: jobOption
  },
  (o) =>
    Effect.gen(function* () {
      if (Option.isSome(o.job) && !o.once)
        return yield* usage("--job goes with --once (the scheduler runs every enabled job)")
      if (o.once) return yield* runOnce(o.job)
      // Until SIGINT or SIGTERM, which let the running job finish (bounded by its timeout) before the exit.
      yield* runsUntilStopped
      // A scheduler's runs are logged, not drawn as progress.
      yield* Effect.provideService(
        withJobs(o.job, (jobs) => jobs.run()),
        ProgressReporter,
        silentProgress
      )
    })
).pipe(
  Command.withDescription(
    "run the scheduler until SIGINT/SIGTERM (a running job finishes first); one JSON line per event on stderr; --once for one pass"
  )
)

const listText = (jobs: ReadonlyArray<JobListing>) =>
  table(
    ["NAME", "RUN", "SCHEDULE", "TZ", "NEXT", "LAST", "RESULT"],
    jobs.map((j) => [
      j.name,
      j.run,
      j.schedule,
      j.tz,
      j.next ?? "disabled",
      j.last?.scheduled_at ?? "never",
      j.last === null
        ? ""
        : j.last.status === "running"
          ? `running on ${j.last.owner}`
          : (j.last.error ?? j.last.status)
    ])
  )

const list = Command.make("list", {}, () =>
  Effect.gen(function* () {
    // Listing nothing is not an error: the same document, empty, and a line saying how to add one. A broken
    // configuration still fails as it reads.
    const config = yield* projectConfig()
    if ((config.project.jobs ?? []).length === 0) return yield* emit({ jobs: [] }, () => noJobs(config))
    const jobs = yield* withJobs(Option.none(), (jobs) => jobs.list())
    yield* emit({ jobs }, () => listText(jobs))
  })
).pipe(Command.withDescription("each job: its schedule, time zone, next fire, and its last run with the result"))

/** A run as `jobs history` shows it. */
type JobRun = Effect.Effect.Success<ReturnType<Jobs["history"]>>[number]

const historyText = (runs: ReadonlyArray<JobRun>) =>
  tableOf(runs, "no runs yet", ["JOB", "FIRE", "TRIGGER", "STATUS", "DURATION", "OWNER", "NOTE"], (r) => [
    r.job,
    r.scheduled_at,
    r.trigger,
    r.status,
    r.duration_ms === undefined ? "" : `${r.duration_ms} ms`,
    r.owner,
    r.error ?? r.summary ?? ""
  ])

const history = Command.make(
  "history",
  {
    job: jobOption,
    limit: Options.integer("limit").pipe(
      Options.withDescription("how many runs, newest first"),
      Options.withDefault(20)
    )
  },
  (o) =>
    Effect.gen(function* () {
      if (o.limit < 1) return yield* usage("--limit: at least 1")
      // No jobs configured, none asked for: the runs the store still holds (of jobs since removed), else a line
      // saying there are none and how to add a job; not an error.
      const config = yield* projectConfig()
      if ((config.project.jobs ?? []).length === 0 && Option.isNone(o.job)) {
        const runs = yield* storeOf((jobs) => jobs.history({ limit: o.limit }))
        return yield* emit({ runs }, () => (runs.length === 0 ? `no runs: ${noJobs(config)}` : historyText(runs)))
      }
      const runs = yield* withJobs(o.job, (jobs) => jobs.history({ job: Option.getOrUndefined(o.job), limit: o.limit }))
      yield* emit({ runs }, () => historyText(runs))
    })
).pipe(Command.withDescription("the runs recorded, newest first: fire, trigger, status, duration, who ran it"))

export const jobs = Command.make("jobs").pipe(
  Command.withDescription(
    "scheduled jobs from agentsync.yaml: on this machine (.agentsync/jobs.json) or, with DATABASE_URL, shared by any number of runners"
  ),
  Command.withSubcommands([run, list, history])
)
