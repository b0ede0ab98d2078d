/** FileSyncService: `files diff | push | pull | backups | restore` — plan with the three-way diff, guard, then upload or apply. */
import { Context, Effect, type Layer } from "effect"
import { FilesRoutes, manifestEtag, RemoteManifest } from "../api/files.js"
import { CurrentConfig, type SyncConfig } from "../config.js"
import { fileAndFolder } from "../domain/caps.js"
import { isMemberPath, MEMBERSHIP } from "../domain/membership.js"
import type { DiffCounts, FileEntry } from "../domain/model.js"
import { Conflict, InvalidInput, UnsafeRemote } from "../errors.js"
import { stateOf } from "../services/FileState.js"
import { type Progress, silentProgress } from "../services/Progress.js"
import { note } from "../services/RunStatus.js"
import { SyncApiClient, type SyncApiClientShape } from "../services/SyncApi.js"
import { takeHandedListing } from "../services/state.js"
import { make as makeWorkspace, type WorkspaceFile } from "../services/Workspace.js"
import { apply, obstacles, recoverPull } from "../stages/files/apply.js"
import { backupPolicy, listBackups, restoreBackup } from "../stages/files/backups.js"
import { localManifest, type NotCarried } from "../stages/files/bundle.js"
import { actionsOf, diffFiles, type FilePlan, planFiles, readBase, sameBase, writeBase } from "../stages/files/plan.js"
import { type HeadManifest, headManifest, pushedHead, writeKnownHead } from "../stages/files/remote.js"
import { clearMark, matches, readMark, type SettledMark, settledReport, writeMark } from "../stages/files/settled.js"
import { upload } from "../stages/files/upload.js"

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

/** One path of a report. */
export interface FileReportItem {
  readonly path: string
  readonly status: string
  readonly action?: string
  readonly note?: string
  readonly local_sha256?: string
  readonly remote_sha256?: string
  /** Present (true) when that side's file is executable. */
  readonly local_executable?: true
  readonly remote_executable?: true
  /** Present (true) when that side's entry is a symbolic link (its sha256 and size are its target's). */
  readonly local_link?: true
  readonly remote_link?: true
  /** A local symbolic link that is not carried (status `NotCarried`): its target. */
  readonly link_target?: string
  /**
   * The executable bit the run carries (or, for a diff, local against remote): `+x` when the side synced from is
   * executable where the other is not (or where the other has no such file), `-x` the reverse.
   */
  readonly mode?: "+x" | "-x"
  readonly size?: number
}

export interface FilesReport {
  readonly command: "diff" | "push" | "pull"
  readonly dry_run: boolean
  /** The remote head the plan was made against. */
  readonly remote_revision: string | null
  /** The head after a push, or the revision pulled. */
  readonly revision: string | null
  readonly counts: DiffCounts
  readonly actions: Readonly<Record<string, number>>
  readonly conflicts: ReadonlyArray<string>
  /** Every path that is not Unchanged. */
  readonly files: ReadonlyArray<FileReportItem>
  readonly local_files: number
  readonly remote_files: number
  /** Local files whose bytes were read to hash them (0 when the hash cache vouched for all). */
  readonly files_hashed?: number
  readonly bytes_sent?: number
  readonly files_sent?: number
  readonly backup?: string
  /** Older backups removed by the backup policy. */
  readonly backups_pruned?: ReadonlyArray<string>
  /** How the remote head manifest was had: "cached" when the server answered 304 to the copy kept locally. */
  readonly remote_manifest: "cached" | "downloaded"
}

export interface RestoreReport {
  readonly id: string
  readonly restored: ReadonlyArray<string>
  /** The backup of what the restore replaced. */
  readonly backup: string | undefined
}

/** The service's methods, needing nothing further. */
export type FileSyncServiceShape = typeof FileSyncService.Service

/** Deleting more than this share of a tree needs --force. */
export const DELETE_THRESHOLD = 0.5

