/** A first push (no base with the tenant, its head's tree empty): every listed file sent as it is read, the manifest last. */
import { Deferred, Effect } from "effect"
import { CAPS, treeOverCaps } from "../../domain/caps.js"
import { type FileEntry, isExecutableMode } from "../../domain/model.js"
import { stateOf } from "../../services/FileState.js"
import { silentProgress } from "../../services/Progress.js"
import { note } from "../../services/RunStatus.js"
import type { SyncApiClientShape } from "../../services/SyncApi.js"
import { type WorkspaceFile, workspaceAt } from "../../services/Workspace.js"
import { keepHashes, type LocalManifest, listAndStamp, type NotCarried, splitLinks } from "../../stages/files/bundle.js"
import { baseTextFor, planFiles, readBase, type SyncBase, writeBaseText } from "../../stages/files/plan.js"
import { type HeadManifest, headManifest, keepHeadText, keptTextFor, pushedHead } from "../../stages/files/remote.js"
import { type Made, uploadStreamed } from "../../stages/files/upload.js"
import { context, type FilesOptions } from "./prepare.js"
import { type Probe, settleMark } from "./probe.js"
import { type FilesReport, report } from "./report.js"

/** What the first push's look had, for the full run to plan from when it does not stream (nothing is had twice). */
export interface Had {
  readonly head: HeadManifest
  readonly listed: { readonly files: ReadonlyArray<WorkspaceFile>; readonly at: number }
  readonly base: SyncBase
}

/**
 * Whether the upload can stream: the plan can only be "upload every listed file" (no base with this tenant, an
 * empty head: no conflict, no deletion), the server reads the trailer form and keeps every kind of entry sent, the
 * lead and trailer entries fit within the archive's entry cap beside the files, and the tree is within the caps a
 * manifest shows (a file's size, the total, the manifest's): the header form, whose manifest goes first, is refused
 * over them before any file is sent, where a stream would be refused only once it reached the file or the trailer.
 */
export const streams = (
  client: Pick<SyncApiClientShape, "serverUploadForms" | "serverEntryKinds">,
  had: Had,
  carried: ReadonlyArray<WorkspaceFile>
) => {
  if (had.head.manifest.entries.length > 0 || had.base.revision !== null || had.base.files.size > 0) return false
  if (carried.length === 0 || carried.length >= CAPS.maxEntries) return false
  if (!client.serverUploadForms().includes("trailer")) return false
  if (treeOverCaps(carried.map((f): readonly [string, number] => [f.path, f.size])) !== undefined) return false
  const keeps = client.serverEntryKinds()
  const links = carried.some((f) => f.link !== undefined)
  const executables = carried.some((f) => f.link === undefined && isExecutableMode(f.mode))
  return (!links || keeps.includes("link")) && (!executables || keeps.includes("executable"))
}

/**
 * A push with no settled mark confirmed: the head and the listing at once, then the base with the head's tenant.
 * A first upload then goes as `streamed` does, and its report is returned; anything else returns what was had for
 * the full run (`prepare`), which hashes from the listing.
 */
export const firstPush = Effect.fn("FileSyncService.firstPush")(function* (
  options: FilesOptions,
  probed: Probe | undefined
) {
  const { config, client } = yield* context
  const workspace = yield* workspaceAt(config.servicesPath)
  const state = yield* stateOf(config.projectRoot)
  const [head, listed] = yield* Effect.all(
    [
      headManifest({ projectRoot: config.projectRoot, keep: true, fetched: probed?.fetched }),
      probed === undefined ? listAndStamp(workspace, state) : Effect.succeed(probed.listed)
    ],
    { concurrency: 2 }
  )
  const base = yield* readBase(config.projectRoot, head.manifest.tenant)
  const had: Had = { head, listed, base }
  const { notCarried } = splitLinks(listed.files)
  const skipped = new Set(notCarried.map((l) => l.path))
  const carried = skipped.size === 0 ? listed.files : listed.files.filter((f) => !skipped.has(f.path))
  if (!streams(client, had, carried)) return { had }
  return { report: yield* streamed(options, had, carried, notCarried) }
})

