/** The deploy stages: build commands, image build, registry login and push, release, verify, and the deploy lock. */
import { Duration, Effect, Redacted } from "effect"
import type { LockGrant, LockRequest, Release } from "../api/deploy.js"
import {
  type Argv,
  buildImageStep,
  digestFile,
  type ImageBuild,
  loginStep,
  pushStep,
  type RegistryAccess,
  type Step
} from "../domain/deploy/commands.js"
import { DIGEST, digestFromPush } from "../domain/deploy/image.js"
import { makeRedactor, type Redactor, showArgv } from "../domain/deploy/redact.js"
import { isRunning } from "../domain/deploy/release.js"
import { CommandFailed, ReleaseFailed } from "../errors.js"
import { DeployApi, type DeployApiError } from "../services/DeployApi.js"
import { ProjectFiles } from "../services/ProjectFiles.js"
import { Shell } from "../services/Shell.js"

/** The secrets a run knows so far; the redactor grows as the run learns them (the registry password). */
export class Secrets {
  private values: Array<string> = []
  private current: Redactor = makeRedactor([])
  constructor(initial: Iterable<string> = []) {
    this.add(...initial)
  }
  add(...values: ReadonlyArray<string>) {
    this.values.push(...values)
    this.current = makeRedactor(this.values)
  }
  get redact(): Redactor {
    return this.current
  }
}

/** Where a run's steps run and where their output goes (every line through the redactor, to stderr in the CLI). */
export interface StageContext {
  readonly cwd: string
  readonly secrets: Secrets
  readonly output: (line: string) => Effect.Effect<void>
}

const tail = (text: string) => text.split("\n").slice(-20).join("\n").slice(-4000)

/** Runs one step, its output streamed line by line; a non-zero exit is a CommandFailed with argv and stderr masked. */
export const runStep = Effect.fn("DeployStage.runStep")(function* (
  ctx: StageContext,
  name: string,
  step: Step,
  stdin?: Redacted.Redacted<string>
) {
  const shell = yield* Shell
  const shown = () => showArgv(step.argv, ctx.secrets.redact)
  yield* ctx.output(`==> ${name}: ${shown()}`)
  const [program, ...args] = step.argv
  const result = yield* shell
    .run(program, args, {
      cwd: ctx.cwd,
      env: step.env,
      // A step reads nothing but the secret it is given: stdin is closed, so nothing waits on a terminal.
      stdin: stdin === undefined ? "" : Redacted.value(stdin),
      onLine: (line) => ctx.output(`    ${ctx.secrets.redact(line)}`)
    })
    .pipe(
      Effect.mapError(
        (e) =>
          new CommandFailed({
            command: shown(),
            exitCode: e.exitCode,
            stderr: ctx.secrets.redact(e.stderr),
            step: name
          })
      )
    )
  if (result.exitCode !== 0) {
    return yield* new CommandFailed({
      command: shown(),
      exitCode: result.exitCode,
      stderr: ctx.secrets.redact(tail(result.stderr)),
      step: name
    })
  }
  return result
})

/** The project's build commands, in order, stopping at the first that fails. */
export const buildCommands = (ctx: StageContext, commands: ReadonlyArray<Argv>) =>
  Effect.forEach(commands, (argv, i) => runStep(ctx, `build ${i + 1}/${commands.length}`, { argv, env: {} }), {
    discard: true
  })

/** The image build (`docker build` or `buildah bud`). */
export const buildImage = (ctx: StageContext, build: ImageBuild) =>
  runStep(ctx, "image", buildImageStep(build)).pipe(Effect.asVoid)

/** A per-deploy DOCKER_CONFIG folder (0700), removed with everything in it when the scope closes, however it closes. */
export const registryConfig = Effect.flatMap(ProjectFiles, (files) => files.tempDir("agentsync-docker-"))

/** `login --password-stdin`: the password goes on stdin only, the credential into the temporary config. */
export const login = (ctx: StageContext, access: RegistryAccess, password: Redacted.Redacted<string>) =>
  runStep(ctx, "login", loginStep(access), password).pipe(Effect.asVoid)

