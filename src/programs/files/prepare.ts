/** What a file-sync run does before it acts: the files lock, recovery, the probe, both manifests, base and plan. */
import { Effect } from "effect"
import type { RemoteManifest } from "../../api/files.js"
import { CurrentConfig, type SyncConfig } from "../../config.js"
import type { FileEntry } from "../../domain/model.js"
import { InvalidInput } from "../../errors.js"
import { stateOf } from "../../services/FileState.js"
import { type Progress, silentProgress } from "../../services/Progress.js"
import { note } from "../../services/RunStatus.js"
import { SyncApiClient, type SyncApiClientShape } from "../../services/SyncApi.js"
import { specialsOf } from "../../services/state.js"
import { leftOut, type WorkspaceShape, workspaceAt } from "../../services/Workspace.js"
import { recoverPull } from "../../stages/files/apply.js"
import { localManifest, type NotCarried } from "../../stages/files/bundle.js"
import { type Delta, deltaManifest, deltaOf, planDelta } from "../../stages/files/delta.js"
import { planFiles, readBase, sameBase, writeBase } from "../../stages/files/plan.js"
import { type HeadManifest, headManifest } from "../../stages/files/remote.js"
import { readMarkListing } from "../../stages/files/settled.js"
import { withLeftOut } from "../../stages/files/settledCheck.js"
import type { Had } from "./firstPush.js"
import { type Probe, probe, settleMark } from "./probe.js"

export interface FilesOptions {
  readonly dryRun?: boolean
  /** Carry deletions to the other side. */
  readonly delete?: boolean
  /** Take this side where both changed, and allow deleting more than half of the tree. */
  readonly force?: boolean
  readonly progress?: Progress
  /** Pull: write this older revision's tree (an id or a unique prefix of one) instead of the head's. */
  readonly revision?: string
}

/**
 * The remote entries a run plans with: those the local membership takes, less the paths of local links that are
 * not carried (a remote file there is neither written over the link nor deleted). `listed`, the local listing
 * (sorted by path, each path one the membership took): a remote path it holds is taken without asking the
 * membership again, found by walking both in order (both sorted, as manifests and listings are; else each path is
 * asked).
 */
export const visibleEntries = (
  entries: ReadonlyArray<FileEntry>,
  membership: { readonly includes: (path: string) => boolean },
  notCarried: ReadonlyArray<NotCarried>,
  listed: ReadonlyArray<{ readonly path: string }> = []
) => {
  const skipped = new Set(notCarried.map((l) => l.path))
  let at = 0
  let previous = ""
  return entries.filter((e) => {
    // `at` moves forward only while the remote paths come in order; one out of order ends the walk.
    if (e.path < previous) at = listed.length
    previous = e.path
    while (at < listed.length && (listed[at]?.path ?? "") < e.path) at++
    const held = at < listed.length && listed[at]?.path === e.path
    return (held || membership.includes(e.path)) && !skipped.has(e.path)
  })
}

/**
 * The base is recorded per tenant (ids are unique): syncing with another tenant starts from no base, while
 * any server or URL family of the same tenant shares it.
 */
const baseKey = (remote: RemoteManifest) => remote.tenant

export const context = Effect.gen(function* () {
  const config = yield* CurrentConfig
  const client = yield* SyncApiClient
  return { config, client }
})

/**
 * Both sides at once: the remote head (conditional on the kept copy), whose request goes out first so the
 * server answers while the local tree is scanned, and the local manifest (hashes cached). What the probe
 * already has (the listing, the head) is not had again.
 */
export const manifests = (
  config: SyncConfig,
  options: { readonly keep: boolean; readonly progress: Progress; readonly probe?: Probe }
) =>
  Effect.all(
    [
      headManifest({
        projectRoot: config.projectRoot,
        keep: options.keep,
        fetched: options.probe?.fetched,
        confirmed: options.probe?.confirmed
      }),
      localOf(config, options)
    ],
    { concurrency: 2 }
  )

/** The local manifest of a full run: every listed file, hashed unless the hash cache vouches for it. */
const localOf = (
  config: SyncConfig,
  options: { readonly keep: boolean; readonly progress: Progress; readonly probe?: Probe }
) =>
  localManifest({
    servicesPath: config.servicesPath,
    projectRoot: config.projectRoot,
    writeCache: options.keep,
    progress: options.progress,
    ...(options.probe === undefined ? {} : { listed: options.probe.listed })
  })

