/** What a file-sync run reports: the report's types and its rows, from the plan, manifests and links not carried. */
import type { DiffCounts, FileEntry } from "../../domain/model.js"
import type { NotCarried } from "../../stages/files/bundle.js"
import type { FilePlan } from "../../stages/files/plan.js"
import type { HeadManifest } from "../../stages/files/remote.js"

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
  /** A local special file, never opened and not carried (status `NotCarried`): what it is. */
  readonly special?: "FIFO" | "socket" | "device"
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
  /**
   * Local files whose bytes were read to hash them (0 when the hash cache vouched for all); a first push in the
   * trailer form hashes each regular file as it sends it, and counts those.
   */
  readonly files_hashed?: number
  readonly bytes_sent?: number
  readonly files_sent?: number
  readonly backup?: string
  /** Older backups removed by the backup policy. */
  readonly backups_pruned?: ReadonlyArray<string>
  /** How the remote head manifest was had: "cached" when the server answered 304 to the copy kept locally. */
  readonly remote_manifest: "cached" | "downloaded"
  /**
   * What at the top of the services tree file sync does not carry and no ignore rule names (a folder's name ends
   * in `/`), sorted; present only when there is something.
   */
  readonly left_out?: ReadonlyArray<string>
}

export interface RestoreReport {
  readonly id: string
  readonly restored: ReadonlyArray<string>
  /** The backup of what the restore replaced. */
  readonly backup: string | undefined
}

/** The change of the executable bit from `to` to `from` (the side synced from), if any. */
const modeChange = (from: FileEntry | undefined, to: FileEntry | undefined): { mode?: "+x" | "-x" } => {
  if (from === undefined || (from.executable === true) === (to?.executable === true)) return {}
  return { mode: from.executable === true ? "+x" : "-x" }
}

export const item = (
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

/** The local links and special files file sync does not carry, as report rows: never silently left out. */
export const notCarriedItems = (links: ReadonlyArray<NotCarried>): ReadonlyArray<FileReportItem> =>
  links.map((l) =>
    "special" in l
      ? { path: l.path, status: "NotCarried", action: "skip", note: `not carried: ${l.reason}`, special: l.special }
      : {
          path: l.path,
          status: "NotCarried",
          action: "skip",
          note: `symbolic link not carried: ${l.reason}`,
          link_target: l.target
        }
  )

export const report = (
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