/** The change of the executable bit from `to` to `from` (the side synced from), if any. */
const modeChange = (from: FileEntry | undefined, to: FileEntry | undefined): { mode?: "+x" | "-x" } => {
  if (from === undefined || (from.executable === true) === (to?.executable === true)) return {}
  return { mode: from.executable === true ? "+x" : "-x" }
}

const item = (
  path: string,
  status: string,
  local: FileEntry | undefined,
  remote: FileEntry | undefined,
  extra: { action?: string; note?: string } = {},
  from: "local" | "remote" = "local"
): FileReportItem => ({
  path,
  status,
  ...extra,
  ...(local === undefined ? {} : { local_sha256: local.sha256 }),
  ...(remote === undefined ? {} : { remote_sha256: remote.sha256 }),
  ...(local?.executable === true ? { local_executable: true as const } : {}),
  ...(remote?.executable === true ? { remote_executable: true as const } : {}),
  ...(local?.link === true ? { local_link: true as const } : {}),
  ...(remote?.link === true ? { remote_link: true as const } : {}),
  ...(from === "local" ? modeChange(local, remote) : modeChange(remote, local)),
  size: (local ?? remote)?.size ?? 0
})

const countActions = (plan: FilePlan) => {
  const out: Record<string, number> = {}
  for (const i of plan.items) if (i.action !== "none") out[i.action] = (out[i.action] ?? 0) + 1
  return out
}

/** The local links file sync does not carry, as report rows: never silently left out. */
const notCarriedItems = (links: ReadonlyArray<NotCarried>): ReadonlyArray<FileReportItem> =>
  links.map((l) => ({
    path: l.path,
    status: "NotCarried",
    action: "skip",
    note: `symbolic link not carried: ${l.reason}`,
    link_target: l.target
  }))

const report = (
  command: "push" | "pull",
  dryRun: boolean,
  head: HeadManifest,
  local: { readonly entries: ReadonlyArray<FileEntry>; readonly notCarried: ReadonlyArray<NotCarried> },
  plan: FilePlan,
  extra: Partial<FilesReport> = {}
): FilesReport => ({
  command,
  dry_run: dryRun,
  remote_revision: head.manifest.revision,
  revision: head.manifest.revision,
  counts: plan.counts,
  actions: countActions(plan),
  conflicts: plan.conflicts,
  files: [
    ...plan.items
      .filter((i) => i.status !== "Unchanged")
      .map((i) =>
        item(
          i.path,
          i.status,
          i.local,
          i.remote,
          i.note === undefined ? { action: i.action } : { action: i.action, note: i.note },
          command === "pull" ? "remote" : "local"
        )
      ),
    ...notCarriedItems(local.notCarried)
  ],
  local_files: local.entries.length,
  remote_files: head.manifest.entries.length,
  remote_manifest: head.cached ? "cached" : "downloaded",
  ...extra
})

/**
 * The remote entries a run plans with: those the local membership takes, less the paths of local links that are
 * not carried (a remote file there is neither written over the link nor deleted).
 */
const visibleEntries = (
  entries: ReadonlyArray<FileEntry>,
  membership: { readonly includes: (path: string) => boolean },
  notCarried: ReadonlyArray<NotCarried>
) => {
  const skipped = new Set(notCarried.map((l) => l.path))
  return entries.filter((e) => membership.includes(e.path) && !skipped.has(e.path))
}

/**
 * The base is recorded per tenant (ids are unique): syncing with another tenant starts from no base, while
 * any server or URL family of the same tenant shares it.
 */
const baseKey = (remote: RemoteManifest) => remote.tenant

const context = Effect.gen(function* () {
  const config = yield* CurrentConfig
  const client = yield* SyncApiClient
  return { config, client }
})

/**
 * Both sides at once: the remote head (conditional on the kept copy), whose request goes out first so the
 * server answers while the local tree is scanned, and the local manifest (hashes cached). What the probe
 * already has (the listing, the head) is not had again.
 */