/**
 * The first upload: no hashing before (the listing is the plan), each file hashed as it is archived and sent, the
 * manifest in the trailer. Once the server has answered, what a push records: the next base, the new head, the
 * settled mark; and the hash cache, from the hashes taken while sending (the next run hashes nothing unchanged).
 */
const streamed = Effect.fn("FileSyncService.streamed")(function* (
  options: FilesOptions,
  had: Had,
  carried: ReadonlyArray<WorkspaceFile>,
  notCarried: ReadonlyArray<NotCarried>
) {
  const { config, client } = yield* context
  const progress = options.progress ?? silentProgress
  const { head, listed, base } = had
  const remote = head.manifest
  const hashedFiles = carried.reduce((n, f) => (f.link === undefined ? n + 1 : n), 0)
  yield* note(
    `push: uploading ${carried.length} file(s) as they are read (a first upload: the manifest follows them); running it again is safe (a revision that was made is not made twice)`
  )
  // What is kept once the server has answered (the plan, the next base, the new head) is made while it stores the
  // last files and commits, and written only after its answer: a push that fails or is interrupted keeps no base and
  // no head. The hash cache is written while the server stores the last files and commits too: it holds only what
  // every file read hashed to (keyed by its listed stat, racy files left out), true whatever the server answers, so
  // it needs no answer; it is only an optimisation, so a failure to write it is a warning, never a failure of an
  // upload the server may commit.
  const sent = yield* Deferred.make<void>()
  let latest: Made | undefined
  const keepCache = (entries: ReadonlyArray<FileEntry | undefined>) =>
    // A cache that cannot be written is warned of by `keepHashes`, as by every run that writes it. Begun, it ends
    // (its file written whole or not at all) even where the upload fails meanwhile.
    Effect.uninterruptible(keepHashes(config, carried, listed.at, entries))
  const after = (made: Made) =>
    Effect.sync(() => {
      const plan = planFiles("push", made.tree, [], base, {
        delete: options.delete ?? false,
        force: options.force ?? false
      })
      return {
        made,
        plan,
        base: baseTextFor(remote.tenant, plan.nextBase(null).files),
        head: keptTextFor(client.baseUrl, { tenant: remote.tenant, checksum: made.checksum, entries: made.tree })
      }
    })
  const [outcome, early] = yield* Effect.all(
    [
      uploadStreamed({
        servicesPath: config.servicesPath,
        base: remote.revision,
        files: carried,
        progress,
        sent,
        made: (made) => {
          latest = made
        }
      }).pipe(Effect.ensuring(Deferred.succeed(sent, undefined))),
      Effect.flatMap(Deferred.await(sent), () => {
        const made = latest
        return made === undefined ? Effect.succeed(undefined) : Effect.zipLeft(after(made), keepCache(made.entries))
      })
    ],
    { concurrency: 2 }
  )
  // A retry after the body had gone reads the files again (the same bytes, or it fails): its trailer's tree is made anew.
  const kept =
    early !== undefined && early.made.tree === outcome.tree
      ? early
      : yield* after({ tree: outcome.tree, checksum: outcome.checksum, entries: outcome.entries })
  const { plan } = kept
  const tree = outcome.tree
  const revision = outcome.result.revision
  yield* note(`push: revision ${revision} created; the next run records it`)
  // Kept already from what the attempt that answered read, unless a retry read the files again after it was kept.
  if (kept !== early) yield* keepCache(outcome.entries)
  const local: LocalManifest = {
    entries: tree,
    notCarried,
    hashed: hashedFiles,
    listed: listed.files,
    listedAt: listed.at
  }
  yield* writeBaseText(config.projectRoot, kept.base(revision))
  const pushed = pushedHead(remote, revision, tree, outcome.checksum)
  yield* keepHeadText(config.projectRoot, kept.head(revision))
  yield* settleMark(config, client.baseUrl, pushed, notCarried.length === 0, local)
  return report("push", false, head, local, plan, {
    revision,
    bytes_sent: outcome.bytesSent,
    files_sent: outcome.filesSent,
    files_hashed: hashedFiles
  }) satisfies FilesReport
})
