/** `agentsync files diff | push | pull [--dry-run] [--delete] [--force]`: file sync of the services/ tree with the tenant. */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Effect, Layer } from "effect"
import { CurrentConfig } from "../config.js"
import { Conflict } from "../errors.js"
import type { FileSyncService, FilesReport } from "../programs/files.js"
import { progressFor } from "../stages/progress.js"
import { emit, table } from "./output.js"
import { globals, projectConfig } from "./root.js"

const dryRun = Options.boolean("dry-run").pipe(Options.withDescription("show the plan; change nothing, state files included"))
const deleteOpt = Options.boolean("delete").pipe(Options.withDescription("carry deletions to the other side"))
const force = Options.boolean("force").pipe(
  Options.withDescription("take this side where both changed, and allow deleting more than half of the tree")
)

/** Runs a FileSyncService program with the client and configuration of the project (its code loaded only now). */
const run = <A, E, R>(program: (service: typeof FileSyncService.Service, json: boolean) => Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const g = yield* globals
    const config = yield* projectConfig()
    const [files, api] = yield* Effect.promise(() => Promise.all([import("../programs/files.js"), import("../services/SyncApi.js")]))
    const layer = files.layer.pipe(Layer.provideMerge(api.layerFromConfig), Layer.provide(Layer.succeed(CurrentConfig, config)))
    return yield* Effect.flatMap(files.FileSyncService, (s) => program(s, g.json)).pipe(Effect.provide(layer))
  })

const LIMIT = 200

const human = (r: FilesReport) => () => {
  const lines: Array<string> = []
  if (r.files.length > 0) {
    const rows = r.files.slice(0, LIMIT).map((f) => [f.status, f.action ?? "", f.path, f.note ?? ""])
    lines.push(table(r.command === "diff" ? ["status", "", "path", ""] : ["status", "action", "path", "note"], rows))
    if (r.files.length > LIMIT) lines.push(`… and ${r.files.length - LIMIT} more (--json lists all)`)
  }
  const c = r.counts
  const counts = `${c.added} added, ${c.modified} modified, ${c.removed} removed, ${c.unchanged} unchanged (${r.command === "pull" ? "remote vs local" : "local vs remote"}${r.remote_revision === null ? ", remote empty" : ` ${r.remote_revision}`})`
  lines.push(counts)
  const acts = Object.entries(r.actions)
    .map(([k, v]) => `${v} ${k}`)
    .join(", ")
  if (r.command !== "diff") {
    const what = r.dry_run ? "would do" : "did"
    lines.push(`${r.command} ${what}: ${acts === "" ? "nothing, up to date" : acts}`)
  }
  if (r.command === "push" && !r.dry_run && r.revision !== r.remote_revision) {
    lines.push(`pushed ${r.files_sent ?? 0} file(s), ${r.bytes_sent ?? 0} bytes compressed; head is now ${r.revision}`)
  }
  if (r.backup !== undefined) lines.push(`replaced files were moved to ${r.backup}`)
  return lines.join("\n")
}

/** Prints the report; a dry run that found conflicts still ends as the real run would: exit 3. */
const finish = (r: FilesReport) =>
  Effect.zipRight(
    emit(r, human(r)),
    r.conflicts.length > 0
      ? Effect.fail(new Conflict({ reason: `${r.conflicts.length} file(s) changed on both sides since the last sync`, items: r.conflicts.slice(0, 50) }))
      : Effect.void
  )

const diff = Command.make("diff", {}, () => run((s, json) => Effect.flatMap(s.diff({ progress: progressFor(json) }), finish))).pipe(
  Command.withDescription("compare the local services/ tree with the remote head, file by file")
)

const push = Command.make("push", { dryRun, delete: deleteOpt, force }, (o) =>
  run((s, json) => Effect.flatMap(s.push({ dryRun: o.dryRun, delete: o.delete, force: o.force, progress: progressFor(json) }), finish))
).pipe(Command.withDescription("send the files changed locally as a new remote revision (409/exit 3 if the head moved)"))

const pull = Command.make("pull", { dryRun, delete: deleteOpt, force }, (o) =>
  run((s, json) => Effect.flatMap(s.pull({ dryRun: o.dryRun, delete: o.delete, force: o.force, progress: progressFor(json) }), finish))
).pipe(Command.withDescription("write the files changed remotely, verified and swapped in atomically, with a backup"))

export const files = Command.make("files").pipe(
  Command.withDescription("sync the services/ tree with the tenant server as tar.gz bundles"),
  Command.withSubcommands([diff, push, pull])
)