const manifests = (
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
      localManifest({
        servicesPath: config.servicesPath,
        projectRoot: config.projectRoot,
        writeCache: options.keep,
        progress: options.progress,
        ...(options.probe === undefined ? {} : { listed: options.probe.listed })
      })
    ],
    { concurrency: 2 }
  )

/** What a run learns before it plans: the listing, and either that nothing moved since the settled mark or the head. */
interface Probe {
  readonly listed: { readonly files: ReadonlyArray<WorkspaceFile>; readonly at: number }
  readonly settled?: SettledMark
  readonly fetched?: RemoteManifest
  /** The head revision the server has just confirmed (a 304 to the mark's): the kept manifest of it is current. */
  readonly confirmed?: string
}

/**
 * With a settled mark kept for this API and tree: the listing and the head asked for conditionally on the
 * mark's revision, at once. The same listing and a 304 mean nothing changed on either side since the mark:
 * the run is done without reading the hash cache, the base or the kept manifest. Without a mark, undefined
 * (the full path lists and asks as before). When the settled check of this process already had the 304 and the
 * listing under the same mark, neither is had again.
 */
const probe = Effect.fn("FileSyncService.probe")(function* (config: SyncConfig, client: SyncApiClientShape) {
  const workspace = makeWorkspace(config.servicesPath)
  const handed = takeHandedListing(workspace.root)
  const mark = yield* readMark(config.projectRoot, client.baseUrl, workspace.root)
  if (mark === undefined) return undefined
  if (
    handed !== undefined &&
    handed.revision === mark.revision &&
    handed.base[0] === mark.base[0] &&
    handed.base[1] === mark.base[1]
  ) {
    // The check found that listing unlike the mark's: not settled, planned from it against the confirmed head.
    return { listed: { files: handed.files, at: handed.at }, confirmed: mark.revision } satisfies Probe
  }
  // Stands for the head at the mark's revision: returned as is when the server answers 304.
  const assumed = new RemoteManifest(
    { tenant: mark.tenant, revision: mark.revision, entries: [], checksum: "0".repeat(64) },
    { disableValidation: true }
  )
  const [head, files] = yield* Effect.all([client.manifest({ known: assumed }), workspace.listFiles()], {
    concurrency: 2
  })
  const listed = { files, at: Date.now() }
  if (head !== assumed) return { listed, fetched: head } satisfies Probe
  return (matches(mark, files) ? { listed, settled: mark } : { listed, confirmed: mark.revision }) satisfies Probe
})

/**
 * Keeps the settled mark when a run ends with both sides and the base agreeing on `head`, and `head` is a tree
 * a pull accepts (so that a settled pull is never one that should have been refused); else forgets it.
 */
const settleMark = (
  config: SyncConfig,
  url: string,
  head: RemoteManifest,
  agreed: boolean,
  local: { readonly listed: ReadonlyArray<WorkspaceFile>; readonly listedAt: number }
) =>
  Effect.flatMap(Effect.either(checkRemote(head, url)), (safe) =>
    agreed && safe._tag === "Right" && head.revision !== null
      ? writeMark(
          config,
          {
            url,
            tenant: head.tenant,
            revision: head.revision,
            remote_files: head.entries.length,
            check: { url: `${url}${FilesRoutes.manifest}`, etag: manifestEtag(head.revision) }
          },
          local.listed,
          local.listedAt
        )
      : clearMark(config.projectRoot)
  )

const conflictError = (plan: FilePlan) =>
  new Conflict({
    reason: `${plan.conflicts.length} file(s) changed on both sides since the last sync; pull or push with --force to take one side (the other is kept in a backup on pull)`,
    items: plan.conflicts.slice(0, 50)
  })

