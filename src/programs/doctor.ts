/** `agentsync doctor`: checks of what a project needs (configuration, tree, token, server, databases, git, tool homes), each with a fix. */
import * as nodePath from "node:path"
import * as FileSystem from "@effect/platform/FileSystem"
import { Cause, Duration, Effect, Exit, Layer, Option } from "effect"
import { CurrentConfig, type LoadOptions, loadConfig, type SyncConfig } from "../config.js"
import { MEMBERSHIP } from "../domain/membership.js"
import { beforeFirst, escapeHidden } from "../domain/text.js"
import { UNREADABLE_FIX } from "../services/nameBytes.js"
import { Shell, type ShellShape, layer as shellLayer } from "../services/Shell.js"
import { serverHealth } from "./status.js"

/** ok; warn: works, but worth a look; fail: something will not work; skip: not configured or not checkable. */
export type CheckState = "ok" | "warn" | "fail" | "skip"

export interface Check {
  readonly check: string
  readonly state: CheckState
  readonly detail: string
  /** What to do about it (absent when ok). */
  readonly fix?: string
}

export interface DoctorReport {
  readonly checks: ReadonlyArray<Check>
  /** No check failed. */
  readonly ok: boolean
}

const ok = (check: string, detail: string): Check => ({ check, state: "ok", detail })
const skip = (check: string, detail: string): Check => ({ check, state: "skip", detail })
const bad = (check: string, state: "warn" | "fail", detail: string, fix: string): Check => ({
  check,
  state,
  detail,
  fix
})

const firstLine = (cause: Cause.Cause<unknown>) => {
  const e = Cause.squash(cause)
  return beforeFirst(e instanceof Error ? e.message : String(e), "\n").slice(0, 300)
}

/** Runs a check within `timeout`; a check that fails unexpectedly or takes too long fails with `fix`. */
const guarded = <R>(
  check: string,
  timeout: Duration.Duration,
  fix: string,
  run: Effect.Effect<Check, unknown, R>
): Effect.Effect<Check, never, R> =>
  run.pipe(
    Effect.exit,
    Effect.map((exit) => (Exit.isSuccess(exit) ? exit.value : bad(check, "fail", firstLine(exit.cause), fix))),
    Effect.timeoutTo({
      duration: timeout,
      onTimeout: () => bad(check, "fail", `no answer within ${Duration.format(timeout)}`, fix),
      onSuccess: (c) => c
    })
  )

/** How many names that are not UTF-8 the services check names; `validate` names each. */
const NAMED = 3

/** What the services check says of the names file sync refuses that the tree's reading left unread (sorted paths). */
const notUtf8Warning = (paths: ReadonlyArray<string>) => ({
  detail: `${paths.length === 1 ? "a name is" : `${paths.length} names are`} not UTF-8, which files push, pull and diff refuse: ${paths
    .slice(0, NAMED)
    .map((path) => `"${path}"`)
    .join(", ")}${paths.length > NAMED ? ` and ${paths.length - NAMED} more (agentsync validate names each)` : ""}`,
  fix: `for each name that is not UTF-8: ${UNREADABLE_FIX}`
})

/** The services tree: where it is, whether it reads, and what at its top file sync leaves out (never silently). */
const servicesCheck = (config: SyncConfig) =>
  Effect.gen(function* () {
    const name = "services path"
    const Workspace = yield* Effect.promise(() => import("../services/Workspace.js"))
    const where = yield* Effect.either(Workspace.checkServicesPath(config))
    if (where._tag === "Left")
      return bad(
        name,
        "fail",
        where.left.reason,
        "create it (agentsync init), set services: in agentsync.yaml, or pass --services DIR"
      )
    const tree = yield* Workspace.workspaceAt(config.servicesPath)
    const project = yield* tree.readProject()
    const [first] = project.errors
    if (first !== undefined)
      return bad(
        name,
        "fail",
        `${project.errors.length} problem(s), first: ${first.message}`,
        "fix the files named (agentsync validate lists every problem as file:line)"
      )
    const counts = `${config.servicesPath}: ${project.agents.length} agents, ${project.skills.length} skills, ${project.contents.length} content items`
    // File sync carries only its folders; what else is at the top, and no ignore rule names, stays here unsaid
    // (named as push, pull and diff name it).
    const left = yield* Workspace.leftOut(tree)
    // A name that is not UTF-8 where the tree was not read: local sync works, file sync refuses to run.
    const warnings = [
      ...(project.notUtf8.length === 0 ? [] : [notUtf8Warning(project.notUtf8)]),
      ...(left.length === 0
        ? []
        : [
            {
              detail: `file sync carries only its folders, not ${left.map(escapeHidden).join(", ")}`,
              fix: `move what should travel under one of ${MEMBERSHIP.join(", ")} (config/ and plugins/ carry any files), or leave it if it stays on this machine`
            }
          ])
    ]
    if (warnings.length > 0)
      return bad(
        name,
        "warn",
        [counts, ...warnings.map((w) => w.detail)].join("; "),
        warnings.map((w) => w.fix).join("; ")
      )
    return ok(name, counts)
  })

