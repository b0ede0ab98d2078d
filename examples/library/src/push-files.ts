/**
 * Pushes a project's `services/` tree to its tenant in direct mode, retrying a busy or unreachable server on
 * an Effect Schedule, and prints what changed.
 *
 *   AGENTSYNC_DIRECT_URL=https://tenant.example AGENTSYNC_TOKEN=… node dist/push-files.js path/to/project [--dry-run]
 */
import { Duration, Effect, Layer, Schedule } from "effect"
import { CurrentConfig, MissingConfig, SyncConfig } from "agentsync/config"
import { FileSyncService, layer as fileSync, SyncApi } from "agentsync/files"

const [project = ".", flag] = process.argv.slice(2)

const program = Effect.gen(function* () {
  const origin = process.env.AGENTSYNC_DIRECT_URL
  const token = process.env.AGENTSYNC_TOKEN
  if (origin === undefined || token === undefined)
    return yield* new MissingConfig({ key: "AGENTSYNC_DIRECT_URL", reason: "set it and AGENTSYNC_TOKEN" })
  const config = SyncConfig.builder(`${project}/services`)
    .direct(origin, token)
    .withDryRun(flag === "--dry-run")
    // Up to five retries, 200 ms doubling each time, never more than 5 s apart.
    .withRetry(
      Schedule.exponential("200 millis").pipe(
        Schedule.intersect(Schedule.recurs(5)),
        Schedule.modifyDelay((_, delay) => Duration.min(delay, Duration.seconds(5)))
      )
    )
    .build()
  const services = fileSync.pipe(
    Layer.provideMerge(SyncApi.layerFromConfig),
    Layer.provideMerge(Layer.succeed(CurrentConfig, config))
  )
  const report = yield* Effect.flatMap(FileSyncService, (files) => files.push()).pipe(Effect.provide(services))
  for (const file of report.files) yield* Effect.log(`${file.status} ${file.path}`)
  return report
})

Effect.runPromise(program).then(
  (report) => console.log(`pushed: ${report.files.length} paths${report.dry_run ? " (dry run)" : ""}`),
  (error: unknown) => {
    console.error(String(error))
    process.exitCode = 1
  }
)
