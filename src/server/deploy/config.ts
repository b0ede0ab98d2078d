/** The server operator's deploy settings, from the environment: release hook, health URL, registry credential, lease. */
import { Config, ConfigError, Context, Effect, Either, Layer, Option, Redacted, Schema } from "effect"
import type { Argv } from "../../domain/deploy/commands.js"
import { credentialForms, makeRedactor, type Redactor } from "../../domain/deploy/redact.js"
import { hookTemplate } from "../../domain/deploy/release.js"

export interface DeployServerSettings {
  /** The release hook's argv template (`{image}`, `{digest}`, `{release}`, `{tenant}`); none: releases are recorded only. */
  readonly hook: Option.Option<Argv>
  /** Where the deployed app answers; a release's health path is appended to it. */
  readonly healthUrl: Option.Option<string>
  readonly registry: Option.Option<{
    readonly host: Option.Option<string>
    readonly username: string
    readonly password: Redacted.Redacted<string>
  }>
  /** How long a deploy lock lasts without a heartbeat. */
  readonly leaseSeconds: number
  /** Default and cap of a release's health wait. */
  readonly healthTimeoutSeconds: number
  readonly healthIntervalMillis: number
  /** Masks the registry password, the database URL and every variable named in AGENTSYNC_DEPLOY_REDACT. */
  readonly redact: Redactor
  /** The hook's environment: the server's, less the server's own secrets (registry password, database URLs, token). */
  readonly hookEnv: Readonly<Record<string, string>>
}

/** What the server keeps to itself: a hook never sees these variables. */
export const SERVER_SECRETS = [
  "AGENTSYNC_REGISTRY_PASSWORD",
  "DATABASE_URL",
  "AGENTSYNC_SERVE_DATABASE_URL",
  "AGENTSYNC_TOKEN"
]

export class DeployServerConfig extends Context.Tag("agentsync/server/DeployServerConfig")<
  DeployServerConfig,
  DeployServerSettings
>() {}

const HookArgv = Schema.parseJson(Schema.Array(Schema.String))

const hookConfig = Config.string("AGENTSYNC_DEPLOY_HOOK").pipe(
  Config.mapOrFail((text) => {
    const parsed = Schema.decodeUnknownEither(HookArgv)(text)
    if (Either.isLeft(parsed)) {
      return Either.left(
        ConfigError.InvalidData([], `a JSON array of strings, e.g. ["fly","deploy","--image","{image}"]`)
      )
    }
    return Either.mapLeft(hookTemplate(parsed.right), (problem) => ConfigError.InvalidData([], problem))
  }),
  Config.option
)

const urlConfig = Config.string("AGENTSYNC_DEPLOY_HEALTH_URL").pipe(
  Config.validate({ message: "an http(s) URL", validation: (u) => /^https?:\/\/[^\s]+$/.test(u) }),
  Config.map((u) => u.replace(/\/+$/, "")),
  Config.option
)

const settings = Effect.gen(function* () {
  const hook = yield* hookConfig
  const healthUrl = yield* urlConfig
  const username = yield* Config.option(Config.string("AGENTSYNC_REGISTRY_USERNAME"))
  const password = yield* Config.option(Config.redacted("AGENTSYNC_REGISTRY_PASSWORD"))
  const host = yield* Config.option(Config.string("AGENTSYNC_REGISTRY"))
  const leaseSeconds = yield* Config.integer("AGENTSYNC_DEPLOY_LEASE_SECONDS").pipe(
    Config.validate({ message: "between 2 and 3600", validation: (n) => n >= 2 && n <= 3600 }),
    Config.withDefault(60)
  )
  const healthTimeoutSeconds = yield* Config.integer("AGENTSYNC_DEPLOY_HEALTH_TIMEOUT_SECONDS").pipe(
    Config.withDefault(60)
  )
  const redactNames = yield* Config.array(Config.string(), "AGENTSYNC_DEPLOY_REDACT").pipe(Config.withDefault([]))
  const databaseUrl = yield* Config.option(Config.redacted("DATABASE_URL"))
  if (Option.isSome(username) !== Option.isSome(password)) {
    return yield* Effect.fail(
      ConfigError.MissingData(
        [Option.isSome(username) ? "AGENTSYNC_REGISTRY_PASSWORD" : "AGENTSYNC_REGISTRY_USERNAME"],
        "the registry credential needs both a username and a password"
      )
    )
  }
  const registry = Option.zipWith(username, password, (u, p) => ({ host, username: u, password: p }))
  const secrets: Array<string> = []
  Option.map(registry, (r) => secrets.push(...credentialForms(r.username, Redacted.value(r.password))))
  Option.map(databaseUrl, (u) => {
    const value = Redacted.value(u)
    secrets.push(value)
    const password = /^[a-z]+:\/\/[^:/@]*:([^@]+)@/i.exec(value)?.[1]
    if (password !== undefined) secrets.push(password, decodeURIComponent(password))
  })
  for (const name of redactNames) {
    const value = process.env[name.trim()]
    if (value !== undefined) secrets.push(value)
  }
  return {
    hook,
    healthUrl,
    registry,
    leaseSeconds,
    healthTimeoutSeconds,
    healthIntervalMillis: 250,
    redact: makeRedactor(secrets),
    hookEnv: Object.fromEntries(
      Object.entries(process.env).filter(
        (e): e is [string, string] => e[1] !== undefined && !SERVER_SECRETS.includes(e[0])
      )
    )
  } satisfies DeployServerSettings
})

/** The settings from the environment; a malformed variable stops the server at start, named. */
export const layer = Layer.effect(DeployServerConfig, settings)
