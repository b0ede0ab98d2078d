/** `agentsync db diff | push | pull [--dry-run]`: database sync of users, skills and contexts with the cloud. */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Effect } from "effect"
import type { TableImportReport } from "../domain/db/importPlan.js"
import type { DatabaseSyncService, DbDiffResult, DbSyncResult } from "../programs/dbSync.js"
import { emit, exitCodeOption, exitIfDiffers, table } from "./output.js"
import { withProgram } from "./program.js"

const dryRun = Options.boolean("dry-run").pipe(
  Options.withDescription("count what would be inserted, updated and skipped; write nothing")
)

/** Runs a DatabaseSyncService program with the project's configuration (its code loaded only now). */
const run = <A, E, R>(program: (service: DatabaseSyncService) => Effect.Effect<A, E, R>) =>
  withProgram(
    () => import("../programs/dbSync.js"),
    ({ DatabaseSyncService }) =>
      Effect.flatMap(DatabaseSyncService, program).pipe(Effect.provide(DatabaseSyncService.Default))
  )

const TABLE_LABEL = { users: "users", skills: "skills", contexts: "user_contexts" } as const

export const diffText = (r: DbDiffResult) =>
  [
    `local vs ${r.remote} (${r.transport})`,
    table(
      ["table", "only local", "only remote", "different", "equal"],
      r.tables.map((t) => [TABLE_LABEL[t.table], t.only_local, t.only_remote, t.different, t.equal])
    )
  ].join("\n")

/** The per-table counts of an import, and the skipped rows with their reasons. */
export const importText = (tables: ReadonlyArray<TableImportReport>, dryRun: boolean) => {
  const lines = [
    table(
      [
        "table",
        dryRun ? "would insert" : "inserted",
        dryRun ? "would update" : "updated",
        "unchanged",
        "skipped",
        "session cleared"
      ],
      tables.map((t) => [TABLE_LABEL[t.table], t.inserted, t.updated, t.unchanged, t.skipped, t.session_cleared])
    )
  ]
  for (const t of tables) {
    for (const s of t.skips) lines.push(`skipped ${TABLE_LABEL[t.table]} ${s.id}: ${s.reason}`)
    if (t.skipped > t.skips.length)
      lines.push(
        `… and ${t.skipped - t.skips.length} more skipped in ${TABLE_LABEL[t.table]} (--json lists the first ${t.skips.length})`
      )
  }
  return lines.join("\n")
}

const syncText = (r: DbSyncResult) => () =>
  [
    `${r.direction} ${r.direction === "push" ? "to" : "from"} ${r.remote} (${r.transport})${r.dry_run ? ", dry run: nothing written" : ""}`,
    importText(r.tables, r.dry_run)
  ].join("\n")

const diff = Command.make("diff", { exitCode: exitCodeOption }, (o) =>
  run((s) =>
    Effect.flatMap(s.diff(), (r) =>
      Effect.zipRight(
        emit(r, () => diffText(r)),
        exitIfDiffers(
          o.exitCode,
          r.tables.some((t) => t.only_local + t.only_remote + t.different > 0)
        )
      )
    )
  )
).pipe(Command.withDescription("per table: rows only local, only remote, different, equal"))

const push = Command.make("push", { dryRun }, (o) =>
  run((s) => Effect.flatMap(s.push({ dryRun: o.dryRun }), (r) => emit(r, syncText(r))))
).pipe(Command.withDescription("upsert the local users, skills and contexts into the cloud database"))

const pull = Command.make("pull", { dryRun }, (o) =>
  run((s) => Effect.flatMap(s.pull({ dryRun: o.dryRun }), (r) => emit(r, syncText(r))))
).pipe(Command.withDescription("upsert the cloud users, skills and contexts into the local database"))

export const db = Command.make("db").pipe(
  Command.withDescription("sync the users, skills and contexts tables between the local and the cloud database"),
  Command.withSubcommands([diff, push, pull])
)
