/** What `agentsync deploy` runs: build → image → push → release → verify under the tenant's lock, and rollback. */
import { randomUUID } from "node:crypto"
import * as os from "node:os"
import * as nodePath from "node:path"
import { Console, Effect, Redacted } from "effect"
import type { LockStatus, Release } from "../api/deploy.js"
import { CurrentConfig, type DeploySpec, PROJECT_FILE, type SyncConfig } from "../config.js"
import {
  type Argv,
  type Builder,
  buildImageStep,
  loginStep,
  pushStep,
  type RegistryAccess,
  type Step
} from "../domain/deploy/commands.js"
import {
  checkApp,
  checkRegistry,
  checkTag,
  deployTag,
  digestImage,
  repositoryOf,
  taggedImage
} from "../domain/deploy/image.js"
import { credentialForms, redactFields, showArgv } from "../domain/deploy/redact.js"
import { previousRelease } from "../domain/deploy/release.js"
import { yamlLine } from "../domain/formats.js"
import { InvalidInput, ReleaseFailed } from "../errors.js"
import { DeployApi, type DeployApiError } from "../services/DeployApi.js"
import { ProjectFiles } from "../services/ProjectFiles.js"
import { Shell } from "../services/Shell.js"
import * as Stage from "../stages/deploy.js"

export interface DeployOptions {
  readonly dryRun?: boolean
  readonly tag?: string | undefined
  readonly skipBuild?: boolean
  readonly builder?: Builder | undefined
  readonly message?: string | undefined
  /** Where progress and the steps' output go, line by line; default stderr. */
  readonly output?: (line: string) => Effect.Effect<void>
}

export interface DeployReport {
  readonly dry_run: boolean
  readonly builder: Builder
  readonly image: string
  readonly tag: string
  readonly source_sha: string | null
  readonly dirty: boolean | null
  /** Every command in order, secrets masked: what ran, or with --dry-run what would run. */
  readonly steps: ReadonlyArray<{ readonly step: string; readonly command: string }>
  readonly digest: string | null
  readonly release: Release | null
}

/** The deploy settings of a project, checked, with paths resolved. */
export interface ResolvedDeploy {
  readonly app: string
  readonly registry: string
  readonly dockerfile: string
  readonly context: string
  readonly build: ReadonlyArray<Argv>
  readonly builder: Builder
  readonly health: { readonly path: string; readonly timeout_seconds: number } | null
}

const seconds = (t: number | string | undefined): number => {
  if (t === undefined) return 60
  if (typeof t === "number") return t
  const n = Number(t.replace(/[a-z]+$/, ""))
  return t.endsWith("ms") ? Math.max(1, Math.ceil(n / 1000)) : t.endsWith("m") ? n * 60 : n
}

/**
 * The `deploy:` block of agentsync.yaml, checked before anything runs: every problem names agentsync.yaml and
 * the line of the key (or of `deploy:` for a key that is missing).
 */
export const resolveDeploy = (
  config: SyncConfig,
  options: { readonly builder?: Builder | undefined; readonly skipBuild?: boolean } = {}
) =>
  Effect.gen(function* () {
    const files = yield* ProjectFiles
    const file = nodePath.join(config.projectRoot, PROJECT_FILE)
    const text = (yield* files.readText(file)) ?? ""
    const at = (path: ReadonlyArray<string>, field: string, reason: string) =>
      new InvalidInput({ file, ...(text === "" ? {} : { line: yamlLine(text, path) }), field, reason })
    const spec: DeploySpec | undefined = config.project.deploy
    if (spec === undefined) {
      return yield* new InvalidInput({
        file,
        field: "deploy",
        reason: "no deploy: section; add deploy: {app, registry} (see README, Deploy)"
      })
    }
    if (spec.app === undefined)
      return yield* at(["deploy"], "deploy.app", "missing: the app (image name below the registry) to deploy")
    const badApp = checkApp(spec.app)
    if (badApp !== undefined) return yield* at(["deploy", "app"], "deploy.app", badApp)
    if (spec.registry === undefined)
      return yield* at(["deploy"], "deploy.registry", "missing: the registry to push to (host[:port][/namespace])")
    const badRegistry = checkRegistry(spec.registry)
    if (badRegistry !== undefined) return yield* at(["deploy", "registry"], "deploy.registry", badRegistry)
    const dockerfile = nodePath.resolve(config.projectRoot, spec.dockerfile ?? "Dockerfile")
    const context = nodePath.resolve(config.projectRoot, spec.context ?? ".")
    if (options.skipBuild !== true) {
      if ((yield* files.kind(context)) !== "dir") {
        return yield* at(
          spec.context === undefined ? ["deploy"] : ["deploy", "context"],
          "deploy.context",
          `the build context ${context} is not a folder`
        )
      }
      if ((yield* files.kind(dockerfile)) !== "file") {
        return yield* at(
          spec.dockerfile === undefined ? ["deploy"] : ["deploy", "dockerfile"],
          "deploy.dockerfile",
          `no Dockerfile at ${dockerfile}`
        )
      }
    }
    return {
      app: spec.app,
      registry: spec.registry,
      dockerfile,
      context,
      build: spec.build ?? [],
      builder: options.builder ?? spec.builder ?? "docker",
      health:
        spec.health === undefined ? null : { path: spec.health.path, timeout_seconds: seconds(spec.health.timeout) }
    } satisfies ResolvedDeploy
  })