/**
 * A run's report with what at the top of the services tree file sync leaves out (never silently): one listing of
 * the top, read after the run, under the membership in force then.
 */
export const noteLeftOut = <R extends object>(report: R) =>
  Effect.gen(function* () {
    const { servicesPath } = yield* CurrentConfig
    return withLeftOut(report, yield* leftOut(yield* workspaceAt(servicesPath)))
  })

/** The lock that keeps two pushes or pulls of one project apart. */
export const filesLock = (projectRoot: string, what: string) =>
  Effect.flatMap(stateOf(projectRoot), (s) => s.lock(what))

/**
 * Under the files lock: finish a pull a crash left half done, then remove what killed runs left in
 * `.agentsync/` (staging folders no journal names, temp files of processes that are gone).
 */
const recover = Effect.fn("FileSyncService.recover")(function* (projectRoot: string) {
  yield* recoverPull(projectRoot)
  yield* (yield* stateOf(projectRoot)).sweep()
})

/**
 * What push and pull share: finish a pull a crash left half done, read both manifests, the recorded base and
 * the three-way plan; and, when the plan moves nothing, record the base it settles on. Remote paths that the
 * local `.agentsyncignore` leaves out are not part of the plan: never written, never deleted.
 */
export const prepare = Effect.fn("FileSyncService.prepare")(function* (
  direction: "push" | "pull",
  options: FilesOptions,
  probed: Probe | undefined,
  had?: Had
) {
  const { config, client } = yield* context
  const dryRun = options.dryRun ?? false
  const progress = options.progress ?? silentProgress
  const workspace = yield* workspaceAt(config.servicesPath)
  const membership = yield* workspace.membership()
  // What a push's first look had (`firstPush`): the head, the listing and the base, planned from as they are.
  const sinceMark =
    had === undefined
      ? yield* fromMark(config, probed, { keep: !dryRun, progress }, workspace, membership.includes)
      : undefined
  const [head, local] =
    sinceMark !== undefined
      ? [sinceMark.head, sinceMark.local]
      : had !== undefined
        ? [had.head, yield* localOf(config, { keep: !dryRun, progress, probe: { listed: had.listed } })]
        : yield* manifests(config, {
            keep: !dryRun,
            progress,
            ...(probed === undefined ? {} : { probe: probed })
          })
  const remote = head.manifest
  const where = baseKey(remote)
  const base = had?.base ?? (yield* readBase(config.projectRoot, where))
  const planOptions = { delete: options.delete ?? false, force: options.force ?? false }
  const plan =
    sinceMark?.delta !== undefined
      ? planDelta(direction, sinceMark.delta, sinceMark.changed, base, planOptions)
      : planFiles(
          direction,
          local.entries,
          visibleEntries(remote.entries, membership, local.notCarried, local.listed),
          base,
          planOptions
        )
  // The head is the mark's revision this run started from: its tree passed the mark's check of the remote tree.
  const checked = probed?.confirmed !== undefined && probed.confirmed === remote.revision
  // Built only when run (a run that moves something never runs it).
  const settle = Effect.suspend(() => {
    const next = plan.nextBase(remote.revision)
    return Effect.zipRight(
      sameBase(next, base) ? Effect.void : writeBase(config.projectRoot, where, next),
      settleMark(
        config,
        client.baseUrl,
        remote,
        plan.items.every((i) => i.action === "none") && local.notCarried.length === 0,
        local,
        checked ? [] : undefined
      )
    )
  })
  return { config, client, dryRun, progress, local, head, remote, where, plan, settle, checked }
})

/**
 * When the server confirmed the settled mark's revision and the mark's listing is kept: the head (the kept copy of
 * that revision) and a local manifest that hashes only what changed since the listing (see stages/files/delta.ts),
 * with the delta to plan from; with no delta to vouch for (too many changes, a link among them), the local
 * manifest of the full run. Undefined when there is no such mark: the full run reads both sides at once.
 */
