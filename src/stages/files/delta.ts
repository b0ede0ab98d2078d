/**
 * A run in proportion to its change: when the head is the settled mark's revision (the server's 304) and the
 * listing the mark was made from is kept, the files whose path, size, mtime or kind differ from that listing are
 * the only ones hashed and planned; every other file is the head's entry, as the mark vouched (the local tree, the
 * base and the head agreed at that revision, and size and mtime are trusted exactly as the hash cache trusts them).
 * The plan is the three-way plan of the changed paths alone, widened to the whole tree's counts and next base: the
 * same plan as the full one but for the items of unchanged files, which act on nothing (a property test holds it
 * so). Whatever it cannot vouch for (a link among the changes, a head entry it cannot place, many changes) leaves
 * the run to the full path.
 */
import { Effect } from "effect"
import { type FileEntry, fileEntry, fileVersion, isExecutableMode } from "../../domain/model.js"
import type { IoError } from "../../errors.js"
import type { WorkspaceFile, WorkspaceShape } from "../../services/Workspace.js"
import type { LocalManifest } from "./bundle.js"
import { type FilePlan, type PlanOptions, planFiles, SortedVersions, type SyncBase, strictlySorted } from "./plan.js"

export { SortedVersions } from "./plan.js"

import { kindOf, type ListedThen } from "./settledCheck.js"

/**
 * At most this many changed paths, and bytes to hash below DELTA_BYTES: more is the full run's. The delta never
 * writes the hash cache (it reads none): a later full run hashes again what changed since the cache was last
 * written, once, as it would have then; these bounds keep that deferred work small per run.
 */
export const DELTA_FILES = 1000
export const DELTA_BYTES = 16 * 1024 * 1024

/** What changed since the mark's listing, against the head of the mark's revision. */
export interface Delta {
  /** The head's entry of each listed file that did not change, in path order. */
  readonly unchanged: ReadonlyArray<FileEntry>
  /** The listed files that changed or are new, in path order: to hash. */
  readonly changed: ReadonlyArray<WorkspaceFile>
  /** The head's entries at the changed paths (new, changed or gone) that the membership takes, in path order. */
  readonly remote: ReadonlyArray<FileEntry>
}

/** Whether a listed file is as the mark's listing had it at index `k`. */
const sameFile = (now: WorkspaceFile, then: ListedThen, k: number) =>
  now.size === then.numbers[3 * k] &&
  now.mtimeMs === then.numbers[3 * k + 1] &&
  kindOf(now) === then.numbers[3 * k + 2] &&
  now.link === then.links.get(k)

/**
 * The change from `then` (the mark's listing) to `listed` (both sorted by path) against `head` (the mark's
 * revision, sorted), or undefined where the full run must decide: a list out of order, a link among the changed
 * paths, a listed file unchanged since the mark that the head lacks, a head entry at no listed path that the
 * membership takes (the full plan would carry it), too many changes.
 */
export const deltaOf = (
  then: ListedThen,
  listed: ReadonlyArray<WorkspaceFile>,
  head: ReadonlyArray<FileEntry>,
  includes: (path: string) => boolean
): Delta | undefined => {
  if (!strictlySorted(head)) return undefined
  const unchanged: Array<FileEntry> = []
  const changed: Array<WorkspaceFile> = []
  const remote: Array<FileEntry> = []
  let bytes = 0
  let paths = 0
  let i = 0 // listed
  let j = 0 // then
  let h = 0 // head
  let previous = ""
  for (;;) {
    const now = listed[i]
    const was = then.paths[j]
    // The next path of either listing, and what each has there (`wasAt`: its index in the mark's, or -1).
    const path = now === undefined ? was : was === undefined || now.path < was ? now.path : was
    if (path === undefined) break
    if (path <= previous && previous !== "") return undefined
    previous = path
    const nowHere = now !== undefined && now.path === path ? now : undefined
    const wasAt = was === path ? j : -1
    if (nowHere !== undefined) i++
    if (wasAt >= 0) j++
    // The head's entries before this path: at no listed path now or then, so the membership says.
    let entry = head[h]
    while (entry !== undefined && entry.path < path) {
      if (includes(entry.path)) return undefined
      entry = head[++h]
    }
    const at = entry !== undefined && entry.path === path ? entry : undefined
    if (at !== undefined) h++
    if (nowHere !== undefined && wasAt >= 0 && sameFile(nowHere, then, wasAt)) {
      // As the mark left it: the head's entry, or no vouching at all.
      if (at === undefined) return undefined
      unchanged.push(at)
      continue
    }
    if (nowHere?.link !== undefined || then.links.has(wasAt) || at?.link === true) return undefined
    if (++paths > DELTA_FILES) return undefined
    if (nowHere !== undefined) {
      bytes += nowHere.size
      if (bytes >= DELTA_BYTES) return undefined
      changed.push(nowHere)
    }
    // A listed path is the membership's; a gone one is asked, as the full plan's visible entries are.
    if (at !== undefined && (nowHere !== undefined || includes(path))) remote.push(at)
  }
  if (head.slice(h).some((e) => includes(e.path))) return undefined
  return { unchanged, changed, remote }
}