/** Pushes the image and returns the digest the registry gave it (from the output, or buildah's --digestfile). */
export const push = (ctx: StageContext, access: RegistryAccess) =>
  Effect.gen(function* () {
    const step = pushStep(access)
    const result = yield* runStep(ctx, "push", step)
    const digest =
      access.builder === "buildah"
        ? yield* Effect.flatMap(ProjectFiles, (files) => files.readText(digestFile(access.configDir))).pipe(
            Effect.map((text) => (text ?? "").trim()),
            Effect.orElseSucceed(() => "")
          )
        : (digestFromPush(`${new TextDecoder().decode(result.stdout)}\n${result.stderr}`) ?? "")
    if (!DIGEST.test(digest)) {
      return yield* new CommandFailed({
        command: showArgv(step.argv, ctx.secrets.redact),
        exitCode: 0,
        stderr: "the push reported no image digest (sha256:…), and a release is only ever made by digest",
        step: "push"
      })
    }
    yield* ctx.output(`    pushed ${access.image} as ${digest}`)
    return digest
  })

/** Holds the tenant's deploy lock around `use`, renewing it; a lock lost (forced release, expiry) stops `use`. */
export const withLock = <A, E, R>(
  ctx: StageContext,
  request: LockRequest,
  use: (grant: LockGrant) => Effect.Effect<A, E, R>
) =>
  Effect.flatMap(DeployApi, (api) =>
    Effect.acquireUseRelease(
      api.lock(request),
      (grant) => {
        const every = Duration.millis(Math.max(500, (grant.lease_seconds * 1000) / 3))
        // Transient failures are retried by the client and then only noted: a lock that is really gone
        // answers 409 on the next beat, and that ends the run.
        const beat = api.heartbeat(grant.id).pipe(
          Effect.catchIf(
            (e): e is Exclude<DeployApiError, { readonly _tag: "ApiError"; readonly status: 409 }> =>
              !(e._tag === "ApiError" && e.status === 409),
            (e) => ctx.output(`warning: deploy lock heartbeat failed: ${ctx.secrets.redact(e.message)}`)
          )
        )
        const heartbeat = Effect.zipRight(Effect.sleep(every), beat).pipe(Effect.forever)
        return Effect.raceFirst(use(grant), heartbeat)
      },
      (grant) =>
        api.unlock(grant.id).pipe(
          Effect.catchAll((e) =>
            ctx.output(
              `warning: could not release the deploy lock (it expires by itself): ${ctx.secrets.redact(e.message)}`
            )
          ),
          Effect.asVoid
        )
    )
  )

/**
 * Waits for a release to settle, printing its log as it grows; a failed release is a ReleaseFailed naming the
 * release that was re-activated.
 */
export const verify = (ctx: StageContext, number: number, poll: Duration.DurationInput = "250 millis") =>
  Effect.flatMap(DeployApi, (api) => {
    let shown = 0
    const printNew = (release: Release) =>
      Effect.suspend(() => {
        const log = release.log ?? ""
        const fresh = log.slice(shown)
        const end = fresh.lastIndexOf("\n") + 1
        shown += end
        const lines = fresh.slice(0, end).split("\n").slice(0, -1)
        return Effect.forEach(lines, (l) => ctx.output(`    ${ctx.secrets.redact(l)}`), { discard: true })
      })
    return Effect.gen(function* () {
      yield* ctx.output(`==> verify: release ${number}`)
      const once = Effect.tap(api.release(number), printNew)
      const until: Effect.Effect<Release, DeployApiError> = Effect.flatMap(once, (r) =>
        isRunning(r.status)
          ? Effect.zipRight(
              Effect.sleep(poll),
              Effect.suspend(() => until)
            )
          : Effect.succeed(r)
      )
      const settled = yield* until
      if (settled.status === "failed") {
        return yield* new ReleaseFailed({
          release: number,
          reason: ctx.secrets.redact(settled.reason ?? "no reason recorded"),
          ...(settled.reactivated === null ? {} : { reactivated: settled.reactivated })
        })
      }
      return settled
    })
  })
