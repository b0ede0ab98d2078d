/** `agentsync local diff | sync`: the services/ tree on disk against the project database (DATABASE_URL or the embedded default). */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Effect, Option, Schema } from "effect"
import { itemsNamed, type LocalSyncDirection, SyncKind } from "../domain/model.js"
import { escapeHidden } from "../domain/text.js"
import { InvalidInput } from "../errors.js"
import type { LocalDiffReport, LocalSync, LocalSyncPorts, LocalSyncReport } from "../programs/localSync.js"
import { escapePath } from "../services/nameBytes.js"
import { type SpecialFile, specialName } from "../services/state.js"
import type { Paint } from "./color.js"
import { emit, emitPatches, exitCodeOption, exitIfDiffers, patchOption, table } from "./output.js"
import { withProgram } from "./program.js"
import { globals, usage } from "./root.js"

const ALL_KINDS = SyncKind.literals
const isKind = Schema.is(SyncKind)

const kind = Options.text("kind").pipe(
  Options.withDescription(`comma-separated kinds: ${ALL_KINDS.join(",")} (default: all)`),
  Options.optional
)

/** `--kind agents,skills` → the kinds, or a usage error naming the unknown one. */
const parseKinds = (raw: Option.Option<string>) =>
  Option.match(raw, {
    onNone: () => Effect.succeed(ALL_KINDS),
    onSome: (text) => {
      const kinds = text
        .split(",")
        .map((k) => k.trim())
        .filter((k) => k !== "")
      const known = kinds.filter(isKind)
      const unknown = kinds.filter((k) => !isKind(k))
      return unknown.length > 0 || kinds.length === 0
        ? usage(`--kind: unknown kind ${JSON.stringify(unknown[0] ?? text)}; choose from ${ALL_KINDS.join(", ")}`)
        : Effect.succeed(known)
    }
  })

/**
 * Runs a local-sync program on the project's database and workspace (its code loaded only now); the embedded
 * database stops afterwards.
 */
const withProject = <A, E>(program: (local: typeof LocalSync) => Effect.Effect<A, E, LocalSync | LocalSyncPorts>) =>
  withProgram(
    () => import("../programs/localSync.js"),
    ({ LocalSync }, config) => program(LocalSync).pipe(Effect.provide(LocalSync.layer(config))),
    { tree: true }
  )

const errorCount = (report: LocalSyncReport) => itemsNamed(report.results.flatMap((r) => r.errors))

const failOnErrors = (n: number) =>
  n === 0
    ? Effect.void
    : Effect.fail(
        new InvalidInput({
          reason: `${n} item${n === 1 ? "" : "s"} could not be read and ${n === 1 ? "was" : "were"} skipped; the others were synced`
        })
      )

/**
 * What local sync does not treat: a count, or with --verbose one line per file. Here and in every line below, a path
 * or key read from disk is shown as `escapePath` shows it, so that a name's control characters reach no terminal.
 */
export const unsyncedLines = (unsynced: ReadonlyArray<string>, listAll: boolean): ReadonlyArray<string> =>
  unsynced.length === 0
    ? []
    : listAll
      ? unsynced.map((p) => `not synced by local sync: ${escapePath(p)} (carried by file sync)`)
      : [
          `${unsynced.length} file${unsynced.length === 1 ? "" : "s"} not synced by local sync (carried by file sync); --verbose lists them`
        ]

/**
 * Special files of the tree, one line each whatever the verbosity: neither sync opens one (an open of a FIFO would
 * wait for a writer forever), and none is left out unsaid.
 */
export const specialLines = (special: ReadonlyArray<SpecialFile> | undefined): ReadonlyArray<string> =>
  (special ?? []).map(
    (s) =>
      `not read: ${escapePath(s.path)} is ${specialName(s.kind)}; local sync and file sync take only regular files (and file sync symbolic links) and never open one`
  )

/** Pages that stay unrecorded (rendered again each run): a count, or with --verbose one line per page. */
export const unrecordedLines = (pages: ReadonlyArray<string>, listAll: boolean): ReadonlyArray<string> =>
  pages.length === 0
    ? []
    : listAll
      ? pages.map((p) => `the written page does not read back as its row; it stays unrecorded: ${escapePath(p)}`)
      : [
          `${pages.length} written page${pages.length === 1 ? " does" : "s do"} not read back as ${pages.length === 1 ? "its row" : "their rows"} and stay${pages.length === 1 ? "s" : ""} unrecorded (rendered again each run); --verbose lists them`
        ]

const shownPaths = (paths: ReadonlyArray<string>) => paths.map(escapePath).join(", ")

const statusMark = { Added: "+", Modified: "~", Removed: "-", Unchanged: "=" } as const

/** A changed executable bit in git's words, after an item's key. */
const modeNote = (c: { readonly old_mode?: string | undefined; readonly new_mode?: string | undefined }) =>
  c.old_mode === undefined || c.new_mode === undefined ? "" : ` (old mode ${c.old_mode}, new mode ${c.new_mode})`

/**
 * The table of a diff, and of a sync below: each column counts items, "errors" too (the items with a problem, as
 * the closing failure counts them), not the problems: a file with a problem on each of three lines is one.
 */