const fromMark = Effect.fn("FileSyncService.fromMark")(function* (
  config: SyncConfig,
  probed: Probe | undefined,
  { keep, progress }: { readonly keep: boolean; readonly progress: Progress },
  workspace: WorkspaceShape,
  includes: (path: string) => boolean
) {
  const mark = probed?.mark
  if (probed === undefined || mark === undefined || probed.confirmed !== mark.revision) return undefined
  const then = yield* readMarkListing(config.projectRoot, mark)
  if (then === undefined) return undefined
  const head = yield* headManifest({ projectRoot: config.projectRoot, keep, confirmed: mark.revision })
  // A special file is named by the full run's manifest (`splitLinks`), which a delta does not make.
  const delta: Delta | undefined =
    head.manifest.revision === mark.revision && specialsOf(probed.listed.files).length === 0
      ? deltaOf(then, probed.listed.files, head.manifest.entries, includes)
      : undefined
  if (delta !== undefined) {
    const made = yield* deltaManifest(workspace, delta, probed.listed)
    return { head, local: made.manifest, delta, changed: made.changed }
  }
  const local = yield* localOf(config, { keep, progress, probe: probed })
  return { head, local, delta: undefined, changed: [] }
})

/** A revision named by its id or a unique prefix of one (as `files log` shows them). */
const resolveRevision = Effect.fn("FileSyncService.resolveRevision")(function* (
  client: SyncApiClientShape,
  given: string
) {
  if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(given)) return given
  const matching = (yield* client.revisions(1000)).filter((r) => r.id.startsWith(given))
  const [only] = matching
  if (only !== undefined && matching.length === 1) return only.id
  return yield* new InvalidInput({
    field: "revision",
    reason:
      matching.length === 0
        ? `no revision starts with ${JSON.stringify(given)} among the last 1000; agentsync files log lists them`
        : `${JSON.stringify(given)} names ${matching.length} revisions; give more of the id`
  })
})

/**
 * What a pull of an older revision plans against: that revision's tree in place of the head's, three-way with
 * the recorded base, which it leaves as it is. What it writes then shows as local changes against the head:
 * `files push` makes that tree the head again.
 */
export const prepareRevision = Effect.fn("FileSyncService.prepareRevision")(function* (
  revision: string,
  options: FilesOptions
) {
  const { config, client } = yield* context
  const dryRun = options.dryRun ?? false
  const progress = options.progress ?? silentProgress
  const id = yield* resolveRevision(client, revision)
  const [remote, local] = yield* Effect.all(
    [
      client.manifest({ revision: id }),
      localManifest({
        servicesPath: config.servicesPath,
        projectRoot: config.projectRoot,
        writeCache: !dryRun,
        progress
      })
    ],
    { concurrency: 2 }
  )
  const membership = yield* (yield* workspaceAt(config.servicesPath)).membership()
  const visible = visibleEntries(remote.entries, membership, local.notCarried)
  const where = baseKey(remote)
  const base = yield* readBase(config.projectRoot, where)
  const plan = planFiles("pull", local.entries, visible, base, {
    delete: options.delete ?? false,
    force: options.force ?? false
  })
  const head: HeadManifest = { manifest: remote, cached: false }
  return { config, client, dryRun, progress, local, head, remote, where, plan, settle: Effect.void, checked: false }
})

/**
 * What push and pull do first: finish a pull a crash left half done (unless a dry run), then probe. Either a
 * settled run (nothing to do) or what the full plan starts from.
 */
export const begin = Effect.fn("FileSyncService.begin")(function* (direction: "push" | "pull", options: FilesOptions) {
  const { config, client } = yield* context
  if (options.dryRun !== true) yield* recover(config.projectRoot)
  yield* note(`${direction}: reading the local tree and the remote head; nothing changed yet`)
  return yield* probe(config, client)
})

/** Before a pull of an older revision: only the recovery (no settled mark can answer for another revision). */
export const beginRevision = Effect.fn("FileSyncService.beginRevision")(function* (options: FilesOptions) {
  const { config } = yield* context
  if (options.dryRun !== true) yield* recover(config.projectRoot)
  yield* note("pull: reading the local tree and the revision asked for; nothing changed yet")
  return undefined as Probe | undefined
})