/** The commit being deployed and whether the tree had uncommitted changes; nulls outside a git repository. */
const sourceOf = (root: string) =>
  Effect.gen(function* () {
    const shell = yield* Shell
    const head = yield* shell.run("git", ["-C", root, "rev-parse", "HEAD"]).pipe(Effect.option)
    if (head._tag === "None" || head.value.exitCode !== 0) return { sha: null, dirty: null }
    const sha = new TextDecoder().decode(head.value.stdout).trim()
    const status = yield* shell.run("git", ["-C", root, "status", "--porcelain"]).pipe(Effect.option)
    const dirty =
      status._tag === "Some" && status.value.exitCode === 0
        ? new TextDecoder().decode(status.value.stdout).trim() !== ""
        : null
    return { sha: /^[0-9a-f]{40,64}$/.test(sha) ? sha : null, dirty }
  })

const holder = () => {
  const user = (() => {
    try {
      return os.userInfo().username
    } catch {
      return "unknown"
    }
  })()
  return `${user}@${os.hostname()} (pid ${process.pid})`
}

const stderr = (line: string) => Console.error(line)

/** A run's context: the project root, the secrets known so far (the API token first), and the output. */
const contextFor = (config: SyncConfig, output: (line: string) => Effect.Effect<void>): Stage.StageContext => {
  const secrets = new Stage.Secrets(config.token === undefined ? [] : [Redacted.value(config.token)])
  return { cwd: config.projectRoot, secrets, output: (line) => output(secrets.redact(line)) }
}

const shown = (name: string, step: Step, ctx: Stage.StageContext) => ({
  step: name,
  command: showArgv(step.argv, ctx.secrets.redact)
})

/** What a deploy and its dry run share: the checked settings, the tag and image, the source, the report. */
const prepare = (options: DeployOptions) =>
  Effect.gen(function* () {
    const config = yield* CurrentConfig
    const ctx = contextFor(config, options.output ?? stderr)
    const spec = yield* resolveDeploy(config, options)
    if (options.tag !== undefined) {
      const bad = checkTag(options.tag)
      if (bad !== undefined) return yield* new InvalidInput({ field: "--tag", reason: bad })
    }
    if (options.skipBuild === true && options.tag === undefined) {
      return yield* new InvalidInput({
        field: "--skip-build",
        reason: "pushes an image built before: name its tag with --tag"
      })
    }
    const source = yield* sourceOf(config.projectRoot)
    const tag = options.tag ?? deployTag(Date.now() / 1000, source.sha?.slice(0, 7))
    const image = taggedImage(spec.registry, spec.app, tag)
    const build = { builder: spec.builder, image, dockerfile: spec.dockerfile, context: spec.context }
    const steps: Array<{ step: string; command: string }> = []
    const buildSteps =
      options.skipBuild === true
        ? []
        : spec.build.map((argv, i) => ({ name: `build ${i + 1}/${spec.build.length}`, step: { argv, env: {} } }))
    const report = (digest: string | null, release: Release | null): DeployReport => ({
      dry_run: options.dryRun === true,
      builder: spec.builder,
      image,
      tag,
      source_sha: source.sha,
      dirty: source.dirty,
      steps,
      digest,
      release
    })
    return { config, ctx, spec, source, tag, image, build, steps, buildSteps, report }
  })

/** The commands a deploy would run, secrets masked, run by nobody: no server is called, no token needed. */
const plan = Effect.fn("DeployService.plan")(function* (options: DeployOptions = {}) {
  const { ctx, spec, image, build, steps, buildSteps, report } = yield* prepare({ ...options, dryRun: true })
  const access: RegistryAccess = {
    builder: spec.builder,
    image,
    registry: spec.registry,
    username: "<registry user>",
    configDir: "<temporary DOCKER_CONFIG>"
  }
  for (const b of buildSteps) steps.push(shown(b.name, b.step, ctx))
  if (options.skipBuild !== true) steps.push(shown("image", buildImageStep(build), ctx))
  steps.push(shown("login", loginStep(access), ctx), shown("push", pushStep(access), ctx))
  steps.push({
    step: "release",
    command: `POST …/deploy {image: ${repositoryOf(spec.registry, spec.app)}@<digest from the push>}`
  })
  return report(null, null)
})

