/** FileSyncService: `files diff | push | pull | backups | restore` — plan with the three-way diff, guard, then upload or apply. */
import { Context, Effect, type Layer } from "effect"
import { CurrentConfig } from "../config.js"
import { SyncApiClient } from "../services/SyncApi.js"
import { leftOut, workspaceAt } from "../services/Workspace.js"
import { listBackups, restoreBackup } from "../stages/files/backups.js"
import { diffImpl } from "./files/diff.js"
import { context, type FilesOptions, filesLock, noteLeftOut } from "./files/prepare.js"
import { pullImpl } from "./files/pull.js"
import { pushImpl } from "./files/push.js"
import type { FilesReport, RestoreReport } from "./files/report.js"

export { DELETE_THRESHOLD } from "./files/guards.js"
export type { FilesOptions } from "./files/prepare.js"
export type { FileReportItem, FilesReport, RestoreReport } from "./files/report.js"

/** The service's methods, needing nothing further. */
export type FileSyncServiceShape = typeof FileSyncService.Service

/** The backups pulls made in the configured project, newest first (no server needed). */
export const backups = Effect.fn("FileSyncService.backups")(function* () {
  const config = yield* CurrentConfig
  return yield* listBackups(config.projectRoot)
})

/** Puts a backup's files back, holding the files lock (no server needed). */
export const restore = Effect.fn("FileSyncService.restore")(function* (id: string) {
  const config = yield* CurrentConfig
  const done = yield* Effect.scoped(
    Effect.zipRight(
      filesLock(config.projectRoot, "files restore"),
      restoreBackup(config.projectRoot, config.servicesPath, id)
    )
  )
  return { id, restored: done.restored, backup: done.backup } satisfies RestoreReport
})

/** A push or pull that changes something runs holding the project's files lock; a dry run reads only. */
const locked = <A, E, R>(
  what: string,
  options: FilesOptions | undefined,
  program: (options?: FilesOptions) => Effect.Effect<A, E, R>
) =>
  options?.dryRun === true
    ? program(options)
    : Effect.scoped(
        Effect.flatMap(CurrentConfig, (c) => Effect.zipRight(filesLock(c.projectRoot, what), program(options)))
      )

/** What at the top of the configured tree file sync leaves out, as a report's `left_out`. */
export const configuredLeftOut = Effect.flatMap(CurrentConfig, (c) =>
  Effect.flatMap(workspaceAt(c.servicesPath), leftOut)
)

/** The file sync program as a service: its methods close over the configured client and configuration. */
export class FileSyncService extends Effect.Service<FileSyncService>()("agentsync/FileSyncService", {
  effect: Effect.gen(function* () {
    // Only what it was built with: a method runs with its caller's context otherwise (its progress reporter, its
    // run status, its file state).
    const ctx = Context.pick(SyncApiClient, CurrentConfig)(yield* Effect.context<SyncApiClient | CurrentConfig>())
    return {
      // Each report names what at the top of the tree the run did not carry.
      diff: (options?: FilesOptions) => Effect.provide(Effect.flatMap(diffImpl(options), noteLeftOut), ctx),
      push: (options?: FilesOptions) =>
        Effect.provide(Effect.flatMap(locked("files push", options, pushImpl), noteLeftOut), ctx),
      pull: (options?: FilesOptions) =>
        Effect.provide(Effect.flatMap(locked("files pull", options, pullImpl), noteLeftOut), ctx),
      /** What at the top of the tree file sync leaves out, as a report's `left_out` (for a run that made none). */
      leftOut: () => Effect.provide(configuredLeftOut, ctx),
      /** What changed inside each file of a diff's report: a unified diff of text, size and hash of the rest. */
      patches: (report: FilesReport) =>
        Effect.provide(
          // Loaded only for -p: it brings the text diff and local sync's readers.
          Effect.flatMap(
            Effect.zip(
              context,
              Effect.promise(() => import("./patches.js"))
            ),
            ([{ config, client }, p]) => p.filePatches(client, config.servicesPath, report)
          ),
          ctx
        ),
      /** The tenant's revisions, newest first, with who pushed each and what it changed. */
      log: (limit?: number) =>
        Effect.provide(
          Effect.flatMap(SyncApiClient, (c) => c.revisions(limit)),
          ctx
        ),
      /** The backups pulls made, newest first. */
      backups: () => Effect.provide(backups(), ctx),
      /** Puts a backup's files back (what they replace goes into a new backup). */
      restore: (id: string) => Effect.provide(restore(id), ctx)
    } as const
  })
}) {}

/** The service over the configured client; its methods need nothing else. */
export const layer: Layer.Layer<FileSyncService, never, SyncApiClient | CurrentConfig> = FileSyncService.Default
