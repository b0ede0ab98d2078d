/** `files push`: plan against the remote head, guard, upload a new revision, record base, head and mark. */
import { Effect } from "effect"
import { note } from "../../services/RunStatus.js"
import { actionsOf, entriesOf, writeBase } from "../../stages/files/plan.js"
import { pushedHead, writeKnownHead } from "../../stages/files/remote.js"
import { settledReport } from "../../stages/files/settled.js"
import { upload } from "../../stages/files/upload.js"
import { checkServerKeeps, conflictError, guardDeletes } from "./guards.js"
import { begin, type FilesOptions, prepare } from "./prepare.js"
import { settleMark } from "./probe.js"
import { type FilesReport, report } from "./report.js"

export const pushImpl = Effect.fn("FileSyncService.push")(function* (options: FilesOptions = {}) {
  const probed = yield* begin("push", options)
  if (probed?.settled !== undefined)
    return settledReport("push", options.dryRun ?? false, probed.settled) as FilesReport
  const { config, client, dryRun, progress, local, head, remote, where, plan, settle } = yield* prepare(
    "push",
    options,
    probed
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
  const outcome = yield* upload({
    servicesPath: config.servicesPath,
    base: remote.revision,
    remote: remote.entries,
    set,
    delete: deleted,
    progress
  })
  yield* note(`push: revision ${outcome.result.revision} created; the next run records it`)
  yield* writeBase(config.projectRoot, where, plan.nextBase(outcome.result.revision))
  // The new head is known without asking: the next run's request for it can be answered 304.
  const pushed = pushedHead(remote, outcome.result.revision, outcome.tree, outcome.checksum)
  yield* writeKnownHead(config.projectRoot, client.baseUrl, pushed)
  // Both sides now hold the local tree, unless something was skipped.
  yield* settleMark(
    config,
    client.baseUrl,
    pushed,
    plan.items.every((i) => i.action === "none" || i.action === "upload" || i.action === "delete-remote") &&
      local.notCarried.length === 0,
    local
  )
  return report("push", false, head, local, plan, {
    revision: outcome.result.revision,
    bytes_sent: outcome.bytesSent,
    files_sent: outcome.filesSent,
    files_hashed: local.hashed
  })
})