/** Merges two lists sorted by path (no path in both). */
const merged = <A extends { readonly path: string }>(a: ReadonlyArray<A>, b: ReadonlyArray<A>): Array<A> => {
  const out: Array<A> = new Array(a.length + b.length)
  let i = 0
  let j = 0
  let k = 0
  while (i < a.length || j < b.length) {
    const x = a[i]
    const y = b[j]
    if (x !== undefined && (y === undefined || x.path < y.path)) {
      out[k++] = x
      i++
    } else if (y !== undefined) {
      out[k++] = y
      j++
    }
  }
  return out
}

/** The local manifest of a delta: the changed files hashed (each with its listing's execute bit), the rest the head's. */
export const deltaManifest = (
  workspace: WorkspaceShape,
  delta: Delta,
  listed: { readonly files: ReadonlyArray<WorkspaceFile>; readonly at: number }
): Effect.Effect<{ readonly manifest: LocalManifest; readonly changed: ReadonlyArray<FileEntry> }, IoError> =>
  Effect.flatMap(workspace.hashFiles(delta.changed), (hashed) => {
    if (hashed.length !== delta.changed.length)
      return Effect.dieMessage(`the workspace hashed ${hashed.length} files of ${delta.changed.length} asked`)
    const changed = hashed.map((h, k) =>
      isExecutableMode(delta.changed[k]?.mode ?? 0) ? fileEntry(h.path, h.size, h.sha256, true) : h
    )
    return Effect.succeed({
      manifest: {
        entries: merged(delta.unchanged, changed),
        notCarried: [],
        hashed: changed.length,
        listed: listed.files,
        listedAt: listed.at
      } satisfies LocalManifest,
      changed
    })
  })

/**
 * The three-way plan of a delta: the changed paths planned as the full plan plans them (a file made a folder
 * included: what stands in its way changed too), every other file counted unchanged and recorded in the next base
 * at the head's version, in path order.
 */
export const planDelta = (
  direction: "push" | "pull",
  delta: Delta,
  changed: ReadonlyArray<FileEntry>,
  base: SyncBase,
  options: PlanOptions
): FilePlan => {
  const plan = planFiles(direction, changed, delta.remote, base, options)
  return {
    ...plan,
    // A changed file of the same bytes (a touch) is unchanged, as in the full plan: no item, as none is for the rest.
    items: plan.items.filter((i) => !(i.status === "Unchanged" && i.action === "none")),
    counts: { ...plan.counts, unchanged: plan.counts.unchanged + delta.unchanged.length },
    nextBase: (revision) => {
      const planned = [...plan.nextBase(revision).files].sort(([a], [b]) => (a < b ? -1 : 1))
      const n = delta.unchanged.length + planned.length
      const paths: Array<string> = new Array(n)
      const versions: Array<string> = new Array(n)
      let k = 0
      let o = 0
      for (const e of delta.unchanged) {
        for (let p = planned[k]; p !== undefined && p[0] < e.path; p = planned[++k]) {
          paths[o] = p[0]
          versions[o++] = p[1]
        }
        paths[o] = e.path
        // A path both planned and unchanged (none is: the delta plans changed paths only) takes the plan's version.
        const same = planned[k]
        if (same !== undefined && same[0] === e.path) {
          versions[o++] = same[1]
          k++
        } else versions[o++] = fileVersion(e)
      }
      for (const [path, version] of planned.slice(k)) {
        paths[o] = path
        versions[o++] = version
      }
      paths.length = o
      versions.length = o
      return { revision, files: new SortedVersions(paths, versions) }
    }
  }
}
