/** A git source's cache clone: checked (recovered, or put aside and cloned again), its ref resolved explicitly, its branch settled with upstream. */
import * as nodePath from "node:path"
import { Effect, Either, Option } from "effect"
import type { ManifestSource } from "../../domain/skills/model.js"
import { CommandFailed, InvalidInput } from "../../errors.js"
import { Git } from "../../services/Git.js"
import { SkillStore } from "../../services/SkillStore.js"
import { TEMP_PREFIX, UnitDisk } from "../../services/UnitDisk.js"

export const recoverHint = (dir: string, ref: string) =>
  `the commits stay in ${dir}; once the remote accepts them, run \`agentsync skill sync\` again (it pushes pending commits first), or push by hand with \`git -C ${dir} push origin ${ref}\``

const stamp = () => new Date().toISOString().replace(/[:.]/g, "-")

/** Where a ref may be, as revisions for `Git.revs`: a branch of origin (and our own of that name), a tag, a commit id. */
const refRevs = (ref: string) => ({
  remote: `refs/remotes/origin/${ref}^{commit}`,
  local: `refs/heads/${ref}^{commit}`,
  tag: `refs/tags/${ref}^{commit}`,
  id: /^[0-9a-f]{7,40}$/.test(ref) ? `${ref}^{commit}` : undefined
})

export interface Resolved {
  readonly commit: string
  /** The branch the ref names; `undefined` for a tag or a commit. */
  readonly branch: string | undefined
  /** Our branch of that name in the clone, if any. */
  readonly local: string | undefined
}

/** The commit a source's ref names in a clone, resolved explicitly (never the remote's HEAD): a branch of origin, else a tag, else a commit id. */
export const resolveRef = Effect.fn("SkillSync.resolveRef")(function* (
  dir: string,
  source: ManifestSource,
  url: string
) {
  const git = yield* Git
  const r = refRevs(source.ref)
  const found = yield* git.revs(dir, [r.remote, r.local, r.tag, ...(r.id === undefined ? [] : [r.id])])
  const remote = found.get(r.remote)
  const local = found.get(r.local)
  if (remote !== undefined) return { commit: remote, branch: source.ref, local } satisfies Resolved
  const other = found.get(r.tag) ?? (r.id === undefined ? undefined : found.get(r.id))
  if (other === undefined)
    return yield* new InvalidInput({
      field: "ref",
      reason: `source ${source.name}: ${source.ref} is not a branch, tag or commit of ${url}`
    })
  return { commit: other, branch: undefined, local: undefined } satisfies Resolved
})

/**
 * The cache clone of a git source, ready to read: a clone that is not a healthy clone of the source is put aside
 * (never deleted: it may hold commits) and cloned again; stale git locks are cleared. A new clone is made in a temp
 * folder and renamed into place once its ref is checked out, so an interrupted clone never stands as the cache.
 */
export const ensureClone = Effect.fn("SkillSync.ensureClone")(function* (
  source: ManifestSource,
  url: string,
  dir: string,
  fetch: boolean
) {
  const store = yield* SkillStore
  const git = yield* Git
  const disk = yield* UnitDisk
  const notes: Array<string> = []
  if (yield* disk.exists(dir)) {
    let unhealthy = yield* git.health(dir, url)
    if (Option.isNone(unhealthy)) {
      const head = yield* Effect.either(git.revs(dir, ["HEAD^{tree}"]))
      if (Either.isLeft(head))
        unhealthy = Option.some(`git does not read it as a repository (${head.left.stderr.trim().split("\n")[0]})`)
      else if (head.right.get("HEAD^{tree}") === undefined)
        unhealthy = Option.some("its HEAD names no commit (an interrupted clone, or missing objects)")
    }
    if (Option.isSome(unhealthy)) {
      const aside = nodePath.join(store.backupsDir, `cache-${source.name}-${stamp()}`)
      yield* disk.move(dir, aside)
      notes.push(
        `the cache clone ${dir} was not a healthy clone of ${url} (${unhealthy.value}); it was put aside in ${aside} and cloned again`
      )
    } else {
      for (const lock of yield* git.recover(dir))
        notes.push(`removed a stale ${nodePath.relative(dir, lock)} left by an interrupted git in ${dir}`)
      if (fetch) yield* git.fetch(dir)
      return notes
    }
  }
  const tmp = nodePath.join(nodePath.dirname(dir), `${TEMP_PREFIX}clone-${source.name}-${stamp()}`)
  yield* Effect.acquireUseRelease(
    Effect.succeed(tmp),
    () =>
      Effect.gen(function* () {
        yield* git.clone(url, tmp)
        yield* git.fetch(tmp)
        const at = yield* resolveRef(tmp, source, url)
        yield* git.checkout(tmp, at.branch, at.commit)
        yield* disk.move(tmp, dir)
      }),
    () => Effect.orDie(disk.remove([tmp]))
  )
  return notes
})

/** Brings the clone to the commit a run reads: fast-forward, push pending commits, or rebase them on a moved upstream. */
export const settleBranch = Effect.fn("SkillSync.settleBranch")(function* (
  source: ManifestSource,
  dir: string,
  at: Resolved,
  options: { readonly dryRun: boolean; readonly skipPush: boolean }
) {
  const git = yield* Git
  const ref = source.ref
  const remote = at.commit
  const local = at.local
  let target = remote
  let pending = false
  if (local !== undefined && local !== remote) {
    if (yield* git.isAncestor(dir, local, remote)) target = remote
    else if (yield* git.isAncestor(dir, remote, local)) {
      target = local
      pending = true
    } else if (options.dryRun) {
      target = local
    } else {
      // Local commits that were never pushed, and upstream moved: replay ours on top, or stop and say how to recover.
      yield* git.checkout(dir, ref, local)
      yield* git.clean(dir)
      yield* git.rebase(dir, `refs/remotes/origin/${ref}`).pipe(
        Effect.mapError(
          (e) =>
            new CommandFailed({
              command: e.command,
              exitCode: e.exitCode,
              stderr: `${e.stderr}\nlocal commits of source ${source.name} do not apply on the new upstream; ${recoverHint(dir, ref)} after resolving by hand`
            })
        )
      )
      target = Option.getOrThrow(yield* git.resolve(dir, `refs/heads/${ref}`))
      pending = true
    }
  }
  if (!options.dryRun) {
    yield* git.checkout(dir, ref, target)
    yield* git.clean(dir)
    if (pending && !options.skipPush) {
      yield* git.push(dir, ref).pipe(
        Effect.mapError(
          (e) =>
            new CommandFailed({
              command: e._tag === "CommandFailed" ? e.command : "git push",
              exitCode: e._tag === "CommandFailed" ? e.exitCode : 1,
              stderr: `${e._tag === "CommandFailed" ? e.stderr : e.message}\npending commits of source ${source.name} were rejected; ${recoverHint(dir, ref)}`
            })
        )
      )
    }
  }
  return target
})
