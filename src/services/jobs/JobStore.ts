/** The JobStore port: where runs of scheduled jobs are claimed and recorded, in memory, in a state file on one machine, or in Postgres. */
import * as fs from "node:fs/promises"
import * as nodePath from "node:path"
import { Context, Effect, Either, Layer, Option, Ref, Schema, type Scope } from "effect"
import {
  type Claim,
  type ClaimRequest,
  claimIn,
  expireAllIn,
  finishIn,
  heartbeatIn,
  historyIn,
  type JobRun,
  JobRuns,
  lastFireIn,
  type Outcome
} from "../../domain/jobs/runs.js"
import { type DatabaseError, InvalidInput, IoError, ioKindOf, type SyncInProgress } from "../../errors.js"
import * as ProcessLock from "../ProcessLock.js"
import { writeFileAtomic } from "../Workspace.js"

export type JobStoreError = DatabaseError | IoError | InvalidInput

export interface JobStoreShape {
  /** Where the runs live, for messages: a file path, or the database. */
  readonly describe: string
  /**
   * Held for as long as a scheduler runs. On one machine: the run lock, so that two schedulers never run at once
   * (runs the last holder left `running` are then expired). Where claims coordinate runners: nothing.
   */
  readonly runner: Effect.Effect<void, SyncInProgress | JobStoreError, Scope.Scope>
  /** The latest fire recorded for a job, whatever became of it: the schedule resumes after it. */
  readonly lastFire: (job: string) => Effect.Effect<Option.Option<number>, JobStoreError>
  /** Claims a fire; exactly one claim of a (job, fire) is ever `Claimed`. */
  readonly claim: (request: ClaimRequest) => Effect.Effect<Claim, JobStoreError>
  /** Renews the lease of a claimed run; false when it is no longer this owner's. */
  readonly heartbeat: (
    job: string,
    scheduledAt: number,
    owner: string,
    leaseUntil: number
  ) => Effect.Effect<boolean, JobStoreError>
  /** Records how a claimed run ended; false when it was no longer this owner's. */
  readonly finish: (
    job: string,
    scheduledAt: number,
    owner: string,
    outcome: Outcome
  ) => Effect.Effect<boolean, JobStoreError>
  /** Runs newest first, of one job or all. */
  readonly history: (options: {
    readonly job?: string | undefined
    readonly limit: number
  }) => Effect.Effect<ReadonlyArray<JobRun>, JobStoreError>
  /** The newest run of every job that has one. */
  readonly latestRuns: () => Effect.Effect<ReadonlyMap<string, JobRun>, JobStoreError>
}

export class JobStore extends Context.Tag("agentsync/JobStore")<JobStore, JobStoreShape>() {}

const latestOf = (runs: ReadonlyArray<JobRun>): ReadonlyMap<string, JobRun> => {
  const out = new Map<string, JobRun>()
  for (const r of runs) {
    const seen = out.get(r.job)
    if (seen === undefined || r.scheduled_at > seen.scheduled_at) out.set(r.job, r)
  }
  return out
}

/** A store over a list of runs that `read` loads and `write` saves (a Ref, or a file), one update at a time. */
const overList = (
  describe: string,
  read: Effect.Effect<ReadonlyArray<JobRun>, JobStoreError>,
  write: (runs: ReadonlyArray<JobRun>) => Effect.Effect<void, JobStoreError>,
  runner: JobStoreShape["runner"]
): JobStoreShape => {
  const one = Effect.unsafeMakeSemaphore(1)
  const update = <A>(f: (runs: ReadonlyArray<JobRun>) => readonly [ReadonlyArray<JobRun>, A]) =>
    one.withPermits(1)(
      Effect.flatMap(read, (runs) => {
        const [next, result] = f(runs)
        return next === runs ? Effect.succeed(result) : Effect.as(write(next), result)
      })
    )
  return {
    describe,
    runner,
    lastFire: (job) => Effect.map(read, (runs) => Option.fromNullable(lastFireIn(runs, job))),
    claim: (request) => update((runs) => claimIn(runs, request)),
    heartbeat: (job, at, owner, leaseUntil) => update((runs) => heartbeatIn(runs, job, at, owner, leaseUntil)),
    finish: (job, at, owner, outcome) => update((runs) => finishIn(runs, job, at, owner, outcome)),
    history: ({ job, limit }) => Effect.map(read, (runs) => historyIn(runs, job, limit)),
    latestRuns: () => Effect.map(read, latestOf)
  }
}

/** In memory, shared by every scheduler given the same store: for tests and for a library user's own programs. */
export const makeMemory = Effect.map(Ref.make<ReadonlyArray<JobRun>>([]), (ref) =>
  overList("memory", Ref.get(ref), (runs) => Ref.set(ref, runs), Effect.void)
)

export const layerMemory: Layer.Layer<JobStore> = Layer.effect(JobStore, makeMemory)

// ---------------------------------------------------------------------------------------------------------
// One machine: `.agentsync/jobs.json`, written atomically, and the run lock `.agentsync/jobs.lock`.

const StateFile = Schema.parseJson(Schema.Struct({ version: Schema.Literal(1), runs: JobRuns }))

/** The state file and the run lock of a project. */
export const statePaths = (projectRoot: string) => ({
  state: nodePath.join(projectRoot, ".agentsync", "jobs.json"),
  lock: nodePath.join(projectRoot, ".agentsync", "jobs.lock")
})

export const makeFile = (projectRoot: string): JobStoreShape => {
  const { state, lock } = statePaths(projectRoot)
  const read = Effect.tryPromise({
    try: () =>
      fs.readFile(state, "utf8").catch((e: unknown) => (ioKindOf(e) === "NotFound" ? undefined : Promise.reject(e))),
    catch: (cause) => new IoError({ path: state, reason: "cannot read the jobs state", cause })
  }).pipe(
    Effect.flatMap((text) => {
      if (text === undefined) return Effect.succeed<ReadonlyArray<JobRun>>([])
      const decoded = Schema.decodeUnknownEither(StateFile)(text)
      return Either.isRight(decoded)
        ? Effect.succeed(decoded.right.runs)
        : Effect.fail(
            new InvalidInput({
              file: state,
              reason: `not a jobs state file (${decoded.left.message.split("\n")[0]}); move it away to start afresh`
            })
          )
    })
  )
  const write = (runs: ReadonlyArray<JobRun>) =>
    Effect.flatMap(Schema.encode(StateFile)({ version: 1, runs }).pipe(Effect.orDie), (text) =>
      writeFileAtomic(state, text)
    )
  const runner = Effect.gen(function* () {
    yield* ProcessLock.acquire(lock, "jobs run")
    // Holding the lock, this is the only scheduler: what the last one left running will never finish.
    const runs = yield* read
    const now = yield* Effect.clockWith((c) => c.currentTimeMillis)
    const expired = expireAllIn(runs, now)
    if (expired.some((r, i) => r !== runs[i])) yield* write(expired)
  })
  return overList(state, read, write, runner)
}

export const layerFile = (projectRoot: string): Layer.Layer<JobStore> => Layer.succeed(JobStore, makeFile(projectRoot))
