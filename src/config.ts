/** SyncConfig: the project's settings from `agentsync.yaml` and the environment, with a builder for library use. */
import * as fs from "node:fs/promises"
import * as nodePath from "node:path"
import { Config, Context, Effect, Either, Layer, Option, Redacted, Schedule, Schema } from "effect"
import { decodeYamlFile } from "./domain/formats.js"
import { JobEntries, JobEntry } from "./domain/jobs/spec.js"
import { InvalidInput, IoError, ioKindOf } from "./errors.js"
import { locateProject, PROJECT_FILE } from "./locate.js"

export { PROJECT_FILE }

/** A scheduled job in `agentsync.yaml` (its Schema lives with the scheduler's domain). */
export const JobSpec = JobEntry
export type JobSpec = JobEntry

/** `deploy:` in `agentsync.yaml`: what `agentsync deploy` builds, where it pushes, and the health gate it asks for. */
export const DeploySpec = Schema.Struct({
  app: Schema.optional(Schema.String),
  registry: Schema.optional(Schema.String),
  /** Relative to the project root; default `Dockerfile`. */
  dockerfile: Schema.optional(Schema.String),
  /** The build context, relative to the project root; default `.`. */
  context: Schema.optional(Schema.String),
  /** Commands run before the image build, each an argv (`[npm, run, build]`), in the project root. */
  build: Schema.optional(Schema.Array(Schema.NonEmptyArray(Schema.String))),
  builder: Schema.optional(Schema.Literal("docker", "buildah")),
  health: Schema.optional(
    Schema.Struct({
      path: Schema.String.pipe(Schema.pattern(/^\/[^\s]*$/, { message: () => "a path starting with '/'" })),
      /** Seconds, or a number with a unit: `30s`, `2m`. */
      timeout: Schema.optional(
        Schema.Union(
          Schema.Positive,
          Schema.String.pipe(Schema.pattern(/^\d+(ms|s|m)$/, { message: () => "seconds, or a number with ms, s or m" }))
        )
      )
    })
  )
})
export type DeploySpec = typeof DeploySpec.Type

/** What `agentsync.yaml` may hold. A token never lives here: it comes from the environment. */
export const ProjectFile = Schema.Struct({
  tenant_id: Schema.optional(Schema.String),
  api_url: Schema.optional(Schema.String),
  direct_url: Schema.optional(Schema.String),
  services: Schema.optional(Schema.String),
  deploy: Schema.optional(DeploySpec),
  jobs: Schema.optionalWith(JobEntries, { exact: true })
})
export type ProjectFile = typeof ProjectFile.Type

export type SyncDirection = "Push" | "Pull"

/** A retry schedule for the tenant API's calls: fed each transient failure, it decides the waits and when to stop. */
const RetrySchedule = Schema.declare((u: unknown): u is Schedule.Schedule<unknown, unknown> => Schedule.isSchedule(u), {
  identifier: "Schedule"
})

export class SyncConfig extends Schema.Class<SyncConfig>("SyncConfig")({
  /** The folder holding `agentsync.yaml` (or the working directory). */
  projectRoot: Schema.String,
  /** The `services/` tree. */
  servicesPath: Schema.String,
  tenantId: Schema.optional(Schema.String),
  apiUrl: Schema.optional(Schema.String),
  directUrl: Schema.optional(Schema.String),
  token: Schema.optional(Schema.Redacted(Schema.String)),
  databaseUrl: Schema.optional(Schema.Redacted(Schema.String)),
  cloudDatabaseUrl: Schema.optional(Schema.Redacted(Schema.String)),
  direction: Schema.optionalWith(Schema.Literal("Push", "Pull"), { default: () => "Push" as const }),
  dryRun: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  project: Schema.optionalWith(ProjectFile, { default: () => ({}) }),
  /** How the tenant API's calls are retried (default: `AGENTSYNC_RETRY_*`, else four retries with backoff). */
  retry: Schema.optional(RetrySchedule)
}) {
  /**
   * A config for library use, without files or environment: `builder(servicesPath)` then `.direct(origin, token)`
   * or `.relay(apiUrl, tenantId, token)` (or neither, for local and database sync only). The four-argument form
   * `builder(tenantId, apiUrl, token, servicesPath)` is the relay mode.
   */
  static builder(servicesPath: string): SyncConfigBuilder
  static builder(tenantId: string, apiUrl: string, token: string, servicesPath: string): SyncConfigBuilder
  static builder(...args: [string] | [string, string, string, string]): SyncConfigBuilder {
    const servicesPath = nodePath.resolve(args.length === 1 ? args[0] : args[3])
    const builder = new SyncConfigBuilder({ projectRoot: nodePath.dirname(servicesPath), servicesPath })
    return args.length === 1 ? builder : builder.relay(args[1], args[0], args[2])
  }
}

type Fields = ConstructorParameters<typeof SyncConfig>[0]

