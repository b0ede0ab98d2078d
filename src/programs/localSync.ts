/** Local sync: the services/ tree on disk reconciled with the project database, per kind or all together, both ways. */
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { Context, Effect, Layer } from "effect"
import { CurrentConfig, type SyncConfig } from "../config.js"
import { held } from "../domain/held.js"
import { ALL_KINDS, type KindPlan, type PlanStep, plan } from "../domain/localPlan.js"
import type { DbSide, DiskSide } from "../domain/localSides.js"
import type {
  DiffCounts,
  DiffStatus,
  LocalSyncDirection,
  LocalSyncError,
  LocalSyncResult,
  SyncKind
} from "../domain/model.js"
import { Conflict, DatabaseError, type IoError, type SyncInProgress } from "../errors.js"
import { phase } from "../services/Progress.js"
import * as Database from "../services/ProjectDatabase.js"
import { note } from "../services/RunStatus.js"
import * as Repos from "../services/repos/index.js"
import type { SpecialFile } from "../services/state.js"
import * as WorkspaceLive from "../services/Workspace.js"
import { Workspace } from "../services/Workspace.js"
import { applyPlans } from "./localSync/apply.js"
import { type DiskFiles, readDiskFiles, readSides } from "./localSync/read.js"

export { ALL_KINDS, type PlanStep } from "../domain/localPlan.js"

export interface LocalSyncOptions {
  readonly direction: LocalSyncDirection
  /** Which kinds; all of them when left out. */
  readonly kinds?: ReadonlyArray<SyncKind> | undefined
  /** Compute and report the plan, write nothing anywhere. */
  readonly dryRun?: boolean | undefined
  /** Also delete what the other side no longer has (rows without a file, or files without a row). */
  readonly deleteOrphans?: boolean | undefined
  /** Allow deleting more than half of a kind on the side written to. */
  readonly force?: boolean | undefined
}

export interface LocalSyncReport {
  readonly direction: LocalSyncDirection
  readonly dry_run: boolean
  readonly results: ReadonlyArray<LocalSyncResult>
  readonly plan: ReadonlyArray<PlanStep>
  /** Files local sync does not treat as items or files beside them (file sync carries them). */
  readonly unsynced: ReadonlyArray<string>
  /** Special files of the tree (a FIFO, a socket, a device): never opened, synced by neither; only when any. */
  readonly special_files?: ReadonlyArray<SpecialFile>
  /** Pages written from rows that do not read back as those rows: they stay unrecorded, rendered again each run. */
  readonly unrecorded: ReadonlyArray<string>
}

export interface KindDiff {
  readonly kind: SyncKind
  readonly counts: DiffCounts
  /**
   * Items (and `file:<path>` files beside them) that differ; Added is on disk only, Removed in the database only.
   * `old_mode` (the database's) and `new_mode` (the disk's), in git's words, when the file's executable bit differs.
   */
  readonly changes: ReadonlyArray<{
    readonly key: string
    readonly status: DiffStatus
    readonly old_mode?: string
    readonly new_mode?: string
  }>
  readonly errors: ReadonlyArray<LocalSyncError>
}

export interface LocalDiffReport {
  readonly kinds: ReadonlyArray<KindDiff>
  readonly unsynced: ReadonlyArray<string>
  /** As in `LocalSyncReport`. */
  readonly special_files?: ReadonlyArray<SpecialFile>
}

/** The report's field of special files, present only when there is one. */
const specialField = (files: DiskFiles) => (files.special.length === 0 ? {} : { special_files: files.special })

const kindsOf = (kinds: ReadonlyArray<SyncKind> | undefined) =>
  kinds === undefined || kinds.length === 0 ? ALL_KINDS : kinds

/** Serialises local syncs on one database, inside the run's transaction. */
const lockRun = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql`SELECT pg_advisory_xact_lock(hashtext('agentsync.local-sync'))`.pipe(
    Effect.mapError(
      (cause) => new DatabaseError({ reason: `cannot lock the database for a local sync: ${cause.message}`, cause })
    )
  )
)

const inTransaction = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql
      .withTransaction(Effect.zipRight(lockRun, effect))
      .pipe(
        Effect.mapError((e) =>
          e instanceof SqlError
            ? new DatabaseError({ reason: `transaction failed: ${Database.causeMessage(e)}`, cause: e })
            : e
        )
      )
  )

