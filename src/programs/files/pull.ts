/** `files pull`: plan against the head (or an older revision), guard, download and apply with a backup. */
import { Effect, Either } from "effect"
import { Conflict } from "../../errors.js"
import { ON_THIS_THREAD, warmWriterThread } from "../../services/FileStateStage.js"
import { note } from "../../services/RunStatus.js"
import type { SyncApiClientShape } from "../../services/SyncApi.js"
import { workspaceAt, layer as workspaceLayer } from "../../services/Workspace.js"
import { apply, obstacles, READING } from "../../stages/files/apply.js"
import { backupPolicy } from "../../stages/files/backups.js"
import { actionsOf, entriesOf, modeOnly, writeBase } from "../../stages/files/plan.js"
import { settledReport } from "../../stages/files/settled.js"
import { checkRemote, conflictError, guardDeletes } from "./guards.js"
import { begin, beginRevision, context, type FilesOptions, prepare, prepareRevision } from "./prepare.js"
import { type FilesReport, report } from "./report.js"

/**
 * A pull of the head into an empty tree wants the whole tree, most likely: its GET is sent now, so that the server
 * reads and sends while this run reads the head's manifest and plans. It goes when the pull ends, used or not.
 * Nothing is decided by it: the plan says as before whether anything is downloaded and what (a download of some
 * paths, or of a revision the answer is not of, asks again), and every file is checked against it.
 */
const sendAhead = Effect.fn("FileSyncService.sendAhead")(function* (client: SyncApiClientShape, servicesPath: string) {
  // An empty tree, or none yet. A top that cannot be listed is not known to be empty: the plan's walk says why.
  const top = yield* Effect.either((yield* workspaceAt(servicesPath)).listTop())
  if (Either.isLeft(top) || top.right.length > 0) return undefined
  return yield* client.startDownload(READING)
})

export const pullImpl = Effect.fn("FileSyncService.pull")(function* (options: FilesOptions = {}) {
  const older = options.revision
  const probed = older === undefined ? yield* begin("pull", options) : yield* beginRevision(options)
  if (probed?.settled !== undefined)
    return settledReport("pull", options.dryRun ?? false, probed.settled) as FilesReport
  const { config: configured, client: api } = yield* context
  // A settled mark means a tree synced before: not an empty one.
  const early =
    older === undefined && options.dryRun !== true && probed === undefined
      ? yield* sendAhead(api, configured.servicesPath)
      : undefined
  const { config, client, dryRun, progress, local, head, remote, where, plan, settle } =
    older === undefined ? yield* prepare("pull", options, probed) : yield* prepareRevision(older, options)
  yield* checkRemote(remote, client.baseUrl)
  if (dryRun) return report("pull", true, head, local, plan, { files_hashed: local.hashed })
  if (plan.conflicts.length > 0) return yield* conflictError(plan)
  yield* guardDeletes(plan, local.entries.length, options.force ?? false)
  const writes = actionsOf(plan, "write")
  // The writer's thread started before the GET's body is read, so that its boot (about 0.15 s of CPU) runs during the
  // checks and the staging rather than amid the download; only for a pull of more files than the writer writes before
  // it would start one (a small pull starts none, as without a GET sent ahead).
  if (early !== undefined && writes.length > ON_THIS_THREAD) yield* warmWriterThread
  // Same bytes, another executable bit: changed in place, nothing downloaded.
  const write = entriesOf(
    writes.filter((i) => !modeOnly(i)),
    "remote"
  )
  const chmod = entriesOf(writes.filter(modeOnly), "remote")
  const deleted = actionsOf(plan, "delete-local").map((i) => i.path)
  if (remote.revision === null || (writes.length === 0 && deleted.length === 0)) {
    yield* settle
    return report("pull", false, head, local, plan, { files_hashed: local.hashed })
  }
  const blocked = yield* obstacles(
    write.map((e) => e.path),
    new Set(deleted)
  ).pipe(Effect.provide(workspaceLayer(config.servicesPath)))
  if (blocked.length > 0) {
    return yield* new Conflict({
      reason: `the pull would replace what is in its way on disk; move these aside (or remove them) and pull again — nothing was written`,
      items: blocked.slice(0, 20)
    })
  }
  const revision = remote.revision
  yield* note(
    `pull: downloading ${write.length} file(s) into a private staging folder${chmod.length === 0 ? "" : ` (${chmod.length} more only change their mode)`}; nothing in ${config.servicesPath} changed yet`
  )
  const result = yield* apply({
    projectRoot: config.projectRoot,
    servicesPath: config.servicesPath,
    // The whole tree when all of it is wanted (one sequential read); else only the paths needed.
    download: (missing, consume, reading) =>
      client.download(
        revision,
        () => {
          const paths = missing()
          return paths.length === remote.entries.length ? undefined : paths
        },
        consume,
        { ...reading, early }
      ),
    write,
    chmod,
    delete: deleted,
    cause: `revision ${revision}`,
    backups: backupPolicy(process.env),
    progress,
    // Noted as the swap ends, so that an interrupt which came during the swap does not say that nothing changed.
    swapped: note(
      `pull: revision ${revision} is in place (${writes.length} written, ${deleted.length} deleted); the next run records it`
    )
  })
  // An older revision's tree is a local change against the head: the base stays the head's.
  if (older === undefined) yield* writeBase(config.projectRoot, where, plan.nextBase(revision))
  return report("pull", false, head, local, plan, {
    files_hashed: local.hashed,
    ...(result.backup === undefined ? {} : { backup: result.backup }),
    ...(result.pruned.length === 0 ? {} : { backups_pruned: result.pruned })
  })
}, Effect.scoped)