const tokenCheck = (config: SyncConfig) =>
  Effect.gen(function* () {
    const name = "token"
    if (config.directUrl === undefined && config.apiUrl === undefined)
      return skip(name, "no server configured, so no token needed")
    if (config.token === undefined)
      return bad(
        name,
        "fail",
        "AGENTSYNC_TOKEN is not set",
        "set AGENTSYNC_TOKEN to a token from `agentsync tenant create` or `agentsync token create`"
      )
    const { checkToken } = yield* Effect.promise(() => import("../services/SyncApi.js"))
    const checked = yield* Effect.either(checkToken(config.token))
    return checked._tag === "Left"
      ? bad(
          name,
          "fail",
          `AGENTSYNC_TOKEN ${checked.left.reason}`,
          "set AGENTSYNC_TOKEN to the token exactly as issued"
        )
      : ok(name, "AGENTSYNC_TOKEN is set (not shown)")
  })

const serverCheck = (config: SyncConfig) =>
  Effect.gen(function* () {
    const name = "server"
    const origin = config.directUrl ?? config.apiUrl
    if (origin === undefined)
      return skip(name, "no server configured (AGENTSYNC_DIRECT_URL, or AGENTSYNC_API_URL and AGENTSYNC_TENANT_ID)")
    const health = yield* Effect.either(serverHealth(origin))
    if (health._tag === "Left")
      return bad(
        name,
        "fail",
        `${origin} cannot be reached: ${health.left.message.split("\n")[0]}`,
        "check AGENTSYNC_DIRECT_URL (or api_url/direct_url in agentsync.yaml) and that `agentsync serve` runs there"
      )
    if (!health.right.ok)
      return bad(
        name,
        "fail",
        `${origin}: ${health.right.reason}`,
        "see the server's log; its database must be up and migrated"
      )
    if (config.token === undefined)
      return ok(name, `${origin} answers (version ${health.right.health.version}); the token was not tried`)
    const api = yield* Effect.promise(() => import("../services/SyncApi.js"))
    const tried = yield* Effect.either(
      Effect.flatMap(api.SyncApiClient, (c) => c.revisions(1)).pipe(
        Effect.provide(api.layerFromConfig.pipe(Layer.provide(Layer.succeed(CurrentConfig, config))))
      )
    )
    if (tried._tag === "Left")
      return bad(
        name,
        "fail",
        `${origin} answers, but a call with the token failed: ${tried.left.message}`,
        tried.left._tag === "Unauthorized"
          ? "the token is revoked, expired or of another server: issue one with `agentsync token create TENANT`"
          : "check the tenant id and the server's log"
      )
    return ok(name, `${origin} answers (version ${health.right.health.version}) and accepts the token`)
  })

const cloudDatabaseCheck = (config: SyncConfig) =>
  Effect.gen(function* () {
    const name = "cloud database"
    if (config.cloudDatabaseUrl === undefined) return skip(name, "AGENTSYNC_CLOUD_DATABASE_URL is not set")
    const url = config.cloudDatabaseUrl
    const [db, exp, Database] = yield* Effect.promise(() =>
      Promise.all([import("./dbSync.js"), import("../stages/db/export.js"), import("../services/ProjectDatabase.js")])
    )
    const checked = yield* Effect.either(
      Effect.scoped(Effect.flatMap(db.connect(url, "cloud"), (sql) => exp.checkSchema({ sql }, "cloud")))
    )
    return checked._tag === "Left"
      ? bad(
          name,
          "fail",
          checked.left.message,
          "check AGENTSYNC_CLOUD_DATABASE_URL; to migrate it, open it once as a project database: DATABASE_URL=<that URL> agentsync local diff"
        )
      : ok(name, `${Database.describeUrl(url)}: reachable, schema current`)
  })

const lockCheck = (config: SyncConfig) =>
  Effect.gen(function* () {
    const name = "embedded database lock"
    if (config.databaseUrl !== undefined) return skip(name, "DATABASE_URL is set: no embedded database")
    const [Database, ProcessLock] = yield* Effect.promise(() =>
      Promise.all([import("../services/ProjectDatabase.js"), import("../services/ProcessLock.js")])
    )
    const path = `${Database.embeddedDataDir(config.projectRoot)}.lock`
    const lock = yield* ProcessLock.inspect(path)
    switch (lock.state) {
      case "absent":
        return ok(name, "not held")
      case "held":
        return ok(name, `in use: ${lock.description}`)
      case "stale":
        return bad(
          name,
          "warn",
          `stale: ${lock.description}, and that process is gone`,
          `the next run takes it over by itself; or remove ${path}`
        )
    }
  })

