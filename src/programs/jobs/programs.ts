/** What a configured job runs: the programs of the command line, with the options its entry gives, and a one-line summary. */
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import { Effect, Layer, Option } from "effect"
import type { CurrentConfig } from "../../config.js"
import type { Job, OptionsOf } from "../../domain/jobs/spec.js"
import { itemsNamed, type LocalSyncDirection, type SyncKind } from "../../domain/model.js"
import { CommandFailed, Conflict, InvalidInput } from "../../errors.js"

/** What every job program needs: the project's configuration, and (for skill sync) the platform's processes. */
export type JobRequirements = CurrentConfig | CommandExecutor.CommandExecutor

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`

const direction = (d: "to_db" | "to_disk" | undefined): LocalSyncDirection =>
  d === "to_disk" ? "ToDisk" : "ToDatabase"

/** `local sync`: like the command, items that could not be read fail the run (the others are synced). */
const localSync = (options: {
  readonly direction: LocalSyncDirection
  readonly kinds: ReadonlyArray<SyncKind> | undefined
  readonly deleteOrphans: boolean
}) =>
  Effect.gen(function* () {
    const { LocalSync } = yield* Effect.promise(() => import("../localSync.js"))
    const report = yield* LocalSync.sync({ ...options, dryRun: false }).pipe(Effect.provide(LocalSync.Default))
    const errors = report.results.flatMap((r) => r.errors)
    const summary = report.results.map((r) => `${r.kind}: ${r.synced} synced, ${r.deleted} deleted`).join("; ")
    const [first] = errors
    if (first !== undefined) {
      return yield* new InvalidInput({
        reason: `${plural(itemsNamed(errors), "item")} could not be read (${first.message}); ${summary}`
      })
    }
    return summary
  })

const filesSync = (which: "push" | "pull", o: OptionsOf<"files-push">) =>
  Effect.gen(function* () {
    const [files, api] = yield* Effect.promise(() =>
      Promise.all([import("../files.js"), import("../../services/SyncApi.js")])
    )
    const service = yield* files.FileSyncService.pipe(
      Effect.provide(files.layer.pipe(Layer.provideMerge(api.layerFromConfig)))
    )
    const report = yield* service[which]({ dryRun: false, delete: o.delete ?? false, force: o.force ?? false })
    if (report.conflicts.length > 0) {
      return yield* new Conflict({
        reason: `${plural(report.conflicts.length, "file")} changed on both sides since the last sync`,
        items: report.conflicts.slice(0, 50)
      })
    }
    const acts = Object.entries(report.actions).map(([k, v]) => `${v} ${k}`)
    return `${which}: ${acts.length === 0 ? "up to date" : acts.join(", ")}`
  })

const dbSync = (which: "push" | "pull") =>
  Effect.gen(function* () {
    const { DatabaseSyncService } = yield* Effect.promise(() => import("../dbSync.js"))
    const report = yield* Effect.flatMap(DatabaseSyncService, (s) => s[which]({ dryRun: false })).pipe(
      Effect.provide(DatabaseSyncService.Default)
    )
    return `${which} (${report.transport}): ${report.tables.map((t) => `${t.table} ${t.inserted} inserted, ${t.updated} updated, ${t.skipped} skipped`).join("; ")}`
  })

const skillSync = (o: OptionsOf<"skill-sync">) =>
  Effect.gen(function* () {
    const skills = yield* Effect.promise(() => import("../skillSync.js"))
    const r = yield* skills.SkillSync.sync({
      scope: o.scope,
      toHome: o.to_home,
      toRepo: o.to_repo,
      prefer: o.prefer,
      delete: o.delete,
      tools: o.tools
    }).pipe(Effect.provide(skills.SkillSync.Default))
    const conflict = skills.conflictOf(r)
    if (Option.isSome(conflict)) return yield* conflict.value
    if (r.errors.length > 0 || r.skipped.length > 0) {
      const lines = [
        ...r.errors.map((e) => `${e.source}: ${e.reason}`),
        ...r.skipped.map((k) => `${k.source}:${k.unit} [${k.tool}]: ${k.reason}`)
      ]
      return yield* new CommandFailed({ command: "skill sync", exitCode: 1, stderr: lines.join("\n") })
    }
    return `${r.summary.toHome} to home, ${r.summary.toRepo} to repo, ${plural(r.commits.length, "commit")}`
  })

/** The program of a configured job. Its code is loaded when it first runs, as the command line does. */
export const programOf = (job: Job): Effect.Effect<string, unknown, JobRequirements> => {
  switch (job.run) {
    case "local-sync":
      return localSync({
        direction: direction(job.options.direction),
        kinds: job.options.kinds,
        deleteOrphans: job.options.delete_orphans ?? false
      })
    case "access-sync":
      // As the reference crate's access-control job: the rule file replaces the stored rules, orphans included.
      return localSync({
        direction: direction(job.options.direction),
        kinds: ["acl"],
        deleteOrphans: job.options.delete_orphans ?? true
      })
    case "files-push":
      return filesSync("push", job.options)
    case "files-pull":
      return filesSync("pull", job.options)
    case "db-push":
      return dbSync("push")
    case "db-pull":
      return dbSync("pull")
    case "skill-sync":
      return skillSync(job.options)
  }
}

/** A configured job in the form the scheduler runs. */
export const scheduledJob = (job: Job) => ({ ...job, program: programOf(job) })