/** A plan read as a diff: what a sync to the database with --delete-orphans would do, per kind. */
const asDiff = (p: KindPlan): KindDiff => {
  // A source's remembered layout is bookkeeping, not an item.
  const changes = p.steps
    .filter((s) => !s.key.startsWith("source:"))
    .map((s) => ({
      key: s.key,
      status: s.status,
      ...(s.old_mode === undefined || s.new_mode === undefined ? {} : { old_mode: s.old_mode, new_mode: s.new_mode })
    }))
  const count = (status: DiffStatus) => changes.filter((c) => c.status === status).length
  return {
    kind: p.kind,
    counts: {
      added: count("Added"),
      modified: count("Modified"),
      removed: count("Removed"),
      unchanged: p.result.skipped
    },
    changes,
    errors: p.result.errors
  }
}

/** Deleting more than this share of a kind needs --force. */
export const DELETE_THRESHOLD = 0.5

/** How many items of each kind the side a sync writes to holds. */
const sideSizes = (direction: LocalSyncDirection, disk: DiskSide, db: DbSide): Record<SyncKind, number> =>
  direction === "ToDatabase"
    ? {
        agents: db.agents.items.length,
        skills: db.skills.items.length,
        content: db.contents.length + db.storedPages.length,
        acl: db.rules.items.length
      }
    : {
        agents: disk.project.agents.length,
        skills: disk.project.skills.length,
        content: disk.contents.length,
        acl: disk.project.accessRules.length
      }

/**
 * Refuses a run that would delete more than half of a kind on the side it writes to (an empty or mistyped
 * tree would otherwise empty the database), unless forced; the transaction is then rolled back whole.
 */
const guardDeletes = (
  direction: LocalSyncDirection,
  sizes: Record<SyncKind, number>,
  planned: ReadonlyArray<KindPlan>
) => {
  for (const p of planned) {
    const deletes = p.steps.filter(
      (s) => (s.action === "delete" || s.action === "remove") && !s.key.startsWith("source:")
    )
    if (deletes.length > 0 && deletes.length > sizes[p.kind] * DELETE_THRESHOLD) {
      const where = direction === "ToDatabase" ? "rows in the database" : "items on disk"
      return Effect.fail(
        new Conflict({
          reason: `refusing to delete ${deletes.length} of ${sizes[p.kind]} ${p.kind} ${where} (more than half); nothing was changed. Check the services path, or pass --force if that is intended`,
          items: deletes.slice(0, 20).map((d) => `${p.kind} ${d.key}`)
        })
      )
    }
  }
  return Effect.void
}

/** The ports a local sync runs on. */
export type LocalSyncPorts = Workspace | Repos.Repos | SqlClient.SqlClient
export type LocalSyncFailure = IoError | DatabaseError | Conflict

/** The ports of the config: its workspace and the migrated project database. */
export const portsLayer = (config: Pick<SyncConfig, "servicesPath" | "projectRoot" | "databaseUrl">) =>
  Layer.mergeAll(WorkspaceLive.layer(config.servicesPath), Repos.layer).pipe(
    Layer.provideMerge(Database.layerMigrated(Database.optionsFromConfig(config)))
  )

/** The same, for the configuration in context. */
export const portsLayerFromConfig: Layer.Layer<LocalSyncPorts, DatabaseError | SyncInProgress, CurrentConfig> =
  Layer.unwrapEffect(Effect.map(CurrentConfig, portsLayer))

/**
 * The local sync program as a service: `diff` and `sync` close over the workspace and the project database it
 * was built with. `Default` builds those from `CurrentConfig`; `LocalSync.layer(config)` from a configuration,
 * and it also gives the ports (for what runs beside it on the same database).
 */
