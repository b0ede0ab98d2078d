/** `agentsync files diff | push | pull [--dry-run] [--delete] [--force] [--revision R] | log | backups | restore ID`: file sync of the services/ tree with the tenant. */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Effect, Layer, Option } from "effect"
import type { CurrentConfig } from "../config.js"
import { Conflict } from "../errors.js"
import type { FileSyncService, FilesReport } from "../programs/files.js"
import { currentProgress, type Progress } from "../services/Progress.js"
import { human, leftOutLine } from "./filesText.js"
import { emit, emitPatches, exitCodeOption, exitIfDiffers, note, patchOption, tableOf } from "./output.js"
import { withProgram } from "./program.js"

const dryRun = Options.boolean("dry-run").pipe(
  Options.withDescription("show the plan; change nothing, state files included")
)
const deleteOpt = Options.boolean("delete").pipe(Options.withDescription("carry deletions to the other side"))
const force = Options.boolean("force").pipe(
  Options.withDescription("take this side where both changed, and allow deleting more than half of the tree")
)

/** Runs a FileSyncService program with the client and configuration of the project (its code loaded only now). */
const run = <A, E, R>(
  program: (service: typeof FileSyncService.Service, progress: Progress) => Effect.Effect<A, E, R>,
  tree: "files" | "pull" = "files"
) =>
  Effect.flatMap(currentProgress, (progress) =>
    withProgram(
      () => Promise.all([import("../programs/files.js"), import("../services/SyncApi.js")]),
      ([files, api]) =>
        Effect.flatMap(files.FileSyncService, (s) => program(s, progress)).pipe(
          Effect.provide(files.FileSyncService.Default.pipe(Layer.provideMerge(api.layerFromConfig)))
        ),
      { tree }
    )
  )

/** Says on stderr what at the top of the tree the run did not carry, if anything. */
export const noteLeftOut = (r: Pick<FilesReport, "left_out">) => {
  const line = leftOutLine(r)
  return line === undefined ? Effect.void : note(line)
}

/**
 * A push, pull or diff that fails names what at the top of the tree file sync does not carry all the same (as true
 * of the failed run as of one that went through, and what a user fixing it may be looking for). A top that cannot
 * be listed then is left unsaid: the run's own failure is the one to report.
 */
const notingOnFailure = <A, E, R>(s: typeof FileSyncService.Service, run: Effect.Effect<A, E, R>) =>
  Effect.tapError(run, () =>
    Effect.flatMap(
      Effect.orElseSucceed(s.leftOut(), () => []),
      (names) => noteLeftOut({ left_out: names })
    )
  )

/** Prints the report; a dry run that found conflicts still ends as the real run would: exit 3. */
const finish = (r: FilesReport) =>
  Effect.zipRight(
    noteLeftOut(r),
    emit(
      r,
      human(r),
      r.conflicts.length > 0
        ? Effect.fail(
            new Conflict({
              reason: `${r.conflicts.length} file(s) changed on both sides since the last sync`,
              items: r.conflicts.slice(0, 50)
            })
          )
        : Effect.void
    )
  )

const diff = Command.make("diff", { exitCode: exitCodeOption, patch: patchOption }, (o) =>
  run((s, progress) =>
    Effect.gen(function* () {
      const r = yield* notingOnFailure(s, s.diff({ progress }))
      if (o.patch) {
        const patches = yield* s.patches(r)
        yield* noteLeftOut(r)
        yield* emitPatches({ ...r, patches }, human(r), patches)
      } else yield* finish(r)
      yield* exitIfDiffers(o.exitCode, r.counts.added + r.counts.modified + r.counts.removed > 0)
    })
  )
).pipe(
  Command.withDescription(
    "compare the local services/ tree with the remote head, file by file (-p: what changed inside, remote a/ vs local b/)"
  )
)

const push = Command.make("push", { dryRun, delete: deleteOpt, force }, (o) =>
  run((s, progress) =>
    Effect.flatMap(notingOnFailure(s, s.push({ dryRun: o.dryRun, delete: o.delete, force: o.force, progress })), finish)
  )
).pipe(
  Command.withDescription("send the files changed locally as a new remote revision (409/exit 3 if the head moved)")
)

const revision = Options.text("revision").pipe(
  Options.withDescription(
    "write this older revision's tree instead of the head's (an id or its start, from files log)"
  ),
  Options.optional
)

const pull = Command.make("pull", { dryRun, delete: deleteOpt, force, revision }, (o) =>
  run(
    (s, progress) =>
      Effect.flatMap(
        notingOnFailure(
          s,
          s.pull({
            dryRun: o.dryRun,
            delete: o.delete,
            force: o.force,
            progress,
            ...Option.match(o.revision, { onNone: () => ({}), onSome: (r) => ({ revision: r }) })
          })
        ),
        finish
      ),
    "pull"
  )
).pipe(Command.withDescription("write the files changed remotely, verified and swapped in atomically, with a backup"))

const limit = Options.integer("limit").pipe(Options.withDescription("how many revisions"), Options.withDefault(20))

const log = Command.make("log", { limit }, (o) =>
  run((s) =>
    Effect.flatMap(s.log(Math.min(Math.max(o.limit, 1), 1000)), (revisions) =>
      emit({ revisions }, () =>
        tableOf(
          revisions,
          "no revisions yet: files push makes the first",
          ["revision", "time", "by", "files", "added", "changed", "deleted"],
          (r) => [
            r.id.slice(0, 8),
            r.created_at.replace(/\.\d+Z$/, "Z"),
            r.token_name === undefined || r.token_name === null ? r.author : `${r.author} (token ${r.token_name})`,
            r.files,
            r.added ?? "",
            r.changed ?? "",
            r.deleted ?? ""
          ]
        )
      )
    )
  )
).pipe(Command.withDescription("the tenant's revisions, newest first: who pushed each and what it changed"))

/** Runs a program that needs only the project's configuration, no server (its code loaded only now). */
const offline = <A, E>(program: (files: typeof import("../programs/files.js")) => Effect.Effect<A, E, CurrentConfig>) =>
  withProgram(() => import("../programs/files.js"), program, { tree: "files" })

const size = (n: number) => (n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 / 1024).toFixed(1)} MiB`)

const backups = Command.make("backups", {}, () =>
  Effect.flatMap(
    offline((f) => f.backups()),
    (list) =>
      emit({ backups: list }, () =>
        tableOf(
          list,
          "no backups: a pull keeps here what it replaces or deletes",
          ["id", "created", "files", "size", "made by"],
          (b) => [b.id, b.created_at, b.files, size(b.bytes), b.cause]
        )
      )
  )
).pipe(Command.withDescription("list the backups pulls made of the files they replaced or deleted, newest first"))

const id = Args.text({ name: "ID" }).pipe(Args.withDescription("a backup id, as `files backups` lists them"))

const restore = Command.make("restore", { id }, (o) =>
  Effect.flatMap(
    offline((f) => f.restore(o.id)),
    (r) =>
      emit(r, () =>
        [
          `restored ${r.restored.length} file(s) from backup ${r.id}`,
          ...(r.backup === undefined ? [] : [`the files they replaced were kept in backup ${r.backup}`])
        ].join("\n")
      )
  )
).pipe(
  Command.withDescription(
    "put back the files of a backup (what they replace is kept in a new backup); also abandons a pull that could not finish"
  )
)

export const files = Command.make("files").pipe(
  Command.withDescription(
    "sync the services/ tree with the tenant server as compressed tar archives (gzip, or zstd where both ends read it)"
  ),
  Command.withSubcommands([diff, push, pull, log, backups, restore])
)
