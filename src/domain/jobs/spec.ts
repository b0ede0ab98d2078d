/** The `jobs:` list of `agentsync.yaml`: its Schema (every check that can fail at start) and the Job it reads as. */
import { Either, Record as R, Schema } from "effect"
import { SyncKind } from "../model.js"
import { formatDuration, type JobSchedule, parseCron, parseDuration, parseEvery, parseZone } from "./schedule.js"

/** The longest timeout: a timer of more than 2^31 ms (24.8 days) would never fire. */
export const MAX_TIMEOUT = 24 * 86_400_000

/** One of the literals, with one message naming them all (rather than one per literal). */
const oneOf = <const L extends ReadonlyArray<string>>(...literals: L) =>
  Schema.Literal(...literals).annotations({
    message: (issue) => ({
      message: `expected one of ${literals.join(", ")}, got ${JSON.stringify(issue.actual)}`,
      override: true
    })
  })

const opt = <S extends Schema.Schema.All>(schema: S) => Schema.optionalWith(schema, { exact: true })

const Duration = Schema.String.pipe(
  Schema.filter(
    (text) =>
      parseDuration(text) !== undefined || `expected a duration such as 30s, 15m, 1h or 1d, got ${JSON.stringify(text)}`
  )
)

const Direction = oneOf("to_db", "to_disk")

/** What each program takes, as in its command line. */
export const JobOptions = {
  "local-sync": Schema.Struct({
    direction: opt(Direction),
    kinds: opt(Schema.Array(oneOf(...SyncKind.literals))),
    delete_orphans: opt(Schema.Boolean)
  }),
  "access-sync": Schema.Struct({ direction: opt(Direction), delete_orphans: opt(Schema.Boolean) }),
  "files-push": Schema.Struct({ delete: opt(Schema.Boolean), force: opt(Schema.Boolean) }),
  "files-pull": Schema.Struct({ delete: opt(Schema.Boolean), force: opt(Schema.Boolean) }),
  "db-push": Schema.Struct({}),
  "db-pull": Schema.Struct({}),
  "skill-sync": Schema.Struct({
    scope: opt(Schema.String),
    to_home: opt(Schema.Boolean),
    to_repo: opt(Schema.Boolean),
    prefer: opt(oneOf("home", "repo")),
    delete: opt(Schema.Boolean),
    tools: opt(Schema.Array(Schema.String))
  })
} as const

export type RunName = keyof typeof JobOptions
export const RUN_NAMES: ReadonlyArray<RunName> = R.keys(JobOptions)
export type OptionsOf<K extends RunName> = (typeof JobOptions)[K]["Type"]

const common = {
  name: Schema.String.pipe(
    Schema.filter(
      (n) =>
        /^[a-z0-9][a-z0-9_-]*$/.test(n) || `a job name is lower-case letters, digits, _ and -, got ${JSON.stringify(n)}`
    )
  ),
  cron: opt(Schema.String),
  every: opt(Duration),
  tz: opt(Schema.String),
  overlap: opt(oneOf("skip", "queue-one")),
  catch_up: opt(oneOf("none", "latest")),
  catch_up_window: opt(Duration),
  timeout: opt(
    Duration.pipe(
      Schema.filter(
        (text) =>
          (parseDuration(text) ?? 0) <= MAX_TIMEOUT ||
          `at most ${formatDuration(MAX_TIMEOUT)}, got ${JSON.stringify(text)}`
      )
    )
  ),
  enabled: opt(Schema.Boolean)
}

const entry = <K extends RunName>(run: K) =>
  Schema.Struct({
    ...common,
    run: Schema.Literal(run),
    options: opt(JobOptions[run])
  })

/** A job entry's fields as written; `run` picks which options it may carry. */
const Entry = Schema.Union(
  entry("local-sync"),
  entry("access-sync"),
  entry("files-push"),
  entry("files-pull"),
  entry("db-push"),
  entry("db-pull"),
  entry("skill-sync")
)
type Entry = typeof Entry.Type