export const humanDiff = (report: LocalDiffReport, listAll: boolean, p: Paint) => {
  const lines = [
    table(
      ["kind", "added", "modified", "removed", "unchanged", "errors"],
      report.kinds.map((k) => [
        k.kind,
        k.counts.added,
        k.counts.modified,
        k.counts.removed,
        k.counts.unchanged,
        itemsNamed(k.errors)
      ])
    )
  ]
  for (const k of report.kinds)
    for (const c of k.changes)
      lines.push(p.status(c.status, `${statusMark[c.status]} ${k.kind} ${escapePath(c.key)}${modeNote(c)}`))
  for (const k of report.kinds) for (const e of k.errors) lines.push(p.red(`! ${escapeHidden(e.message)}`))
  lines.push(...unsyncedLines(report.unsynced, listAll))
  lines.push(...specialLines(report.special_files))
  lines.push("(added: on disk only; removed: in the database only)")
  return lines.join("\n")
}

export const humanSync = (report: LocalSyncReport, listAll: boolean, p: Paint) => {
  const lines = [
    table(
      ["kind", "direction", "synced", "skipped", "deleted", "errors"],
      report.results.map((r) => [r.kind, r.direction, r.synced, r.skipped, r.deleted, itemsNamed(r.errors)])
    )
  ]
  if (report.dry_run) {
    lines.push(report.plan.length === 0 ? "dry run: nothing to do" : "dry run: the plan")
    for (const s of report.plan)
      lines.push(
        `  ${s.action} ${s.kind} ${escapePath(s.key)} (${s.status})${s.paths.length === 0 ? "" : ` ${shownPaths(s.paths)}`}${modeNote(s)}`
      )
  } else {
    // Every deletion is named, never only counted.
    for (const s of report.plan) {
      if (s.action === "delete") lines.push(p.red(`deleted from the database: ${s.kind} ${escapePath(s.key)}`))
      if (s.action === "remove")
        lines.push(
          p.red(
            `removed from disk: ${s.kind} ${escapePath(s.key)}${s.paths.length === 0 ? "" : ` (${shownPaths(s.paths)})`}`
          )
        )
    }
  }
  for (const r of report.results) for (const e of r.errors) lines.push(p.red(`! ${escapeHidden(e.message)}`))
  lines.push(...unsyncedLines(report.unsynced, listAll))
  lines.push(...specialLines(report.special_files))
  lines.push(...unrecordedLines(report.unrecorded, listAll))
  return lines.join("\n")
}

const diff = Command.make("diff", { kind, exitCode: exitCodeOption, patch: patchOption }, ({ kind, exitCode, patch }) =>
  Effect.gen(function* () {
    const { verbose } = yield* globals
    const kinds = yield* parseKinds(kind)
    const errors = (r: LocalDiffReport) => failOnErrors(itemsNamed(r.kinds.flatMap((k) => k.errors)))
    const report = patch
      ? yield* Effect.gen(function* () {
          // Loaded only for -p; read in the same session as the diff.
          const { localPatches } = yield* Effect.promise(() => import("../programs/patches.js"))
          const [r, patches] = yield* withProject((local) => Effect.zip(local.diff(kinds), localPatches(kinds)))
          yield* emitPatches({ ...r, patches }, (p) => humanDiff(r, verbose, p), patches, errors(r))
          return r
        })
      : yield* Effect.gen(function* () {
          const r = yield* withProject((local) => local.diff(kinds))
          yield* emit(r, (p) => humanDiff(r, verbose, p), errors(r))
          return r
        })
    yield* exitIfDiffers(
      exitCode,
      report.kinds.some((k) => k.counts.added + k.counts.modified + k.counts.removed > 0)
    )
  })
).pipe(
  Command.withDescription(
    "compare the services/ tree with the project database, per kind (-p: what changed inside, database a/ vs disk b/)"
  )
)

const toDb = Options.boolean("to-db").pipe(Options.withDescription("write the files' items into the database"))
const toDisk = Options.boolean("to-disk").pipe(Options.withDescription("write the database's items into files"))
const dryRun = Options.boolean("dry-run").pipe(Options.withDescription("print the plan, write nothing anywhere"))
const deleteOrphans = Options.boolean("delete-orphans").pipe(
  Options.withDescription("also delete rows without a file (--to-db) or files without a row (--to-disk)")
)
const force = Options.boolean("force").pipe(
  Options.withDescription("allow deleting more than half of a kind on the side written to")
)

const sync = Command.make("sync", { toDb, toDisk, kind, dryRun, deleteOrphans, force }, (o) =>
  Effect.gen(function* () {
    const { verbose } = yield* globals
    if (o.toDb === o.toDisk) return yield* usage("choose exactly one of --to-db or --to-disk")
    const direction: LocalSyncDirection = o.toDb ? "ToDatabase" : "ToDisk"
    const kinds = yield* parseKinds(o.kind)
    const report = yield* withProject((local) =>
      local.sync({ direction, kinds, dryRun: o.dryRun, deleteOrphans: o.deleteOrphans, force: o.force })
    )
    yield* emit(report, (p) => humanSync(report, verbose, p), failOnErrors(errorCount(report)))
  })
).pipe(Command.withDescription("sync the services/ tree and the project database, one direction, in one transaction"))

export const local = Command.make("local").pipe(
  Command.withDescription(
    "the services/ tree on disk against the project database (DATABASE_URL, or embedded under .agentsync/pgdata)"
  ),
  Command.withSubcommands([diff, sync])
)
