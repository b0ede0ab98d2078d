/** The settled mark in a file-sync run: the probe before a plan, and the mark kept or forgotten after the run. */
import { Effect } from "effect"
import { FilesRoutes, manifestEtag, type RemoteManifest, standIn } from "../../api/files.js"
import type { SyncConfig } from "../../config.js"
import { stateOf } from "../../services/FileState.js"
import type { SyncApiClientShape } from "../../services/SyncApi.js"
import { specialsOf, takeHandedListing } from "../../services/state.js"
import { type WorkspaceFile, workspaceAt } from "../../services/Workspace.js"
import { listAndStamp } from "../../stages/files/bundle.js"
import { clearMark, matches, racyListing, readMark, type SettledMark, writeMark } from "../../stages/files/settled.js"
import { checkRemote } from "./guards.js"

/** What a run learns before it plans: the listing, and either that nothing moved since the settled mark or the head. */
export interface Probe {
  readonly listed: { readonly files: ReadonlyArray<WorkspaceFile>; readonly at: number }
  readonly settled?: SettledMark
  readonly fetched?: RemoteManifest
  /**
   * The head revision the server has just confirmed (a 304 to the mark's): the kept manifest of it is current, and
   * its tree passed `checkRemote` when the mark was kept.
   */
  readonly confirmed?: string
  /** The mark whose revision was confirmed: its listing says what changed since (see stages/files/delta.ts). */
  readonly mark?: SettledMark
}

/**
 * With a settled mark kept for this API and tree: the listing and the head asked for conditionally on the
 * mark's revision, at once. The same listing and a 304 mean nothing changed on either side since the mark:
 * the run is done without reading the hash cache, the base or the kept manifest. Without a mark, undefined
 * (the full path lists and asks as before). When the settled check of this process already had the 304 and the
 * listing under the same mark, neither is had again.
 */
export const probe = Effect.fn("FileSyncService.probe")(function* (config: SyncConfig, client: SyncApiClientShape) {
  const workspace = yield* workspaceAt(config.servicesPath)
  const handed = takeHandedListing(workspace.root)
  const mark = yield* readMark(config.projectRoot, client.baseUrl, workspace.root)
  if (mark === undefined) return undefined
  if (
    handed !== undefined &&
    handed.revision === mark.revision &&
    handed.base[0] === mark.base[0] &&
    handed.base[1] === mark.base[1]
  ) {
    // The check found that listing unlike the mark's: not settled, planned from it against the confirmed head,
    // and the server's 304 then said what it reads and keeps (this run has no manifest answer of its own).
    client.heard(handed.answer)
    return { listed: { files: handed.files, at: handed.at }, confirmed: mark.revision, mark } satisfies Probe
  }
  // Stands for the head at the mark's revision: returned as is when the server answers 304.
  const assumed = standIn(mark.tenant, mark.revision)
  const state = yield* stateOf(config.projectRoot)
  const [head, listed] = yield* Effect.all([client.manifest({ known: assumed }), listAndStamp(workspace, state)], {
    concurrency: 2
  })
  const files = listed.files
  if (head !== assumed) return { listed, fetched: head } satisfies Probe
  // The listing keeps a special file out of what the mark compares, so one made since is seen only here: the full
  // run names it as not carried (as the settled check leaves such a tree to it).
  return (
    matches(mark, files) && specialsOf(files).length === 0
      ? { listed, settled: mark }
      : { listed, confirmed: mark.revision, mark }
  ) satisfies Probe
})

/**
 * Keeps the settled mark when a run ends with both sides and the base agreeing on `head`, and `head` is a tree
 * a pull accepts (so that a settled pull is never one that should have been refused); else forgets it. Whether
 * `head` is such a tree is asked last, only of a mark that would be kept, and a push of a file edited in the tick
 * of its listing's stamp keeps no mark whatever the tree. `vouched`: the paths added to a tree that passed the check
 * (the revision of the mark this run started from, see `Probe.confirmed`) to make `head`; only they are asked,
 * else every path is.
 */
export const settleMark = (
  config: SyncConfig,
  url: string,
  head: RemoteManifest,
  agreed: boolean,
  local: { readonly listed: ReadonlyArray<WorkspaceFile>; readonly listedAt: number },
  vouched?: ReadonlyArray<string>
) =>
  !agreed || head.revision === null || racyListing(local.listed, local.listedAt)
    ? clearMark(config.projectRoot)
    : Effect.flatMap(Effect.either(checkRemote(head, url, vouched)), (safe) =>
        safe._tag === "Right" && head.revision !== null
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
