/** `files push`: plan against the remote head, guard, upload a new revision, record base, head and mark. */
import { Deferred, Effect } from "effect"
import { manifestChecksum } from "../../domain/hash.js"
import { note } from "../../services/RunStatus.js"
import { keptOfLines, splicedHead } from "../../stages/files/keptLines.js"
import { actionsOf, baseTextFor, entriesOf, writeBaseText } from "../../stages/files/plan.js"
import { keepHeadText, keptTextFor, pushedHead } from "../../stages/files/remote.js"
import { settledReport } from "../../stages/files/settled.js"
import { resultingTree, upload } from "../../stages/files/upload.js"
import { firstPush } from "./firstPush.js"
import { checkServerKeeps, conflictError, guardDeletes } from "./guards.js"
import { begin, type FilesOptions, prepare } from "./prepare.js"
import { settleMark } from "./probe.js"
import { type FilesReport, report } from "./report.js"

export const pushImpl = Effect.fn("FileSyncService.push")(function* (options: FilesOptions = {}) {
  const probed = yield* begin("push", options)
  if (probed?.settled !== undefined)
    return settledReport("push", options.dryRun ?? false, probed.settled) as FilesReport
  // No mark vouching for a base: this may be a first upload, which streams (a dry run plans as ever).
  const first =
    options.dryRun !== true && probed?.confirmed === undefined ? yield* firstPush(options, probed) : undefined
  if (first?.report !== undefined) return first.report
  const { config, client, dryRun, progress, local, head, remote, where, plan, settle, checked } = yield* prepare(
    "push",
    options,
    probed,
    first?.had
  )
  // Before anything is sent, a dry run included: a server too old for a file's kind would refuse the revision.
  yield* checkServerKeeps(plan, client)
  if (dryRun) return report("push", true, head, local, plan, { files_hashed: local.hashed })
  if (plan.conflicts.length > 0) return yield* conflictError(plan)
  yield* guardDeletes(plan, remote.entries.length, options.force ?? false)
  const set = entriesOf(actionsOf(plan, "upload"), "local")
  const deleted = actionsOf(plan, "delete-remote").map((i) => i.path)
  if (set.length === 0 && deleted.length === 0) {
    yield* settle
    return report("push", false, head, local, plan, {
      bytes_sent: 0,
      files_sent: 0,
      files_hashed: local.hashed
    })
  }
  yield* note(
    `push: uploading ${set.length} file(s) and ${deleted.length} deletion(s); running it again is safe (a revision that was made is not made twice)`
  )
  const tree = resultingTree(remote.entries, set, deleted)
  // From the kept copy's bytes where the head was read from one (the changed lines spliced in), else from the tree.
  const spliced = splicedHead(remote, set, deleted)
  const checksum = spliced?.checksum ?? manifestChecksum(tree)
  // What is kept once the server has answered (the next base, the new head) is made while it works on the upload,
  // and written only after its answer: a push that fails or is interrupted keeps none of it.
  const sent = yield* Deferred.make<void>()
  const [outcome, later] = yield* Effect.all(
    [
      upload({
        servicesPath: config.servicesPath,
        base: remote.revision,
        remote: remote.entries,
        set,
        delete: deleted,
        progress,
        planned: { tree, checksum },
        sent
      }).pipe(Effect.ensuring(Deferred.succeed(sent, undefined))),
      Effect.andThen(
        Deferred.await(sent),
        Effect.sync(() => ({
          base: baseTextFor(where, plan.nextBase(null).files),
          head:
            spliced === undefined
              ? keptTextFor(client.baseUrl, { tenant: remote.tenant, checksum, entries: tree })
              : keptOfLines(client.baseUrl, { tenant: remote.tenant, checksum, files: tree.length }, spliced.lines)
        }))
      )
    ],
    { concurrency: 2 }
  )
  const revision = outcome.result.revision
  yield* note(`push: revision ${revision} created; the next run records it`)
  yield* writeBaseText(config.projectRoot, later.base(revision))
  // The new head is known without asking: the next run's request for it can be answered 304.
  const pushed = pushedHead(remote, revision, outcome.tree, outcome.checksum)
  yield* keepHeadText(config.projectRoot, later.head(revision))
  // Both sides now hold the local tree, unless something was skipped. A tree that passed the mark's check less what
  // was deleted is checked at the paths sent only.
  yield* settleMark(
    config,
    client.baseUrl,
    pushed,
    plan.items.every((i) => i.action === "none" || i.action === "upload" || i.action === "delete-remote") &&
      local.notCarried.length === 0,
    local,
    checked ? set.map((e) => e.path) : undefined
  )
  return report("push", false, head, local, plan, {
    revision: outcome.result.revision,
    bytes_sent: outcome.bytesSent,
    files_sent: outcome.filesSent,
    files_hashed: local.hashed
  })
})
