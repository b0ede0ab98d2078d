/** `agentsync deploy …`: build, push and release an image, and the releases, status, rollback and lock around it. */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Effect, Layer, Option } from "effect"
import type { LockStatus, Release } from "../api/deploy.js"
import type { DeployReport, DeployService } from "../programs/deploy.js"
import { emit, note, tableOf } from "./output.js"
import { withProgram } from "./program.js"

type DeployModules = readonly [typeof import("../programs/deploy.js"), typeof import("../services/Shell.js")]
const deployModules = () => Promise.all([import("../programs/deploy.js"), import("../services/Shell.js")])

const onService =
  <A, E, R>(program: (service: typeof DeployService.Service) => Effect.Effect<A, E, R>) =>
  ([programs, shell]: DeployModules) =>
    Effect.flatMap(programs.DeployService, program).pipe(
      Effect.provide(Layer.merge(programs.DeployService.Default, shell.layer))
    )

/** Runs a deploy program with the project's configuration and Shell (their code loaded only now), without the tenant client. */
const offline = <A, E, R>(program: (service: typeof DeployService.Service) => Effect.Effect<A, E, R>) =>
  withProgram(deployModules, onService(program))

/** The same with the tenant client of the configuration (AGENTSYNC_DIRECT_URL or AGENTSYNC_API_URL, AGENTSYNC_TOKEN). */
const run = <A, E, R>(program: (service: typeof DeployService.Service) => Effect.Effect<A, E, R>) =>
  withProgram(
    () => Promise.all([deployModules(), import("../services/DeployApi.js")]),
    ([modules, api]) => onService(program)(modules).pipe(Effect.provide(api.layerFromConfig))
  )

/** A failed release ends the command non-zero, after it was printed. */
const failIfFailed = (release: Release) =>
  Effect.flatMap(
    Effect.promise(() => import("../programs/deploy.js")),
    (programs) => {
      const failure = programs.failureOf(release)
      return failure === undefined ? Effect.void : Effect.fail(failure)
    }
  )

const short = (digest: string) => digest.replace(/^sha256:/, "").slice(0, 12)

const describeRelease = (r: Release) => {
  const lines = [
    `release ${r.number} (${r.kind}${r.rollback_of === null ? "" : ` of release ${r.rollback_of}`}): ${r.status}`,
    `  image    ${r.image}`,
    ...(r.tag === null ? [] : [`  tag      ${r.tag}`]),
    ...(r.source_sha === null
      ? []
      : [`  source   ${r.source_sha}${r.dirty === true ? " (with uncommitted changes)" : ""}`]),
    `  by       ${r.who}${r.message === "" ? "" : `: ${r.message}`}`,
    `  created  ${r.created_at}${r.finished_at === null ? "" : `, finished ${r.finished_at}`}`,
    ...(r.reason === null ? [] : [`  reason   ${r.reason}`]),
    ...(r.reactivated === null ? [] : [`  release ${r.reactivated} was re-activated`])
  ]
  if (r.log !== undefined && r.log !== "")
    lines.push(
      "  log:",
      ...r.log
        .trimEnd()
        .split("\n")
        .map((l) => `    ${l}`)
    )
  return lines.join("\n")
}

const describeLock = (s: LockStatus) =>
  s.lock === null
    ? "the deploy lock is free"
    : `the deploy lock is held by ${s.lock.holder} (token ${s.lock.who})${s.lock.message === "" ? "" : `: ${s.lock.message}`}\n  since ${s.lock.acquired_at}, until ${s.lock.expires_at} unless renewed${s.lock.release === null ? "" : `\n  release ${s.lock.release} is running under it`}`

const describeDeploy = (r: DeployReport) => {
  if (r.dry_run) {
    return [
      `dry run: deploy ${r.image} with ${r.builder} (nothing runs, no server is called)`,
      ...r.steps.map((s) => `  ${s.step.padEnd(10)} ${s.command}`)
    ].join("\n")
  }
  return r.release === null
    ? `pushed ${r.image}`
    : `release ${r.release.number} ${r.release.status}: ${r.release.image} (tag ${r.tag})`
}

const ROLLBACK_WARNING =
  "warning: a rollback runs an earlier release's image again through the release hook; it does not undo anything else a hook did (a database migration a hook ran stays applied)"