/** The whole deploy; with dryRun, its plan. */
const deploy = Effect.fn("DeployService.deploy")(function* (options: DeployOptions = {}) {
  if (options.dryRun === true) return yield* plan(options)
  const { ctx, spec, source, tag, image, build, steps, buildSteps, report } = yield* prepare(options)
  const api = yield* DeployApi
  const run = Effect.suspend(() =>
    Stage.withLock(ctx, { holder: holder(), message: options.message ?? "" }, (lock) =>
      Effect.gen(function* () {
        yield* ctx.output(`deploy lock taken (${lock.lock.holder}, lease ${lock.lease_seconds} s)`)
        // The credential before the build: a server that hands out none stops the run before a long build, and
        // the redactor knows the password from the first line of output on.
        const credential = yield* api.registryToken
        ctx.secrets.add(...credentialForms(credential.username, Redacted.value(credential.password)))
        if (options.skipBuild !== true) {
          yield* Stage.buildCommands(ctx, spec.build)
          for (const b of buildSteps) steps.push(shown(b.name, b.step, ctx))
          yield* Stage.buildImage(ctx, build)
          steps.push(shown("image", buildImageStep(build), ctx))
        }
        const digest = yield* Effect.scoped(
          Effect.gen(function* () {
            const configDir = yield* Stage.registryConfig
            const access: RegistryAccess = {
              builder: spec.builder,
              image,
              registry: spec.registry,
              username: credential.username,
              configDir
            }
            yield* Stage.login(ctx, access, credential.password)
            steps.push(shown("login", loginStep(access), ctx))
            const pushed = yield* Stage.push(ctx, access)
            steps.push(shown("push", pushStep(access), ctx))
            return pushed
          })
        )
        const released = digestImage(repositoryOf(spec.registry, spec.app), digest)
        yield* ctx.output(`==> release: ${released}`)
        const created = yield* api.deploy(
          {
            image: released,
            tag,
            source_sha: source.sha,
            dirty: source.dirty,
            lock_id: lock.id,
            message: options.message ?? "",
            health: spec.health
          },
          randomUUID()
        )
        steps.push({
          step: "release",
          command: `POST ${api.baseUrl}/deploy {image: ${released}} → release ${created.number}`
        })
        const settled = yield* Stage.verify(ctx, created.number)
        return report(digest, settled)
      })
    )
  )
  return yield* run.pipe(Effect.mapError((e) => redactFields(e, ctx.secrets.redact)))
})

export interface RollbackOptions {
  /** The release whose image runs again; default: the one before the active release. */
  readonly release?: number | undefined
  readonly message?: string | undefined
  readonly output?: (line: string) => Effect.Effect<void>
}

/** A new release running an earlier release's image again, under the lock, verified like a deploy. */
const rollback = Effect.fn("DeployService.rollback")(function* (options: RollbackOptions = {}) {
  const config = yield* CurrentConfig
  const ctx = contextFor(config, options.output ?? stderr)
  const api = yield* DeployApi
  const health = config.project.deploy?.health
  const run = Stage.withLock(ctx, { holder: holder(), message: options.message ?? "rollback" }, (lock) =>
    Effect.gen(function* () {
      let target = options.release
      if (target === undefined) {
        const previous = previousRelease(yield* api.releases(1000))
        if (previous === undefined)
          return yield* new InvalidInput({
            field: "RELEASE",
            reason: "there is no earlier release (active before, with another image) to roll back to"
          })
        target = previous.number
      }
      yield* ctx.output(`==> rollback to release ${target}`)
      const created = yield* api.rollback(
        target,
        {
          lock_id: lock.id,
          message: options.message ?? "",
          health: health === undefined ? null : { path: health.path, timeout_seconds: seconds(health.timeout) }
        },
        randomUUID()
      )
      return yield* Stage.verify(ctx, created.number)
    })
  )
  return yield* run.pipe(Effect.mapError((e) => redactFields(e, ctx.secrets.redact)))
})

/** One release (the newest by default); with `wait`, followed until it settles. A failed release is an error. */
const status = Effect.fn("DeployService.status")(function* (
  number: number | undefined,
  wait: boolean,
  output: (line: string) => Effect.Effect<void> = stderr
) {
  const config = yield* CurrentConfig
  const api = yield* DeployApi
  const ctx = contextFor(config, output)
  let target = number
  if (target === undefined) {
    const [latest] = yield* api.releases(1)
    if (latest === undefined) return yield* new InvalidInput({ field: "ID", reason: "this tenant has no releases yet" })
    target = latest.number
  }
  const release = wait
    ? yield* Effect.catchTag(Stage.verify(ctx, target), "ReleaseFailed", () => api.release(target))
    : yield* api.release(target)
  return release
})

const releases = Effect.fn("DeployService.releases")(function* (limit?: number) {
  return yield* Effect.flatMap(DeployApi, (api) => api.releases(limit))
})

const lockStatus: Effect.Effect<LockStatus, DeployApiError, DeployApi> = Effect.flatMap(
  DeployApi,
  (api) => api.lockStatus
)
const forceUnlock = Effect.flatMap(DeployApi, (api) => api.forceUnlock)

/** A failed release as an error, for commands that end non-zero on one. */
export const failureOf = (release: Release): ReleaseFailed | undefined =>
  release.status === "failed"
    ? new ReleaseFailed({
        release: release.number,
        reason: release.reason ?? "no reason recorded",
        ...(release.reactivated === null ? {} : { reactivated: release.reactivated })
      })
    : undefined

export class DeployService extends Effect.Service<DeployService>()("agentsync/DeployService", {
  succeed: { deploy, plan, rollback, status, releases, lockStatus, forceUnlock }
}) {}
