/** What refuses a file-sync run before it changes anything: conflicts, mass deletes, an unsafe remote tree. */
import { Effect } from "effect"
import type { RemoteManifest } from "../../api/files.js"
import { fileAndFolder } from "../../domain/caps.js"
import { isMemberPath, MEMBERSHIP } from "../../domain/membership.js"
import type { FileEntry } from "../../domain/model.js"
import { Conflict, ServerLacks, UnsafeRemote } from "../../errors.js"
import type { SyncApiClientShape } from "../../services/SyncApi.js"
import type { FilePlan } from "../../stages/files/plan.js"

/** Deleting more than this share of a tree needs --force. */
export const DELETE_THRESHOLD = 0.5

export const conflictError = (plan: FilePlan) =>
  new Conflict({
    reason: `${plan.conflicts.length} file(s) changed on both sides since the last sync; pull or push with --force to take one side (the other is kept in a backup on pull)`,
    items: plan.conflicts.slice(0, 50)
  })

/** Refuses a run that would delete more than half of a tree, unless forced. */
export const guardDeletes = (plan: FilePlan, treeSize: number, force: boolean) => {
  const deletes = plan.items.filter((i) => i.action === "delete-remote" || i.action === "delete-local")
  if (force || deletes.length === 0 || deletes.length <= treeSize * DELETE_THRESHOLD) return Effect.void
  return Effect.fail(
    new Conflict({
      reason: `refusing to delete ${deletes.length} of ${treeSize} files (more than half of the tree); pass --force if that is intended`,
      items: deletes.slice(0, 20).map((d) => d.path)
    })
  )
}

/** The first index of `tree` (sorted by path) whose path is not below `path`. */
const lowerBound = (tree: ReadonlyArray<FileEntry>, path: string) => {
  let lo = 0
  let hi = tree.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    // An index below the length.
    if (tree[mid]!.path < path) lo = mid + 1
    else hi = mid
  }
  return lo
}

/**
 * What makes `tree` (strictly sorted by path) unsafe, asked of the paths `added` only: one outside what file sync
 * carries, or a file that is also a folder (an added path below a file of the tree, or with files below it). When
 * the tree less `added` is one that passed `checkRemote` (removing paths makes no tree unsafe), this says what
 * `checkRemote` would of the whole tree, at a binary search per folder of each added path instead of a walk of
 * every path.
 */
export const unsafeAdded = (
  tree: ReadonlyArray<FileEntry>,
  added: ReadonlyArray<string>
): { readonly outside?: string; readonly both?: string } | undefined => {
  for (const p of added) {
    if (!isMemberPath(p)) return { outside: p }
    for (let i = p.indexOf("/"); i !== -1; i = p.indexOf("/", i + 1)) {
      const folder = p.slice(0, i)
      if (tree[lowerBound(tree, folder)]?.path === folder) return { both: folder }
    }
    // Paths below `p` sort together, the first of them first among the paths from `p/` on.
    if (tree[lowerBound(tree, `${p}/`)]?.path.startsWith(`${p}/`) === true) return { both: p }
  }
  return undefined
}

/**
 * A pull refuses a remote tree it could not write safely, before anything is downloaded: a path outside
 * what file sync carries (`.git/…`, `agentsync.yaml`, `.agentsync/…`), or one that is both a file and a folder.
 * `vouched`: the tree is one that passed this check with these paths added since (sorted by path, as a head and
 * the tree a push makes are); only they are asked (see `unsafeAdded`).
 */
export const checkRemote = (remote: RemoteManifest, url: string, vouched?: ReadonlyArray<string>) => {
  const found =
    vouched !== undefined
      ? unsafeAdded(remote.entries, vouched)
      : (() => {
          const outside = remote.entries.find((e) => !isMemberPath(e.path))
          if (outside !== undefined) return { outside: outside.path }
          const both = fileAndFolder(remote.entries.map((e) => e.path))
          return both === undefined ? undefined : { both }
        })()
  if (found?.outside !== undefined) {
    return Effect.fail(
      new UnsafeRemote({
        reason: `the remote tree lists a path outside what file sync carries (${MEMBERSHIP.map((m) => `${m}/`).join(", ")}, .agentsyncignore; never .git)`,
        entry: found.outside,
        url
      })
    )
  }
  return found?.both === undefined
    ? Effect.void
    : Effect.fail(
        new UnsafeRemote({
          reason: "the remote tree holds this path both as a file and as a folder; push a tree without one of them",
          entry: found.both,
          url
        })
      )
}

/**
 * A push refuses, before sending anything, files of a kind the server said on its manifest answer it does not keep
 * (a server that predates executable bits or links: its checksum leaves them out, so the upload would end in a
 * checksum mismatch), naming them and what the server lacks.
 */
export const checkServerKeeps = (plan: FilePlan, client: SyncApiClientShape) => {
  const keeps = client.serverEntryKinds()
  const uploads = plan.items.flatMap((i) => (i.action === "upload" && i.local !== undefined ? [i.local] : []))
  const lacking = [
    { kind: "link" as const, what: "symbolic links", files: uploads.filter((e) => e.link === true) },
    { kind: "executable" as const, what: "executable bits", files: uploads.filter((e) => e.executable === true) }
  ].filter((k) => k.files.length > 0 && !keeps.includes(k.kind))
  if (lacking.length === 0) return Effect.void
  const items = lacking.flatMap((k) =>
    k.files.map((e) => `${e.path} (${k.kind === "link" ? "symbolic link" : "executable"})`)
  )
  return Effect.fail(
    new ServerLacks({
      reason: `the server does not carry ${lacking.map((k) => k.what).join(" or ")}: upgrade it${items.length > 50 ? ` (${items.length} files need it, the first 50 named)` : ""}`,
      items: items.slice(0, 50),
      url: client.baseUrl
    })
  )
}