/** The checks that involve several fields; each names the field to point at. */
const crossCheck = (e: Entry): { readonly path: ReadonlyArray<string>; readonly message: string } | undefined => {
  const firstOption = e.options === undefined ? undefined : Object.keys(e.options)[0]
  if (firstOption !== undefined && Object.keys(JobOptions[e.run].fields).length === 0) {
    return { path: ["options", firstOption], message: `${e.run} takes no options` }
  }
  if ((e.cron === undefined) === (e.every === undefined)) {
    return { path: e.cron === undefined ? [] : ["every"], message: "give exactly one of cron or every" }
  }
  if (e.every !== undefined && e.tz !== undefined) {
    return { path: ["tz"], message: "tz applies to cron; every counts from 1970-01-01T00:00Z" }
  }
  if (e.catch_up === "none" && e.catch_up_window !== undefined) {
    return { path: ["catch_up_window"], message: "catch_up_window applies to catch_up: latest" }
  }
  const zone = e.tz === undefined ? undefined : parseZone(e.tz)
  if (zone !== undefined && Either.isLeft(zone)) return { path: ["tz"], message: zone.left }
  if (e.cron !== undefined) {
    const parsed = parseCron(e.cron, e.tz)
    if (Either.isLeft(parsed)) return { path: ["cron"], message: parsed.left }
  }
  return undefined
}

export const JobEntry = Entry.pipe(Schema.filter((e) => crossCheck(e) ?? true))
export type JobEntry = typeof JobEntry.Type

/** The list: entries plus names that are unique. */
export const JobEntries = Schema.Array(JobEntry).pipe(
  Schema.filter((entries) => {
    const seen = new Set<string>()
    for (const [i, e] of entries.entries()) {
      if (seen.has(e.name))
        return { path: [i, "name"], message: `another job is already named ${JSON.stringify(e.name)}` }
      seen.add(e.name)
    }
    return true
  })
)

export type Overlap = "skip" | "queue-one"
export type CatchUp = "none" | "latest"

/** How a job is scheduled, whatever it runs (a configured job, or a library user's own program). */
export interface JobTiming {
  readonly name: string
  readonly schedule: JobSchedule
  /** A fire that comes while the previous run is still going: dropped, or run once when it ends. */
  readonly overlap: Overlap
  /** Fires missed while no scheduler ran: dropped, or the latest run once if it is within `catchUpWindow`. */
  readonly catchUp: CatchUp
  readonly catchUpWindow: number
  /** A run longer than this is interrupted and recorded as timed out. */
  readonly timeout: number
  readonly enabled: boolean
}

/** A configured job: its timing and the program it runs with that program's options. */
export type Job = JobTiming & { [K in RunName]: { readonly run: K; readonly options: OptionsOf<K> } }[RunName]

export const DEFAULTS = {
  tz: "UTC",
  overlap: "skip",
  catchUp: "latest",
  catchUpWindow: 86_400_000,
  timeout: 3_600_000
} as const

/** Decoded timing for the parts of a job that are not its program (shared with library-made jobs). */
export const timingOf = (e: {
  readonly name: string
  readonly cron?: string
  readonly every?: string
  readonly tz?: string
  readonly overlap?: Overlap
  readonly catch_up?: CatchUp
  readonly catch_up_window?: string
  readonly timeout?: string
  readonly enabled?: boolean
}): Either.Either<JobTiming, string> =>
  Either.map(
    e.cron !== undefined ? parseCron(e.cron, e.tz ?? DEFAULTS.tz) : parseEvery(e.every ?? ""),
    (schedule: JobSchedule) => ({
      name: e.name,
      schedule,
      overlap: e.overlap ?? DEFAULTS.overlap,
      catchUp: e.catch_up ?? DEFAULTS.catchUp,
      catchUpWindow:
        e.catch_up_window === undefined
          ? DEFAULTS.catchUpWindow
          : (parseDuration(e.catch_up_window) ?? DEFAULTS.catchUpWindow),
      timeout: e.timeout === undefined ? DEFAULTS.timeout : (parseDuration(e.timeout) ?? DEFAULTS.timeout),
      enabled: e.enabled ?? true
    })
  )

/** A decoded entry as a Job (the Schema has already checked everything that could make this fail). */
export const toJob = (e: JobEntry): Job => {
  const timing = Either.getOrThrowWith(timingOf(e), (reason) => new Error(`job ${e.name}: ${reason}`))
  return { ...timing, run: e.run, options: e.options ?? {} } as Job
}
