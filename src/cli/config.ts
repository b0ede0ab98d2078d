/** `agentsync config`: the configuration in force and where each value came from (secrets only as set or unset). */
import * as nodePath from "node:path"
import * as Command from "@effect/cli/Command"
import { Config, Effect, Option } from "effect"
import { PROJECT_FILE } from "../config.js"
import { emit, table } from "./output.js"
import { globals, projectConfig } from "./root.js"

interface Row {
  readonly setting: string
  readonly value: string | null
  readonly origin: string
}

/** The origin of a setting read from `variable`, else the file's `field`, else a default. */
const origin = (fromEnv: boolean, variable: string, inFile: boolean, field: string, fallback = "default") =>
  fromEnv ? `env ${variable}` : inFile ? `${PROJECT_FILE} ${field}` : fallback

const envSet = (name: string) => Effect.map(Config.option(Config.string(name)), Option.isSome)

export const config = Command.make("config", {}, () =>
  Effect.gen(function* () {
    const g = yield* globals
    const c = yield* projectConfig()
    const p = c.project
    const env = yield* Effect.all({
      tenant: envSet("AGENTSYNC_TENANT_ID"),
      api: envSet("AGENTSYNC_API_URL"),
      direct: envSet("AGENTSYNC_DIRECT_URL"),
      token: envSet("AGENTSYNC_TOKEN"),
      database: envSet("DATABASE_URL"),
      cloud: envSet("AGENTSYNC_CLOUD_DATABASE_URL"),
      lease: envSet("AGENTSYNC_JOBS_LEASE")
    })
    const endpointEnv = env.api || env.direct
    const rows: ReadonlyArray<Row> = [
      {
        setting: "project root",
        value: c.projectRoot,
        origin: g.services === undefined ? "working directory" : "flag --services"
      },
      {
        setting: "services",
        value: c.servicesPath,
        origin:
          g.services !== undefined
            ? "flag --services"
            : p.services !== undefined
              ? `${PROJECT_FILE} services`
              : "default"
      },
      {
        setting: "tenant id",
        value: c.tenantId ?? null,
        origin: origin(env.tenant, "AGENTSYNC_TENANT_ID", p.tenant_id !== undefined, "tenant_id", "unset")
      },
      {
        setting: "api url",
        value: c.apiUrl ?? null,
        origin: origin(endpointEnv, "AGENTSYNC_API_URL", p.api_url !== undefined, "api_url", "unset")
      },
      {
        setting: "direct url",
        value: c.directUrl ?? null,
        origin: origin(endpointEnv, "AGENTSYNC_DIRECT_URL", p.direct_url !== undefined, "direct_url", "unset")
      },
      { setting: "token", value: env.token ? "set" : "unset", origin: env.token ? "env AGENTSYNC_TOKEN" : "unset" },
      {
        setting: "project database",
        value: env.database ? "set" : `embedded under ${nodePath.join(c.projectRoot, ".agentsync", "pgdata")}`,
        origin: env.database ? "env DATABASE_URL" : "default"
      },
      {
        setting: "cloud database",
        value: env.cloud ? "set" : "unset",
        origin: env.cloud ? "env AGENTSYNC_CLOUD_DATABASE_URL" : "unset"
      },
      {
        setting: "deploy",
        value: p.deploy === undefined ? null : (p.deploy.app ?? "configured"),
        origin: p.deploy === undefined ? "unset" : `${PROJECT_FILE} deploy`
      },
      {
        setting: "jobs",
        value: String((p.jobs ?? []).length),
        origin: p.jobs === undefined ? "unset" : `${PROJECT_FILE} jobs`
      },
      {
        setting: "jobs lease",
        value: env.lease ? "set" : "60s",
        origin: env.lease ? "env AGENTSYNC_JOBS_LEASE" : "default"
      }
    ]
    yield* emit({ file: nodePath.join(c.projectRoot, PROJECT_FILE), settings: rows }, () =>
      [
        table(
          ["SETTING", "VALUE", "FROM"],
          rows.map((r) => [r.setting, r.value ?? "-", r.origin])
        ),
        "precedence: flags > environment > agentsync.yaml > defaults; secrets are shown only as set or unset"
      ].join("\n")
    )
  })
).pipe(Command.withDescription("print the configuration in force and where each value came from"))
