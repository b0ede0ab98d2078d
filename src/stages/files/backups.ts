/** Backups of pulls: what a pull replaced or deleted, kept in `.agentsync/backups/<id>/`, bounded in count and age, listed and restored. */
import { randomBytes } from "node:crypto"
import * as nodePath from "node:path"
import { Effect, Schema } from "effect"
import { InvalidInput, ioError as io } from "../../errors.js"
import { stateOf } from "../../services/FileState.js"
import { swap } from "./swap.js"

/** A new run id: a sortable time stamp and a random suffix (staging folders and backups share it). */
export const newRunId = () => `${new Date().toISOString().replace(/[:.]/g, "-")}-${randomBytes(3).toString("hex")}`

const ID = /^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z-[0-9a-f]{6}$/

/** When a run id was made, as an ISO time (its stamp with the colons and the dot put back). */
const madeAt = (id: string) => id.slice(0, 24).replace(/T(\d\d)-(\d\d)-(\d\d)-(\d{3})Z/, "T$1:$2:$3.$4Z")

const Meta = Schema.Struct({
  id: Schema.String,
  created_at: Schema.String,
  /** What made it: the revision a pull wrote, or the backup a restore put back. */
  cause: Schema.String,
  files: Schema.Array(Schema.String)
})

/** How many backups are kept and for how long: the newest `keep`, and none older than `maxAgeDays`. */
export interface BackupPolicy {
  readonly keep: number
  readonly maxAgeDays: number
}

export const BACKUP_POLICY: BackupPolicy = { keep: 10, maxAgeDays: 30 }

/** The policy with `AGENTSYNC_BACKUPS_KEEP` and `AGENTSYNC_BACKUPS_MAX_AGE_DAYS` laid over the defaults. */
export const backupPolicy = (env: Readonly<Record<string, string | undefined>>): BackupPolicy => {
  const pick = (name: string, fallback: number) => {
    const n = Number(env[name] ?? Number.NaN)
    return Number.isFinite(n) && n >= 0 ? n : fallback
  }
  return {
    keep: Math.max(1, pick("AGENTSYNC_BACKUPS_KEEP", BACKUP_POLICY.keep)),
    maxAgeDays: pick("AGENTSYNC_BACKUPS_MAX_AGE_DAYS", BACKUP_POLICY.maxAgeDays)
  }
}

/** Records what a backup holds and why, once its files are in; false when the run made no backup. */
export const recordBackup = Effect.fn("backups.record")(function* (projectRoot: string, backup: string, cause: string) {
  const state = yield* stateOf(projectRoot)
  const id = nodePath.basename(backup)
  const files = yield* state.backupFiles(id)
  if (files === undefined) return false
  yield* state.recordBackup(id, JSON.stringify({ id, created_at: new Date().toISOString(), cause, files }))
  return true
})

export interface BackupInfo {
  readonly id: string
  readonly created_at: string
  readonly cause: string
  readonly files: number
  readonly bytes: number
  readonly path: string
}

/** The backups of a project, newest first. */
export const listBackups = Effect.fn("backups.list")(function* (projectRoot: string) {
  const state = yield* stateOf(projectRoot)
  const names = yield* state.backupNames()
  const out: Array<BackupInfo> = []
  for (const id of names
    .filter((n) => ID.test(n))
    .sort()
    .reverse()) {
    // A backup that cannot be read is left out of the list; one whose run was stopped before recording it is listed.
    const info = yield* Effect.orElseSucceed(state.backupContents(id), () => undefined)
    if (info === undefined) continue
    const meta = Schema.decodeUnknownOption(Schema.parseJson(Meta))(info.record ?? "")
    out.push({
      id,
      created_at: meta._tag === "Some" ? meta.value.created_at : madeAt(id),
      cause: meta._tag === "Some" ? meta.value.cause : "unrecorded (the run that made it was stopped)",
      files: info.files.length,
      bytes: info.bytes,
      path: nodePath.join(state.backups, id)
    })
  }
  return out
})

/** Removes backups beyond the policy's count or age, never the newest and never one an unfinished pull needs. */
export const pruneBackups = Effect.fn("backups.prune")(function* (projectRoot: string, policy: BackupPolicy) {
  const state = yield* stateOf(projectRoot)
  const names = (yield* state.backupNames())
    .filter((n) => ID.test(n))
    .sort()
    .reverse()
  const pending = (yield* state.read("pull-journal.json")) ?? ""
  const oldest = Date.now() - policy.maxAgeDays * 86_400_000
  const removed: Array<string> = []
  for (const [i, id] of names.entries()) {
    if (i === 0 || pending.includes(id)) continue
    const made = Date.parse(madeAt(id))
    if (i < policy.keep && !(made < oldest)) continue
    yield* state.removeBackup(id)
    removed.push(id)
  }
  return removed
})

/**
 * Puts the files of a backup back at their paths, through the same staging, journal and swap as a pull, so
 * what they replace is itself kept in a new backup. A pull that could not finish and made this backup is
 * abandoned first: its journal and staged files go, and the tree gets back the files it had replaced.
 */
export const restoreBackup = Effect.fn("backups.restore")(function* (
  projectRoot: string,
  servicesPath: string,
  id: string
) {
  const state = yield* stateOf(projectRoot)
  const files = ID.test(id) ? yield* state.backupFiles(id) : undefined
  if (files === undefined) {
    return yield* new InvalidInput({
      field: "ID",
      reason: `no backup ${JSON.stringify(id)} in ${state.backups}; \`agentsync files backups\` lists them`
    })
  }
  const pending = (yield* state.read("pull-journal.json")) ?? ""
  if (pending.includes(id)) {
    const staging = yield* Effect.try({
      try: () => (JSON.parse(pending) as { staging?: unknown }).staging,
      catch: io(state.path("pull-journal.json"), "cannot abandon the unfinished pull")
    })
    if (typeof staging === "string") yield* state.removeStaging(staging)
    yield* state.remove("pull-journal.json")
  }
  const run = newRunId()
  // The staging folder lives as long as this scope, however it ends, unless the journal names it by then.
  yield* Effect.scoped(
    Effect.flatMap(state.staging(run), (staging) =>
      state.stageBackup(id, staging, files).pipe(
        Effect.zipRight(
          swap(projectRoot, {
            staging,
            backup: nodePath.join(state.backups, run),
            servicesPath: nodePath.resolve(servicesPath),
            write: files,
            delete: []
          })
        )
      )
    )
  )
  const saved = yield* recordBackup(projectRoot, nodePath.join(state.backups, run), `restore of ${id}`)
  return { restored: files, backup: saved ? run : undefined }
})
