/** `files diff`: the local tree against the remote head, two-way, reading only. */
import { Effect } from "effect"
import { silentProgress } from "../../services/Progress.js"
import { workspaceAt } from "../../services/Workspace.js"
import { diffFiles } from "../../stages/files/plan.js"
import { settledReport } from "../../stages/files/settled.js"
import { context, type FilesOptions, manifests, visibleEntries } from "./prepare.js"
import { probe } from "./probe.js"
import { type FilesReport, item, notCarriedItems } from "./report.js"

export const diffImpl = Effect.fn("FileSyncService.diff")(function* (options: FilesOptions = {}) {
  const { config, client } = yield* context
  // Nothing moved on either side since both agreed: every file is unchanged, known without hashing.
  const probed = yield* probe(config, client)
  if (probed?.settled !== undefined) return settledReport("diff", true, probed.settled) as FilesReport
  const [head, local] = yield* manifests(config, {
    keep: false,
    progress: options.progress ?? silentProgress,
    ...(probed === undefined ? {} : { probe: probed })
  })
  const remote = head.manifest
  const membership = yield* (yield* workspaceAt(config.servicesPath)).membership()
  const diff = diffFiles(local.entries, visibleEntries(remote.entries, membership, local.notCarried))
  return {
    command: "diff",
    dry_run: true,
    remote_revision: remote.revision,
    revision: remote.revision,
    counts: diff.counts,
    actions: {},
    conflicts: [],
    files: [
      ...diff.items.filter((i) => i.status !== "Unchanged").map((i) => item(i.key, i.status, i.source, i.target)),
      ...notCarriedItems(local.notCarried)
    ],
    local_files: local.entries.length,
    remote_files: remote.entries.length,
    remote_manifest: head.cached ? "cached" : "downloaded"
  } satisfies FilesReport
})
