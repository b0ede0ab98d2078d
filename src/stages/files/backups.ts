/** Backups of pulls: what a pull replaced or deleted, kept in `.agentsync/backups/<id>/`, bounded in count and age, listed and restored. */
import { randomBytes } from "node:crypto"
import * as fsSync from "node:fs"
import * as fs from "node:fs/promises"
import * as nodePath from "node:path"
import { Effect, Schema } from "effect"
import { InvalidInput, ioError as io } from "../../errors.js"
import { stateOf } from "../../services/FileState.js"
import { writeFileAtomic } from "../../services/Workspace.js"
import { stateDir } from "./bundle.js"
import { journalPath, swap } from "./swap.js"

export const backupsDir = (projectRoot: string) => nodePath.join(stateDir(projectRoot), "backups")

/** A new run id: a sortable time stamp and a random suffix (staging folders and backups share it). */
export const newRunId = () => `${new Date().toISOString().replace(/[:.]/g, "-")}-${randomBytes(3).toString("hex")}`

const ID = /^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z-[0-9a-f]{6}$/

/** When a run id was made, as an ISO time (its stamp with the colons and the dot put back). */
const madeAt = (id: string) => id.slice(0, 24).replace(/T(\d\d)-(\d\d)-(\d\d)-(\d{3})Z/, "T$1:$2:$3.$4Z")

const META = ".agentsync-backup.json"
/** A later version of a path kept beside the first (see swapIn): stays in the backup, is not restored. */
const KEPT = /\.agentsync-kept-\d+$/
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

/** Every file under a folder, as POSIX paths relative to it, the record file left out. */
const filesUnder = (root: string): Array<string> => {
  const out: Array<string> = []
  const walk = (dir: string, rel: string) => {
    for (const d of fsSync.readdirSync(dir, { withFileTypes: true })) {
      const r = rel === "" ? d.name : `${rel}/${d.name}`
      if (d.isDirectory()) walk(nodePath.join(dir, d.name), r)
      else if (r !== META && !KEPT.test(r)) out.push(r)
    }
  }
  walk(root, "")
  return out.sort()
}

/** Records what backup `backup` of the project at `projectRoot` holds and why, once its files are in. */
export const recordBackup = (_projectRoot: string, backup: string, cause: string) =>
  Effect.suspend(() => {
    if (!fsSync.existsSync(backup)) return Effect.succeed(false)
    const id = nodePath.basename(backup)
    const meta = { id, created_at: new Date().toISOString(), cause, files: filesUnder(backup) }
    return Effect.as(writeFileAtomic(nodePath.join(backup, META), JSON.stringify(meta)), true)
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
  const dir = backupsDir(projectRoot)
  const names = yield* Effect.promise(() => fs.readdir(dir).catch(() => [] as Array<string>))
  const out: Array<BackupInfo> = []
  for (const id of names
    .filter((n) => ID.test(n))
    .sort()
    .reverse()) {
    const path = nodePath.join(dir, id)
    const info = yield* Effect.try({
      try: () => {
        const files = filesUnder(path)
        const bytes = files.reduce((n, f) => n + fsSync.statSync(nodePath.join(path, f)).size, 0)
        // A backup whose run was stopped before recording it has no record: still listed, still restorable.
        const record = fsSync.existsSync(nodePath.join(path, META))
          ? fsSync.readFileSync(nodePath.join(path, META), "utf8")
          : ""
        const meta = Schema.decodeUnknownOption(Schema.parseJson(Meta))(record)
        return { files: files.length, bytes, meta }
      },
      catch: io(path, "cannot read the backup")
    }).pipe(Effect.orElseSucceed(() => undefined))
    if (info === undefined) continue
    const created = info.meta._tag === "Some" ? info.meta.value.created_at : madeAt(id)
    out.push({
      id,
      created_at: created,
      cause: info.meta._tag === "Some" ? info.meta.value.cause : "unrecorded (the run that made it was stopped)",
      files: info.files,
      bytes: info.bytes,
      path
    })
  }
  return out
})

/** Removes backups beyond the policy's count or age, never the newest and never one an unfinished pull needs. */
export const pruneBackups = Effect.fn("backups.prune")(function* (projectRoot: string, policy: BackupPolicy) {
  const dir = backupsDir(projectRoot)
  const names = (yield* Effect.promise(() => fs.readdir(dir).catch(() => [] as Array<string>)))
    .filter((n) => ID.test(n))
    .sort()
    .reverse()
  const pending = yield* Effect.promise(() => fs.readFile(journalPath(projectRoot), "utf8").catch(() => ""))
  const oldest = Date.now() - policy.maxAgeDays * 86_400_000
  const removed: Array<string> = []
  for (const [i, id] of names.entries()) {
    if (i === 0 || pending.includes(id)) continue
    const made = Date.parse(madeAt(id))
    if (i < policy.keep && !(made < oldest)) continue
    yield* Effect.tryPromise({
      try: () => fs.rm(nodePath.join(dir, id), { recursive: true, force: true }),
      catch: io(nodePath.join(dir, id), "cannot remove")
    })
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
  const dir = backupsDir(projectRoot)
  const source = nodePath.join(dir, id)
  if (!ID.test(id) || !fsSync.existsSync(source)) {
    return yield* new InvalidInput({
      field: "ID",
      reason: `no backup ${JSON.stringify(id)} in ${dir}; \`agentsync files backups\` lists them`
    })
  }
  const state = yield* stateOf(projectRoot)
  const journal = journalPath(projectRoot)
  const pending = (yield* state.read("pull-journal.json")) ?? ""
  if (pending.includes(id)) {
    yield* Effect.tryPromise({
      try: async () => {
        const staging = (JSON.parse(pending) as { staging?: unknown }).staging
        if (typeof staging === "string" && nodePath.basename(staging).startsWith("staging-"))
          await fs.rm(staging, { recursive: true, force: true })
        await fs.rm(journal, { force: true })
      },
      catch: io(journal, "cannot abandon the unfinished pull")
    })
  }
  const files = yield* Effect.try({ try: () => filesUnder(source), catch: io(source, "cannot read the backup") })
  const run = newRunId()
  // The staging folder lives as long as this scope, however it ends, unless the journal names it by then.
  yield* Effect.scoped(
    Effect.flatMap(state.staging(run), (staging) =>
      Effect.try({
        try: () => {
          for (const f of files) {
            fsSync.mkdirSync(nodePath.dirname(nodePath.join(staging, f)), { recursive: true })
            fsSync.copyFileSync(nodePath.join(source, f), nodePath.join(staging, f), fsSync.constants.COPYFILE_EXCL)
          }
        },
        catch: io(staging, "cannot stage the backup's files")
      }).pipe(
        Effect.zipRight(
          swap(projectRoot, {
            staging,
            backup: nodePath.join(dir, run),
            servicesPath: nodePath.resolve(servicesPath),
            write: files,
            delete: []
          })
        )
      )
    )
  )
  const saved = yield* recordBackup(projectRoot, nodePath.join(dir, run), `restore of ${id}`)
  return { restored: files, backup: saved ? run : undefined }
})