export class SyncConfigBuilder {
  constructor(private readonly fields: Fields) {}
  private with(patch: { readonly [K in keyof Fields]?: Fields[K] | undefined }) {
    return new SyncConfigBuilder({ ...this.fields, ...patch } as Fields)
  }
  /** Direct sync: the tenant's own server at `origin` (AGENTSYNC_DIRECT_URL). */
  direct(origin: string, token: string) {
    return this.with({ directUrl: origin, apiUrl: undefined, tenantId: undefined, token: Redacted.make(token) })
  }
  /** Cloud relay: a shared API naming the tenant (AGENTSYNC_API_URL and AGENTSYNC_TENANT_ID). */
  relay(apiUrl: string, tenantId: string, token: string) {
    return this.with({ apiUrl, tenantId, directUrl: undefined, token: Redacted.make(token) })
  }
  /** Retries of the tenant API's calls as an Effect `Schedule`, e.g. `Schedule.exponential("200 millis").pipe(Schedule.intersect(Schedule.recurs(5)))`. */
  withRetry(retry: Schedule.Schedule<unknown, unknown>) {
    return this.with({ retry })
  }
  withDirection(direction: SyncDirection) {
    return this.with({ direction })
  }
  withDryRun(dryRun: boolean) {
    return this.with({ dryRun })
  }
  withDirectUrl(directUrl: string) {
    return this.with({ directUrl })
  }
  withDatabaseUrl(url: string) {
    return this.with({ databaseUrl: Redacted.make(url) })
  }
  withCloudDatabaseUrl(url: string) {
    return this.with({ cloudDatabaseUrl: Redacted.make(url) })
  }
  build(): SyncConfig {
    return new SyncConfig(
      Object.fromEntries(Object.entries(this.fields).filter(([, v]) => v !== undefined)) as unknown as Fields
    )
  }
}

/** The configuration in force for a program. */
export class CurrentConfig extends Context.Tag("agentsync/SyncConfig")<CurrentConfig, SyncConfig>() {}

const readProjectFile = (file: string): Effect.Effect<ProjectFile | undefined, InvalidInput | IoError> =>
  Effect.gen(function* () {
    const text = yield* Effect.tryPromise({
      try: () =>
        fs.readFile(file, "utf8").catch((e: unknown) => {
          if (ioKindOf(e) === "NotFound") return undefined
          throw e
        }),
      catch: (cause) => new IoError({ path: file, reason: "cannot read", cause })
    })
    if (text === undefined) return undefined
    // Through the same YAML reader as the services/ files: every problem, of syntax or of schema, names its line.
    const decoded = decodeYamlFile(ProjectFile, { path: file, text })
    if (Either.isLeft(decoded)) return yield* oneError(decoded.left.map(tokenProblem))
    return decoded.right
  })

/** A `token` key is refused as any unknown key is, with a pointer to where a token does live. */
const tokenProblem = (p: InvalidInput): InvalidInput =>
  p.field === "token" || p.field === "api_token"
    ? new InvalidInput({
        file: p.file,
        line: p.line,
        field: p.field,
        reason: "a token never lives in the project file; set AGENTSYNC_TOKEN in the environment"
      })
    : p

/** Every problem of the file in one error: the first as file:line, the others on the lines below it. */
const oneError = (problems: ReadonlyArray<InvalidInput>): Effect.Effect<never, InvalidInput> => {
  const [first, ...rest] = problems
  if (first === undefined || rest.length === 0)
    return Effect.fail(first ?? new InvalidInput({ reason: "invalid project file" }))
  const reason = [first.reason, ...rest.map((p) => p.message)].join("\n")
  return Effect.fail(new InvalidInput({ file: first.file, line: first.line, field: first.field, reason }))
}

const env = {
  tenantId: Config.option(Config.string("AGENTSYNC_TENANT_ID")),
  apiUrl: Config.option(Config.string("AGENTSYNC_API_URL")),
  directUrl: Config.option(Config.string("AGENTSYNC_DIRECT_URL")),
  token: Config.option(Config.redacted("AGENTSYNC_TOKEN")),
  databaseUrl: Config.option(Config.redacted("DATABASE_URL")),
  cloudDatabaseUrl: Config.option(Config.redacted("AGENTSYNC_CLOUD_DATABASE_URL"))
}

export interface LoadOptions {
  /** `--services DIR`: the services tree, or a project root holding `agentsync.yaml`. */
  readonly services?: string | undefined
  /** Where to start; defaults to the working directory. */
  readonly cwd?: string | undefined
}

/**
 * Loads the configuration: `agentsync.yaml` of the project root, then the environment on top.
 * `--services` may name the tree itself or a project root (a folder holding `agentsync.yaml` or `services/`).
 */
export const loadConfig = Effect.fn("SyncConfig.load")(function* (options: LoadOptions = {}) {
  const { projectRoot, servicesOverride } = locateProject(options.cwd ?? process.cwd(), options.services)
  const project = (yield* readProjectFile(nodePath.join(projectRoot, PROJECT_FILE))) ?? {}
  const e = yield* Effect.all(env)
  const opt = <A>(o: Option.Option<A>, fallback: A | undefined) => Option.getOrUndefined(o) ?? fallback
  const endpointFromEnv = Option.isSome(e.apiUrl) || Option.isSome(e.directUrl)
  const fields = {
    projectRoot,
    servicesPath: servicesOverride ?? nodePath.resolve(projectRoot, project.services ?? "services"),
    tenantId: opt(e.tenantId, project.tenant_id),
    // The endpoint is one setting: an environment naming either URL overrides both of the file's.
    apiUrl: endpointFromEnv ? Option.getOrUndefined(e.apiUrl) : project.api_url,
    directUrl: endpointFromEnv ? Option.getOrUndefined(e.directUrl) : project.direct_url,
    token: opt(e.token, undefined),
    databaseUrl: opt(e.databaseUrl, undefined),
    cloudDatabaseUrl: opt(e.cloudDatabaseUrl, undefined),
    project
  }
  return new SyncConfig(
    Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as unknown as Fields
  )
})

export const layer = (options: LoadOptions = {}) => Layer.effect(CurrentConfig, loadConfig(options))
