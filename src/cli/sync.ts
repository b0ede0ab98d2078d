/** `agentsync sync [--push|--pull] [--dry-run]`: files then database, each operation with its state; the exit code says whether all completed. */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Effect } from "effect"
import { InvalidInput } from "../errors.js"
import type { DbSyncResult } from "../programs/dbSync.js"
import type { FilesReport } from "../programs/files.js"
import type { SyncAllResult } from "../programs/syncAll.js"
import { importText } from "./db.js"
import { noteLeftOut } from "./files.js"
import { emit } from "./output.js"
import { withProgram } from "./program.js"

const pushOpt = Options.boolean("push").pipe(Options.withDescription("local → cloud (the default)"))
const pullOpt = Options.boolean("pull").pipe(Options.withDescription("cloud → local"))
const dryRun = Options.boolean("dry-run").pipe(
  Options.withDescription("report what each operation would do; change nothing")
)

const stateText = (r: SyncAllResult["operations"][number]) => {
  const s = r.state
  switch (s._tag) {
    case "Completed":
      return "Completed"
    case "Partial":
      return `Partial (${s.completed} of ${s.total})`
    case "NotStarted":
      return `NotStarted: ${s.reason}`
    case "Failed":
      return `Failed: ${s.error}`
  }
}

const detail = (r: SyncAllResult["operations"][number], dry: boolean) => {
  if (r.report === undefined) return []
  if (r.operation === "database") return [importText((r.report as DbSyncResult).tables, dry)]
  const f = r.report as FilesReport
  const acts = Object.entries(f.actions)
    .map(([k, v]) => `${v} ${k}`)
    .join(", ")
  return [`files: ${acts === "" ? "nothing to do, up to date" : acts}`]
}

const human = (r: SyncAllResult) => () =>
  [
    `sync ${r.direction === "Push" ? "--push" : "--pull"}${r.dry_run ? " (dry run)" : ""}`,
    ...r.operations.flatMap((o) => [
      `${o.operation}: ${stateText(o)}`,
      ...detail(o, r.dry_run).map((l) => l.replace(/^/gm, "  "))
    ])
  ].join("\n")

export const sync = Command.make("sync", { push: pushOpt, pull: pullOpt, dryRun }, (o) =>
  Effect.gen(function* () {
    if (o.push && o.pull) return yield* new InvalidInput({ reason: "choose one of --push or --pull" })
    const { decisiveError, result } = yield* withProgram(
      () => import("../programs/syncAll.js"),
      ({ decisiveError, SyncService }) =>
        Effect.flatMap(SyncService, (s) => s.syncAll({ direction: o.pull ? "Pull" : "Push", dryRun: o.dryRun })).pipe(
          Effect.provide(SyncService.Default),
          Effect.map((result) => ({ decisiveError, result }))
        ),
      { tree: o.pull ? "pull" : "files" }
    )
    const { errors: _errors, ...shown } = result
    const error = decisiveError(result)
    const files = result.operations.find((op) => op.operation === "files")
    const report = files?.report as FilesReport | undefined
    yield* noteLeftOut({ left_out: report?.left_out ?? files?.left_out ?? [] })
    yield* emit(shown, human(result), error === undefined ? Effect.void : Effect.fail(error))
  })
).pipe(
  Command.withDescription("files then database, each operation reported as NotStarted, Partial, Completed or Failed")
)
