/** SyncService.syncAll: files then database, each operation reported with its SyncOpState, one failure never hiding the others. */
import { Effect, Layer } from "effect"
import { CurrentConfig, type SyncDirection } from "../config.js"
import type { SyncOpState } from "../domain/model.js"
import { MissingConfig, type SyncError } from "../errors.js"
import { layerFromConfig as syncApiLayer } from "../services/SyncApi.js"
import { DatabaseSyncService, type DbSyncResult } from "./dbSync.js"
import { configuredLeftOut, FileSyncService, type FilesReport } from "./files.js"

export type SyncOperation = "files" | "database"

export interface SyncOpResult {
  readonly operation: SyncOperation
  readonly state: SyncOpState
  /** The operation's own report when it ran to the end. */
  readonly report?: FilesReport | DbSyncResult | undefined
  /** Files that failed: what at the top of the tree file sync does not carry, as its report would have named. */
  readonly left_out?: ReadonlyArray<string> | undefined
}

export interface SyncAllResult {
  readonly direction: SyncDirection
  readonly dry_run: boolean
  /** Every operation Completed. */
  readonly ok: boolean
  readonly operations: ReadonlyArray<SyncOpResult>
  /** The errors behind the operations that did not complete, in order (not part of the JSON output). */
  readonly errors: ReadonlyArray<SyncError>
}

export interface SyncAllOptions {
  readonly direction?: SyncDirection | undefined
  readonly dryRun?: boolean | undefined
}

const COMPLETED: SyncOpState = { _tag: "Completed" }

/** What an operation's outcome is as a state: missing configuration is NotStarted, a partial import Partial. */
const settle = <A extends FilesReport | DbSyncResult, R>(
  operation: SyncOperation,
  run: Effect.Effect<A, SyncError, R>
) =>
  run.pipe(
    Effect.map((report) => ({
      result: { operation, state: COMPLETED, report } satisfies SyncOpResult,
      error: undefined
    })),
    Effect.catchAll((error) => {
      const state: SyncOpState =
        error._tag === "MissingConfig"
          ? { _tag: "NotStarted", reason: error.message }
          : error._tag === "PartialImport"
            ? { _tag: "Partial", completed: error.completed, total: error.total }
            : { _tag: "Failed", error: error.message }
      return Effect.succeed({ result: { operation, state } satisfies SyncOpResult, error })
    })
  )

const filesOperation = (direction: SyncDirection, dryRun: boolean) =>
  Effect.flatMap(FileSyncService, (s) => (direction === "Push" ? s.push({ dryRun }) : s.pull({ dryRun }))).pipe(
    Effect.provide(FileSyncService.Default.pipe(Layer.provide(syncApiLayer)))
  )

/**
 * A failed files operation names what it leaves out at the top of the tree all the same (as `files push` does);
 * a top that cannot be listed then is left unsaid, the operation's own failure being the one to report.
 */
const withLeftOut = (settled: { readonly result: SyncOpResult; readonly error: SyncError | undefined }) =>
  settled.result.state._tag !== "Failed"
    ? Effect.succeed(settled)
    : configuredLeftOut.pipe(
        Effect.map((names) => ({ ...settled, result: { ...settled.result, left_out: names } })),
        Effect.orElseSucceed(() => settled)
      )

const databaseOperation = (direction: SyncDirection, dryRun: boolean) =>
  Effect.flatMap(DatabaseSyncService, (s) => (direction === "Push" ? s.push({ dryRun }) : s.pull({ dryRun }))).pipe(
    Effect.provide(DatabaseSyncService.Default)
  )

/** The reference crate's façade: every sync operation of a project in one call. */
export class SyncService extends Effect.Service<SyncService>()("agentsync/SyncService", {
  effect: Effect.gen(function* () {
    const config = yield* CurrentConfig
    // Each operation builds its own layers when it starts (a missing setting is that operation's NotStarted).
    const withConfig = Effect.provideService(CurrentConfig, config)
    const syncAll = Effect.fn("SyncService.syncAll")(function* (options: SyncAllOptions = {}) {
      const direction = options.direction ?? config.direction
      const dryRun = options.dryRun ?? config.dryRun
      const files = yield* withConfig(Effect.flatMap(settle("files", filesOperation(direction, dryRun)), withLeftOut))
      const database = yield* settle("database", withConfig(databaseOperation(direction, dryRun)))
      const settled = [files, database]
      const errors = settled.flatMap((s) => (s.error === undefined ? [] : [s.error]))
      const result: SyncAllResult = {
        direction,
        dry_run: dryRun,
        ok: settled.every((s) => s.result.state._tag === "Completed"),
        operations: settled.map((s): SyncOpResult => s.result),
        errors
      }
      return result
    })
    return { syncAll } as const
  })
}) {}

/** The error that decides the exit code of a run that did not complete everything: a conflict first (exit 3). */
export const decisiveError = (result: SyncAllResult): SyncError | undefined =>
  result.errors.find((e) => e._tag === "Conflict") ??
  result.errors.find((e) => e._tag !== "MissingConfig") ??
  result.errors[0] ??
  (result.ok ? undefined : new MissingConfig({ key: "sync", reason: "not every operation completed" }))