const gitCheck = (shell: ShellShape) =>
  Effect.gen(function* () {
    const name = "git"
    const r = yield* Effect.either(shell.run("git", ["--version"]))
    if (r._tag === "Left" || r.right.exitCode !== 0)
      return bad(
        name,
        "fail",
        "git is not on PATH",
        "install git (apt-get install git, brew install git) for skill sources"
      )
    const version = new TextDecoder().decode(r.right.stdout).trim()
    const m = /(\d+)\.(\d+)/.exec(version)
    const old = m !== null && (Number(m[1]) < 2 || (Number(m[1]) === 2 && Number(m[2]) < 25))
    return old
      ? bad(name, "warn", `${version}: older than 2.25`, "upgrade git; skill sources use sparse and partial clones")
      : ok(name, version)
  })

const toolHomesCheck = (isFolder: (path: string) => Effect.Effect<boolean>) =>
  Effect.gen(function* () {
    const name = "tool homes"
    const SkillStore = yield* Effect.promise(() => import("../services/SkillStore.js"))
    const store = SkillStore.make()
    const manifest = yield* store.readManifest()
    const tools = [...new Set(manifest.units.flatMap((u) => u.tools))].sort()
    if (manifest.sources.length === 0 || tools.length === 0) return skip(name, "no skill sources configured")
    const homes = yield* Effect.forEach(tools, (t) => Effect.map(store.toolHome(t), (home) => [t, home] as const))
    const missing = yield* Effect.filter(homes, ([, home]) => Effect.map(isFolder(home), (folder) => !folder))
    const [first] = missing
    if (first !== undefined)
      return bad(
        name,
        "fail",
        `missing: ${missing.map(([t, h]) => `${t} (${h})`).join(", ")}`,
        `install the tool or create its home (mkdir -p ${first[1]}), or set AGENTSYNC_TOOL_HOME_${first[0].toUpperCase()}`
      )
    return ok(name, homes.map(([t, h]) => `${t} ${h}`).join(", "))
  })

export interface DoctorOptions extends LoadOptions {
  /** Each check's deadline (default 10 s). */
  readonly timeout?: Duration.DurationInput
}

/**
 * The doctor as a service over the ports it reads through: the shell (git) and the file system (the project
 * file, tool homes). `doctor` reads the configuration itself: a configuration that does not read is one of the
 * problems it reports, so it cannot be given one.
 */
export class Doctor extends Effect.Service<Doctor>()("agentsync/Doctor", {
  accessors: true,
  dependencies: [shellLayer],
  effect: Effect.gen(function* () {
    const shell = yield* Shell
    const fs = yield* FileSystem.FileSystem
    const isFolder = (path: string) =>
      fs.stat(path).pipe(
        Effect.map((info) => info.type === "Directory"),
        Effect.orElseSucceed(() => false)
      )
    const exists = (path: string) => fs.exists(path).pipe(Effect.orElseSucceed(() => false))

    /** Every check, each on its own and at once: one that fails or hangs does not hide the others. */
    const doctor = Effect.fn("Doctor.doctor")(function* (options: DoctorOptions = {}) {
      const timeout = Duration.decode(options.timeout ?? Duration.seconds(10))
      const loaded = yield* Effect.either(loadConfig(options))
      const projectFile = loaded._tag === "Right" ? nodePath.join(loaded.right.projectRoot, "agentsync.yaml") : ""
      const configCheck =
        loaded._tag === "Right"
          ? ok(
              "configuration",
              (yield* exists(projectFile)) ? `${projectFile} reads` : "no agentsync.yaml: defaults and the environment"
            )
          : bad(
              "configuration",
              "fail",
              loaded.left.message,
              "fix agentsync.yaml at the line named (agentsync config shows what is in force)"
            )
      const config = Option.getRight(loaded)
      const needsConfig = (check: string, run: (c: SyncConfig) => Effect.Effect<Check, unknown>, fix: string) =>
        Option.match(config, {
          onNone: () => Effect.succeed(skip(check, "the configuration does not read")),
          onSome: (c) => guarded(check, timeout, fix, run(c))
        })
      const rest = yield* Effect.all(
        [
          needsConfig("services path", servicesCheck, "agentsync validate names the problem"),
          needsConfig("token", tokenCheck, "set AGENTSYNC_TOKEN"),
          needsConfig("server", serverCheck, "check the server URL and that the server runs"),
          needsConfig("cloud database", cloudDatabaseCheck, "check AGENTSYNC_CLOUD_DATABASE_URL"),
          needsConfig("embedded database lock", lockCheck, "check .agentsync/ can be read"),
          guarded("git", timeout, "install git", gitCheck(shell)),
          guarded(
            "tool homes",
            timeout,
            "check ~/.agentsync/skills.yaml (agentsync skill source list)",
            toolHomesCheck(isFolder)
          )
        ],
        { concurrency: "unbounded" }
      )
      const checks = [configCheck, ...rest]
      return { checks, ok: checks.every((c) => c.state !== "fail") } satisfies DoctorReport
    })
    return { doctor } as const
  })
}) {}