const dryRun = Options.boolean("dry-run").pipe(
  Options.withDescription("print every command the deploy would run, secrets masked, and run none")
)
const tag = Options.text("tag").pipe(
  Options.withDescription("the image tag (default: deploy-<unix time>-<git short sha>)"),
  Options.optional
)
const skipBuild = Options.boolean("skip-build").pipe(
  Options.withDescription("push an image built before (needs --tag): no build commands, no image build")
)
const builder = Options.choice("builder", ["docker", "buildah"]).pipe(
  Options.withDescription("build and push with docker (default) or buildah (no daemon)"),
  Options.optional
)
const message = Options.text("message").pipe(
  Options.withDescription("a note kept with the lock and the release"),
  Options.optional
)

const releases = Command.make(
  "releases",
  { limit: Options.integer("limit").pipe(Options.withDefault(20), Options.withDescription("how many, newest first")) },
  (o) =>
    run((s) =>
      Effect.flatMap(s.releases(o.limit), (list) =>
        emit(list, () =>
          tableOf(list, "no releases yet", ["#", "kind", "status", "digest", "tag", "by", "created"], (r) => [
            r.number,
            r.rollback_of === null ? r.kind : `${r.kind} of ${r.rollback_of}`,
            r.status,
            short(r.digest),
            r.tag ?? "",
            r.who,
            r.created_at
          ])
        )
      )
    )
).pipe(Command.withDescription("list the tenant's releases, newest first"))

const status = Command.make(
  "status",
  {
    id: Args.integer({ name: "ID" }).pipe(
      Args.withDescription("a release number (default: the newest)"),
      Args.optional
    ),
    wait: Options.boolean("wait").pipe(
      Options.withDescription("follow the release until it is active or failed, printing its log")
    )
  },
  (o) =>
    run((s) =>
      Effect.gen(function* () {
        const release = yield* s.status(Option.getOrUndefined(o.id), o.wait)
        yield* emit(release, () => describeRelease(release), failIfFailed(release))
      })
    )
).pipe(Command.withDescription("show a release with its log (exit 1 when it failed)"))

const rollback = Command.make(
  "rollback",
  {
    release: Args.integer({ name: "RELEASE" }).pipe(
      Args.withDescription("the release whose image runs again (default: the one before the active)"),
      Args.optional
    ),
    message
  },
  (o) =>
    Effect.zipRight(
      note(ROLLBACK_WARNING),
      run((s) =>
        Effect.gen(function* () {
          const release = yield* s.rollback({
            release: Option.getOrUndefined(o.release),
            message: Option.getOrUndefined(o.message)
          })
          yield* emit(
            release,
            () =>
              `release ${release.number} ${release.status}: rolled back to release ${release.rollback_of} (${release.image})`
          )
        })
      )
    )
).pipe(Command.withDescription("release an earlier release's image again, as a new release"))

const lockStatus = Command.make("status", {}, () =>
  run((s) => Effect.flatMap(s.lockStatus, (l) => emit(l, () => describeLock(l))))
).pipe(Command.withDescription("who holds the tenant's deploy lock, and until when"))
const lockRelease = Command.make("release", {}, () =>
  run((s) => Effect.flatMap(s.forceUnlock, (l) => emit(l, () => `released: ${describeLock(l)}`)))
).pipe(Command.withDescription("release the deploy lock whoever holds it (refused while a release runs on the server)"))
const lock = Command.make("lock").pipe(
  Command.withDescription("the tenant's deploy lock"),
  Command.withSubcommands([lockStatus, lockRelease])
)

export const deploy = Command.make("deploy", { dryRun, tag, skipBuild, builder, message }, (o) => {
  const options = {
    tag: Option.getOrUndefined(o.tag),
    skipBuild: o.skipBuild,
    builder: Option.getOrUndefined(o.builder),
    message: Option.getOrUndefined(o.message)
  }
  const print = (r: DeployReport) => emit(r, () => describeDeploy(r))
  return o.dryRun
    ? offline((s) => Effect.flatMap(s.plan(options), print))
    : run((s) => Effect.flatMap(s.deploy(options), print))
}).pipe(
  Command.withDescription(
    "build → image → push → release → verify, under the tenant's deploy lock (configured by deploy: in agentsync.yaml)"
  ),
  Command.withSubcommands([releases, status, rollback, lock])
)