export class LocalSync extends Effect.Service<LocalSync>()("agentsync/LocalSync", {
  accessors: true,
  dependencies: [portsLayerFromConfig],
  effect: Effect.gen(function* () {
    // Only the ports: a method runs with its caller's context otherwise (its progress reporter, its run status).
    const ports = Context.pick(
      Workspace,
      SqlClient.SqlClient,
      Repos.AgentsRepo,
      Repos.SkillsRepo,
      Repos.ContentsRepo,
      Repos.AccessRulesRepo,
      Repos.ItemFilesRepo
    )(yield* Effect.context<LocalSyncPorts>())
    const onPorts = <A, E>(effect: Effect.Effect<A, E, LocalSyncPorts>) => Effect.provide(effect, ports)
    /** Disk vs database for the given kinds (all by default): Added is on disk only, Removed in the database only. */
    const diff = Effect.fn("LocalSync.diff")(function* (kinds?: ReadonlyArray<SyncKind>) {
      const chosen = kindsOf(kinds)
      const files = yield* readDiskFiles(chosen)
      const plans = yield* inTransaction(
        Effect.map(readSides(files, chosen, false), ({ disk, db }) =>
          plan({ direction: "ToDatabase", dryRun: true, deleteOrphans: true }, disk, db, chosen)
        )
      )
      const report: LocalDiffReport = { kinds: plans.map(asDiff), unsynced: files.unsynced, ...specialField(files) }
      return report
    }, onPorts)

    /**
     * One local sync: reads both sides, plans (pure), then applies the plan unless it is a dry run. The database
     * side is one transaction, held across the file writes of a sync to disk; files are written atomically.
     * Malformed files are reported in the results and skipped; the rest still syncs.
     */
    const sync = Effect.fn("LocalSync.sync")(function* (options: LocalSyncOptions) {
      const kinds = kindsOf(options.kinds)
      const dryRun = options.dryRun ?? false
      const o = { direction: options.direction, dryRun, deleteOrphans: options.deleteOrphans ?? false }
      yield* note("local sync: reading the tree and the database; nothing changed yet")
      // What a killed sync to disk left in the tree (temp files, staged folders) goes first.
      if (!dryRun) yield* Effect.flatMap(Workspace, (ws) => ws.sweepLitter())
      const files = yield* phase("reading the services tree", readDiskFiles(kinds))
      const plans = yield* inTransaction(
        Effect.gen(function* () {
          const { disk, db } = yield* phase("reading the database", readSides(files, kinds, o.direction === "ToDisk"))
          const planned = plan(o, disk, db, kinds)
          if (dryRun) return planned
          if (options.force !== true) yield* guardDeletes(o.direction, sideSizes(o.direction, disk, db), planned)
          yield* note(
            o.direction === "ToDatabase"
              ? "local sync: writing to the database in one transaction; stopped, it is rolled back and nothing changed"
              : "local sync: writing files, each whole (old or new bytes, never half); the database's record of them is rolled back; run it again to finish"
          )
          yield* applyPlans(planned)
          return planned
        })
      )
      if (!dryRun) yield* note("local sync: done and committed; only its report was not printed")
      const report: LocalSyncReport = {
        direction: options.direction,
        dry_run: dryRun,
        results: plans.map((p) => p.result),
        plan: plans.flatMap((p) => p.steps),
        unsynced: files.unsynced,
        ...specialField(files),
        unrecorded: plans.flatMap((p) => p.unrecorded)
      }
      return report
    }, onPorts)

    return { diff, sync } as const
  })
}) {
  /** The service and its ports for a configuration. */
  static readonly layer = (config: Pick<SyncConfig, "servicesPath" | "projectRoot" | "databaseUrl">) =>
    LocalSync.DefaultWithoutDependencies.pipe(Layer.provideMerge(portsLayer(config)))
  /** The pure planner (both sides in, the operations out). */
  static readonly plan = plan
  static readonly ALL_KINDS = ALL_KINDS
}

const forKind = (kind: SyncKind) => ({
  /** Disk vs database for this kind. */
  diff: () => Effect.map(LocalSync.diff([kind]), ({ kinds: [diff] }) => held(diff, `the local diff of ${kind}`)),
  /** A local sync of this kind only. */
  sync: (options: Omit<LocalSyncOptions, "kinds">) => LocalSync.sync({ ...options, kinds: [kind] })
})

export const AgentsLocalSync = forKind("agents")
export const SkillsLocalSync = forKind("skills")
export const ContentLocalSync = forKind("content")
export const AccessControlLocalSync = forKind("acl")
