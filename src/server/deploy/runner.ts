/** Runs a release on the server: the operator's hook, the health gate, and on failure the previous release again. */
import * as HttpClient from "@effect/platform/HttpClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { Duration, Effect, FiberSet, Option, Schedule } from "effect"
import { showArgv } from "../../domain/deploy/redact.js"
import { canTransition, type ReleaseStatus, RUNNING, renderHook } from "../../domain/deploy/release.js"
import { Shell } from "../../services/Shell.js"
import { DeployServerConfig } from "./config.js"
import type { StartedRelease } from "./store.js"

/** A step that did not succeed, in words for the release log and its reason. */
class StepFailed {
  readonly _tag = "StepFailed"
  constructor(readonly reason: string) {}
}

const MAX_LOG = 256 * 1024

export class ReleaseRunner extends Effect.Service<ReleaseRunner>()("agentsync/server/ReleaseRunner", {
  scoped: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const shell = yield* Shell
    const http = yield* HttpClient.HttpClient
    const config = yield* DeployServerConfig
    // Releases run in the server's scope: a stopping server interrupts them, and they record why.
    const fibers = yield* FiberSet.make()
    const beat = Duration.millis(Math.max(200, Math.min(1000, (config.leaseSeconds * 1000) / 4)))

    const run = (release: StartedRelease) =>
      Effect.gen(function* () {
        let pending = ""
        let status: ReleaseStatus = "pending"
        const log = (line: string) =>
          Effect.sync(() => {
            pending += `${config.redact(line)}\n`
          })
        /** Writes the log lines gathered so far and renews the release's heartbeat (what keeps the lock held). */
        const flush = Effect.suspend(() => {
          const text = pending
          pending = ""
          return sql`UPDATE releases SET heartbeat_at = now(),
              log = right(log || ${text}, ${MAX_LOG}) WHERE id = ${release.id}`
        }).pipe(Effect.orDie)
        const move = (to: ReleaseStatus, extra: { reason?: string; reactivated?: number | null } = {}) =>
          Effect.gen(function* () {
            if (!canTransition(status, to))
              return yield* Effect.dieMessage(`release ${release.number}: ${status} → ${to} is not a move`)
            yield* flush
            const final = to === "active" || to === "failed"
            yield* sql
              .withTransaction(
                Effect.gen(function* () {
                  if (to === "active") {
                    yield* sql`UPDATE releases SET status = 'superseded' WHERE tenant_id = ${release.tenantId} AND status = 'active'`
                  }
                  yield* sql`UPDATE releases SET status = ${to}, reason = ${extra.reason ?? null}, reactivated = ${extra.reactivated ?? null},
                    finished_at = ${final ? sql`now()` : sql`NULL`}
                  WHERE id = ${release.id} AND status = ${status}`
                })
              )
              .pipe(Effect.orDie)
            status = to
          })

        const hookFor = (target: { readonly number: number; readonly image: string; readonly digest: string }) =>
          Option.match(config.hook, {
            onNone: () => log("no release hook configured on the server: the release is recorded only"),
            onSome: (template) =>
              Effect.gen(function* () {
                const argv = renderHook(template, {
                  image: target.image,
                  digest: target.digest,
                  release: String(target.number),
                  tenant: release.tenantId
                })
                yield* log(`$ ${showArgv(argv, config.redact)}`)
                const [program, ...args] = argv
                const result = yield* shell
                  .run(program, args, {
                    // Nothing for the hook on stdin: it is closed, so a hook that reads it does not wait forever.
                    stdin: "",
                    env: {
                      ...config.hookEnv,
                      AGENTSYNC_RELEASE: String(target.number),
                      AGENTSYNC_IMAGE: target.image,
                      AGENTSYNC_DIGEST: target.digest,
                      AGENTSYNC_TENANT: release.tenantId
                    },
                    extendEnv: false,
                    onLine: (line) => log(line)
                  })
                  .pipe(
                    Effect.mapError(
                      (e) => new StepFailed(`the release hook could not start: ${config.redact(e.stderr)}`)
                    )
                  )
                if (result.exitCode !== 0)
                  return yield* Effect.fail(new StepFailed(`the release hook exited with ${result.exitCode}`))
                yield* log("hook: ok")
              })
          })

        const healthFor = (health: StartedRelease["health"]) =>
          Option.match(config.healthUrl, {
            onNone: () =>
              health === undefined
                ? Effect.void
                : log(`health: no health URL configured on the server; ${health.path} was not checked`),
            onSome: (base) =>
              Effect.gen(function* () {
                const url = `${base}${health?.path ?? "/"}`
                const seconds = health?.timeoutSeconds ?? config.healthTimeoutSeconds
                yield* log(`health: waiting up to ${seconds} s for a 2xx from GET ${url}`)
                let last = "no answer yet"
                const attempt = http.get(url).pipe(
                  Effect.timeout(Duration.seconds(Math.min(10, seconds))),
                  Effect.scoped,
                  Effect.mapError((e) =>
                    e._tag === "TimeoutException"
                      ? "timed out"
                      : e._tag === "RequestError"
                        ? "no connection"
                        : e.message
                  ),
                  Effect.flatMap((r) =>
                    r.status >= 200 && r.status < 300 ? Effect.succeed(r.status) : Effect.fail(`HTTP ${r.status}`)
                  ),
                  Effect.tapError((why) =>
                    Effect.suspend(() => {
                      const changed = why !== last
                      last = why
                      return changed ? log(`health: ${why}`) : Effect.void
                    })
                  )
                )
                const ok = yield* attempt.pipe(
                  Effect.retry(Schedule.spaced(Duration.millis(config.healthIntervalMillis))),
                  Effect.timeout(Duration.seconds(seconds)),
                  Effect.option
                )
                if (Option.isNone(ok)) {
                  return yield* Effect.fail(
                    new StepFailed(`health check GET ${url} gave no 2xx within ${seconds} s (last: ${last})`)
                  )
                }
                yield* log(`health: ${ok.value} from GET ${url}`)
              })
          })

        const previous = sql<{
          number: number
          image: string
          digest: string
          health_path: string | null
          health_timeout_seconds: number | null
        }>`
          SELECT number, image, digest, health_path, health_timeout_seconds FROM releases WHERE tenant_id = ${release.tenantId} AND status = 'active'`.pipe(
          Effect.map((rows) => rows[0]),
          Effect.orDie
        )

        /** After a failure: the hook and health gate for the active release, so what ran before runs again. */
        const reactivate = Effect.gen(function* () {
          const before = yield* previous
          if (before === undefined) {
            yield* log("no earlier release to re-activate")
            return undefined
          }
          yield* log(`re-activating release ${before.number} (${before.image})`)
          const health =
            before.health_path === null
              ? undefined
              : { path: before.health_path, timeoutSeconds: before.health_timeout_seconds ?? 60 }
          const back = yield* Effect.either(Effect.zipRight(hookFor(before), healthFor(health)))
          if (back._tag === "Left") {
            yield* log(
              `re-activating release ${before.number} failed: ${back.left.reason}; it is recorded active but may not be running: act now`
            )
            return undefined
          }
          yield* log(`release ${before.number} is active again`)
          return before.number
        })

        const steps = Effect.gen(function* () {
          yield* move("hook")
          yield* log(`release ${release.number}: ${release.image}`)
          yield* hookFor(release)
          if (Option.isSome(config.healthUrl)) yield* move("checking")
          yield* healthFor(release.health)
          yield* log(`release ${release.number} is active`)
          yield* move("active")
        })

        const heartbeat = flush.pipe(Effect.repeat(Schedule.spaced(beat)), Effect.asVoid)
        yield* Effect.raceFirst(
          steps.pipe(
            Effect.catchAll((failure) =>
              Effect.gen(function* () {
                yield* log(`release ${release.number} failed: ${failure.reason}`)
                const reactivated = yield* reactivate
                yield* move("failed", { reason: config.redact(failure.reason), reactivated: reactivated ?? null })
              })
            )
          ),
          Effect.zipRight(heartbeat, Effect.never)
        ).pipe(
          // Bounded, so a stopping server never waits on its database for long; a release it could not mark
          // failed is found abandoned (no heartbeat) by the next deploy of its tenant.
          Effect.onInterrupt(() =>
            Effect.gen(function* () {
              yield* log("the server stopped during the release")
              yield* flush
              yield* sql`UPDATE releases SET status = 'failed', finished_at = now(), reason = 'the server stopped during the release'
                WHERE id = ${release.id} AND status IN ${sql.in(RUNNING)}`.pipe(Effect.orDie)
            }).pipe(Effect.timeout("3 seconds"), Effect.ignore)
          )
        )
      }).pipe(Effect.withSpan("ReleaseRunner.run", { attributes: { release: release.number } }))

    /** Starts a release in the background of the server; its progress is in its row. */
    const start = (release: StartedRelease) => FiberSet.run(fibers, run(release)).pipe(Effect.asVoid)

    return { start, run }
  })
}) {}