/** Refuses a run that would delete more than half of a tree, unless forced. */
const guardDeletes = (plan: FilePlan, treeSize: number, force: boolean) => {
  const deletes = plan.items.filter((i) => i.action === "delete-remote" || i.action === "delete-local")
  if (force || deletes.length === 0 || deletes.length <= treeSize * DELETE_THRESHOLD) return Effect.void
  return Effect.fail(
    new Conflict({
      reason: `refusing to delete ${deletes.length} of ${treeSize} files (more than half of the tree); pass --force if that is intended`,
      items: deletes.slice(0, 20).map((d) => d.path)
    })
  )
}

const diffImpl = Effect.fn("FileSyncService.diff")(function* (options: FilesOptions = {}) {
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
  const membership = yield* makeWorkspace(config.servicesPath).membership()
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

/** The lock that keeps two pushes or pulls of one project apart. */
const filesLock = (projectRoot: string, what: string) => Effect.flatMap(stateOf(projectRoot), (s) => s.lock(what))

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
const prepare = Effect.fn("FileSyncService.prepare")(function* (
  direction: "push" | "pull",
  options: FilesOptions,
  probed: Probe | undefined
) {
  const { config, client } = yield* context
  const dryRun = options.dryRun ?? false
  const progress = options.progress ?? silentProgress
  const [head, local] = yield* manifests(config, {
    keep: !dryRun,
    progress,
    ...(probed === undefined ? {} : { probe: probed })
  })
  const remote = head.manifest
  const membership = yield* makeWorkspace(config.servicesPath).membership()
  const visible = visibleEntries(remote.entries, membership, local.notCarried)
  const where = baseKey(remote)
  const base = yield* readBase(config.projectRoot, where)
  const plan = planFiles(direction, local.entries, visible, base, {
    delete: options.delete ?? false,
    force: options.force ?? false
  })
  const settle = Effect.suspend(() => {
    const next = plan.nextBase(remote.revision)
    return sameBase(next, base) ? Effect.void : writeBase(config.projectRoot, where, next)
  }).pipe(
    Effect.zipRight(
      settleMark(
        config,
        client.baseUrl,
        remote,
        plan.items.every((i) => i.action === "none") && local.notCarried.length === 0,
        local
      )
    )
  )
  return { config, client, dryRun, progress, local, head, remote, where, plan, settle }
})

/** A revision named by its id or a unique prefix of one (as `files log` shows them). */
const resolveRevision = Effect.fn("FileSyncService.resolveRevision")(function* (
  client: SyncApiClientShape,
  given: string
) {
  if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(given)) return given
  const matching = (yield* client.revisions(1000)).filter((r) => r.id.startsWith(given))
  if (matching.length === 1) return matching[0]!.id
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
const prepareRevision = Effect.fn("FileSyncService.prepareRevision")(function* (
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
  const membership = yield* makeWorkspace(config.servicesPath).membership()
  const visible = visibleEntries(remote.entries, membership, local.notCarried)
  const where = baseKey(remote)
  const base = yield* readBase(config.projectRoot, where)
  const plan = planFiles("pull", local.entries, visible, base, {
    delete: options.delete ?? false,
    force: options.force ?? false
  })
  const head: HeadManifest = { manifest: remote, cached: false }
  return { config, client, dryRun, progress, local, head, remote, where, plan, settle: Effect.void }
})

/**
 * A pull refuses a remote tree it could not write safely, before anything is downloaded: a path outside
 * what file sync carries (`.git/…`, `agentsync.yaml`, `.agentsync/…`), or one that is both a file and a folder.
 */
const checkRemote = (remote: RemoteManifest, url: string) => {
  const outside = remote.entries.find((e) => !isMemberPath(e.path))
  if (outside !== undefined) {
    return Effect.fail(
      new UnsafeRemote({
        reason: `the remote tree lists a path outside what file sync carries (${MEMBERSHIP.map((m) => `${m}/`).join(", ")}, .agentsyncignore; never .git)`,
        entry: outside.path,
        url
      })
    )
  }
  const both = fileAndFolder(remote.entries.map((e) => e.path))
  return both === undefined
    ? Effect.void
    : Effect.fail(
        new UnsafeRemote({
          reason: "the remote tree holds this path both as a file and as a folder; push a tree without one of them",
          entry: both,
          url
        })
      )
}

/**
 * What push and pull do first: finish a pull a crash left half done (unless a dry run), then probe. Either a
 * settled run (nothing to do) or what the full plan starts from.
 */
const begin = Effect.fn("FileSyncService.begin")(function* (direction: "push" | "pull", options: FilesOptions) {
  const { config, client } = yield* context
  if (options.dryRun !== true) yield* recover(config.projectRoot)
  yield* note(`${direction}: reading the local tree and the remote head; nothing changed yet`)
  return yield* probe(config, client)
})

/** Before a pull of an older revision: only the recovery (no settled mark can answer for another revision). */
const beginRevision = Effect.fn("FileSyncService.beginRevision")(function* (options: FilesOptions) {
  const { config } = yield* context
  if (options.dryRun !== true) yield* recover(config.projectRoot)
  yield* note("pull: reading the local tree and the revision asked for; nothing changed yet")
  return undefined as Probe | undefined
})

const pushImpl = Effect.fn("FileSyncService.push")(function* (options: FilesOptions = {}) {
  const probed = yield* begin("push", options)
  if (probed?.settled !== undefined)
    return settledReport("push", options.dryRun ?? false, probed.settled) as FilesReport
  const { config, client, dryRun, progress, local, head, remote, where, plan, settle } = yield* prepare(
    "push",
    options,
    probed
  )
  if (dryRun) return report("push", true, head, local, plan, { files_hashed: local.hashed })
  if (plan.conflicts.length > 0) return yield* conflictError(plan)
  yield* guardDeletes(plan, remote.entries.length, options.force ?? false)
  const set = actionsOf(plan, "upload").map((i) => i.local!)
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

const pullImpl = Effect.fn("FileSyncService.pull")(function* (options: FilesOptions = {}) {
  const older = options.revision
  const probed = older === undefined ? yield* begin("pull", options) : yield* beginRevision(options)
  if (probed?.settled !== undefined)
    return settledReport("pull", options.dryRun ?? false, probed.settled) as FilesReport
  const { config, client, dryRun, progress, local, head, remote, where, plan, settle } =
    older === undefined ? yield* prepare("pull", options, probed) : yield* prepareRevision(older, options)
  yield* checkRemote(remote, client.baseUrl)
  if (dryRun) return report("pull", true, head, local, plan, { files_hashed: local.hashed })
  if (plan.conflicts.length > 0) return yield* conflictError(plan)
  yield* guardDeletes(plan, local.entries.length, options.force ?? false)
  const write = actionsOf(plan, "write").map((i) => i.remote!)
  const deleted = actionsOf(plan, "delete-local").map((i) => i.path)
  if (remote.revision === null || (write.length === 0 && deleted.length === 0)) {
    yield* settle
    return report("pull", false, head, local, plan, { files_hashed: local.hashed })
  }
  const blocked = yield* obstacles(
    config.servicesPath,
    write.map((e) => e.path),
    new Set(deleted)
  )
  if (blocked.length > 0) {
    return yield* new Conflict({
      reason: `the pull would replace what is in its way on disk; move these aside (or remove them) and pull again — nothing was written`,
      items: blocked.slice(0, 20)
    })
  }
  const revision = remote.revision
  yield* note(
    `pull: downloading ${write.length} file(s) into a private staging folder; nothing in ${config.servicesPath} changed yet`
  )
  const result = yield* apply({
    projectRoot: config.projectRoot,
    servicesPath: config.servicesPath,
    // The whole tree when all of it is wanted (one sequential read); else only the paths needed.
    download: (missing, consume) =>
      client.download(
        revision,
        () => {
          const paths = missing()
          return paths.length === remote.entries.length ? undefined : paths
        },
        consume
      ),
    write,
    delete: deleted,
    cause: `revision ${revision}`,
    backups: backupPolicy(process.env),
    progress
  })
  yield* note(
    `pull: revision ${revision} is in place (${write.length} written, ${deleted.length} deleted); the next run records it`
  )
  // An older revision's tree is a local change against the head: the base stays the head's.
  if (older === undefined) yield* writeBase(config.projectRoot, where, plan.nextBase(revision))
  return report("pull", false, head, local, plan, {
    files_hashed: local.hashed,
    ...(result.backup === undefined ? {} : { backup: result.backup }),
    ...(result.pruned.length === 0 ? {} : { backups_pruned: result.pruned })
  })
})

/** The backups pulls made in the configured project, newest first (no server needed). */
export const backups = Effect.fn("FileSyncService.backups")(function* () {
  const config = yield* CurrentConfig
  return yield* listBackups(config.projectRoot)
})

/** Puts a backup's files back, holding the files lock (no server needed). */
export const restore = Effect.fn("FileSyncService.restore")(function* (id: string) {
  const config = yield* CurrentConfig
  const done = yield* Effect.scoped(
    Effect.zipRight(
      filesLock(config.projectRoot, "files restore"),
      restoreBackup(config.projectRoot, config.servicesPath, id)
    )
  )
  return { id, restored: done.restored, backup: done.backup } satisfies RestoreReport
})

/** A push or pull that changes something runs holding the project's files lock; a dry run reads only. */
const locked = <A, E, R>(
  what: string,
  options: FilesOptions | undefined,
  program: (options?: FilesOptions) => Effect.Effect<A, E, R>
) =>
  options?.dryRun === true
    ? program(options)
    : Effect.scoped(
        Effect.flatMap(CurrentConfig, (c) => Effect.zipRight(filesLock(c.projectRoot, what), program(options)))
      )

/** The file sync program as a service: its methods close over the configured client and configuration. */
export class FileSyncService extends Effect.Service<FileSyncService>()("agentsync/FileSyncService", {
  effect: Effect.gen(function* () {
    // Only what it was built with: a method runs with its caller's context otherwise (its progress reporter, its
    // run status, its file state).
    const ctx = Context.pick(SyncApiClient, CurrentConfig)(yield* Effect.context<SyncApiClient | CurrentConfig>())
    return {
      diff: (options?: FilesOptions) => Effect.provide(diffImpl(options), ctx),
      push: (options?: FilesOptions) => Effect.provide(locked("files push", options, pushImpl), ctx),
      pull: (options?: FilesOptions) => Effect.provide(locked("files pull", options, pullImpl), ctx),
      /** What changed inside each file of a diff's report: a unified diff of text, size and hash of the rest. */
      patches: (report: FilesReport) =>
        Effect.provide(
          // Loaded only for -p: it brings the text diff and local sync's readers.
          Effect.flatMap(
            Effect.zip(
              context,
              Effect.promise(() => import("./patches.js"))
            ),
            ([{ config, client }, p]) => p.filePatches(client, config.servicesPath, report)
          ),
          ctx
        ),
      /** The tenant's revisions, newest first, with who pushed each and what it changed. */
      log: (limit?: number) =>
        Effect.provide(
          Effect.flatMap(SyncApiClient, (c) => c.revisions(limit)),
          ctx
        ),
      /** The backups pulls made, newest first. */
      backups: () => Effect.provide(backups(), ctx),
      /** Puts a backup's files back (what they replace goes into a new backup). */
      restore: (id: string) => Effect.provide(restore(id), ctx)
    } as const
  })
}) {}

/** The service over the configured client; its methods need nothing else. */
export const layer: Layer.Layer<FileSyncService, never, SyncApiClient | CurrentConfig> = FileSyncService.Default
