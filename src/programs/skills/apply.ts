/** The executors of a skill plan: home edits committed and pushed, repo content deployed, each side re-checked just before it is written, the lock advanced only for what succeeded. */
import * as nodePath from "node:path"
import { Data, Effect, Either, Option } from "effect"
import { sha256 } from "../../domain/hash.js"
import type { Lock, LockedDeployment, LockedSource } from "../../domain/skills/model.js"
import { type SkillAction, sideHash } from "../../domain/skills/planner.js"
import type { CommandFailed, IoError } from "../../errors.js"
import { Git } from "../../services/Git.js"
import { SkillStore } from "../../services/SkillStore.js"
import { UnitDisk } from "../../services/UnitDisk.js"
import { rel2abs } from "../../services/UnitDiskWrite.js"
import { recoverHint } from "./clone.js"
import type { SyncReport } from "./report.js"
import { keep, type Planned, type PlannedUnit, toolKey, unitKey } from "./snapshot.js"
import { held, type PreparedSource } from "./sources.js"

/** An action left out at apply time (its side moved since the plan); internal, reported in `skipped`. */
class Skip extends Data.TaggedError("Skip")<{ readonly reason: string }> {}

const homeRootOf = (home: string, planned: PlannedUnit) => nodePath.join(home, planned.layout.homeRoot)
const repoRootOf = (planned: PlannedUnit) => nodePath.join(planned.prepared.dir, planned.layout.repoRoot)

// The plan's actions come from its own units, the homes of their tools and the object ids of their repo files.
const unitOf = (planned: Planned, a: SkillAction) =>
  held(planned.units.get(unitKey(a.source, a.unit)), `the planned unit ${a.source}:${a.unit}`)
const homeOf = (planned: Planned, tool: string) => held(planned.homes.get(tool), `the home of ${tool}`)

/** The home of `tool` as the plan saw it (the files it left out left out again); a difference skips the action. */
const recheckHome = (planned: Planned, unit: PlannedUnit, action: SkillAction, tool: string) =>
  Effect.gen(function* () {
    const disk = yield* UnitDisk
    const now = yield* disk.snapshot(homeRootOf(yield* homeOf(planned, tool), unit), unit.layout.folder)
    const seen = keep(now.files, planned.dropped.get(toolKey(action.source, action.unit, tool)))
    if (sideHash(seen) !== sideHash(action.home) || now.linked !== undefined)
      return yield* new Skip({ reason: `the home of ${tool} changed since the plan` })
  })

/** Reads the bytes an action writes, verifying each against the digest the plan saw. */
const sourceBytes = (
  planned: Planned,
  unit: PlannedUnit,
  action: SkillAction,
  prefetched: ReadonlyMap<string, Uint8Array> = new Map()
): Effect.Effect<ReadonlyMap<string, Uint8Array>, Skip | IoError | CommandFailed, Git> =>
  Effect.gen(function* () {
    const disk = yield* UnitDisk
    const wanted = Object.entries(action.content ?? {})
    const read: Array<{ readonly rel: string; readonly digest: string; readonly bytes: Uint8Array }> = []
    if (wanted.length === 0) return new Map()
    const fromTool = action.direction === "ToRepo" ? action.tool : action.from === "repo" ? undefined : action.from.tool
    if (fromTool !== undefined) {
      const root = homeRootOf(yield* homeOf(planned, fromTool), unit)
      for (const [rel, digest] of wanted) {
        const bytes = yield* disk
          .read(rel2abs(root, rel), digest)
          .pipe(Effect.mapError(() => new Skip({ reason: `the home of ${fromTool} changed since the plan` })))
        read.push({ rel, digest, bytes })
      }
    } else if (unit.prepared.location._tag === "Local") {
      for (const [rel, digest] of wanted)
        read.push({ rel, digest, bytes: yield* disk.read(rel2abs(repoRootOf(unit), rel), digest) })
    } else {
      const git = yield* Git
      const oids = unit.repo?.oids ?? {}
      const located: Array<{ readonly rel: string; readonly digest: string; readonly oid: string }> = []
      for (const [rel, digest] of wanted)
        located.push({ rel, digest, oid: yield* held(oids[rel], `the object id of ${rel}`) })
      const missing = located.filter((f) => !prefetched.has(f.oid))
      const blobs =
        missing.length === 0
          ? prefetched
          : yield* git.readBlobs(
              unit.prepared.dir,
              missing.map((f) => f.oid)
            )
      for (const { rel, digest, oid } of located)
        read.push({
          rel,
          digest,
          bytes: yield* held(prefetched.get(oid) ?? blobs.get(oid), `the blob ${oid} of ${rel}`)
        })
    }
    for (const { rel, digest, bytes } of read) {
      if (sha256(bytes) !== digest.slice(0, 64))
        return yield* new Skip({ reason: `${rel === "" ? unit.layout.homeRoot : rel} changed since the plan` })
    }
    return new Map(read.map(({ rel, bytes }) => [rel, bytes]))
  })

export interface Outcome {
  readonly applied: SyncReport["applied"]
  readonly skipped: SyncReport["skipped"]
  readonly commits: SyncReport["commits"]
  readonly errors: SyncReport["errors"]
  readonly backups: SyncReport["backups"]
}

export const apply = Effect.fn("SkillSync.apply")(function* (
  planned: Planned,
  actions: ReadonlyArray<SkillAction>,
  lock: Lock,
  skipPush: boolean
) {
  const store = yield* SkillStore
  const git = yield* Git
  const disk = yield* UnitDisk
  const applied: Array<SyncReport["applied"][number]> = []
  const skipped: Array<SyncReport["skipped"][number]> = []
  const commits: Array<{ source: string; unit: string; commit: string; pushed: boolean }> = []
  const backups: Array<SyncReport["backups"][number]> = []
  /** Units whose edit did not reach the repo: nothing of theirs advances. */
  const failed = new Set<string>()
  const deployedCommit = new Map<string, string | undefined>()
  const skipUnit = (key: string, reason: string) => {
    for (const b of actions)
      if (unitKey(b.source, b.unit) === key && b.direction !== "NoOp" && b.direction !== "Conflict")
        skipped.push({ source: b.source, unit: b.unit, tool: b.tool, reason })
  }

  // 0. What interrupted runs left behind goes first.
  yield* disk.remove(planned.temps)

  // What --prefer writes over is copied first, into one folder per run.
  const backupRoot = nodePath.join(store.backupsDir, new Date().toISOString().replace(/[:.]/g, "-"))
  const backup = (a: SkillAction, root: string, side: string, folder: string, rootRel: string) =>
    Effect.gen(function* () {
      if (!a.backup || !(yield* disk.exists(root))) return
      const dest = nodePath.join(backupRoot, a.source, folder, ...rootRel.split("/"))
      // A unit rooted at the repository's top is its files, not the clone (its .git, other units).
      if (rootRel === ".")
        for (const rel of Object.keys(a.repo ?? {})) yield* disk.copy(rel2abs(root, rel), rel2abs(dest, rel))
      else yield* disk.copy(root, dest)
      backups.push({ source: a.source, unit: a.unit, side, path: dest })
    })

  // 1. ToRepo: one commit per unit, then one push per source.
  const byUnit = new Map<string, SkillAction>()
  for (const a of actions)
    if (a.direction === "ToRepo" && !byUnit.has(unitKey(a.source, a.unit))) byUnit.set(unitKey(a.source, a.unit), a)
  /** Per git source with a commit to push: the branch it goes to and the units committed. */
  const toPush = new Map<PreparedSource, { readonly branch: string; readonly keys: Array<string> }>()
  for (const [key, a] of byUnit) {
    const unit = yield* unitOf(planned, a)
    const p = unit.prepared
    const result = yield* Effect.either(
      Effect.gen(function* () {
        yield* recheckHome(planned, unit, a, a.tool)
        const bytes = yield* sourceBytes(planned, unit, a)
        const root = repoRootOf(unit)
        yield* backup(a, root, "repo", "repo", unit.layout.repoRoot)
        yield* disk.write({
          root,
          folder: unit.layout.folder,
          previous: a.repo,
          content: a.content,
          bytes,
          stopAt: root,
          // The repository's top is never removed, even left empty (a `local:` folder that is one skill).
          keepStopAt: unit.layout.repoRoot === "."
        })
        if (p.location._tag === "Git") {
          // A git source without a branch (a tag or a commit) is read-only: the planner sends nothing to it.
          const branch = yield* held(p.branch, `the branch of ${a.source} to commit ${a.unit} to`)
          // A unit at the repository's top stages its own files, not whatever else the clone holds.
          const staged =
            unit.layout.repoRoot === "."
              ? [...new Set([...Object.keys(a.repo ?? {}), ...Object.keys(a.content ?? {})])]
              : [unit.layout.repoRoot]
          yield* git.add(p.dir, staged)
          const made = yield* git.commit(p.dir, `sync: ${a.unit}`)
          if (Option.isSome(made)) {
            commits.push({ source: a.source, unit: a.unit, commit: made.value, pushed: false })
            deployedCommit.set(key, made.value)
          }
          const pending = toPush.get(p) ?? { branch, keys: [] }
          pending.keys.push(key)
          toPush.set(p, pending)
        }
      })
    )
    if (Either.isLeft(result)) {
      failed.add(key)
      skipUnit(key, result.left instanceof Skip ? result.left.reason : result.left.message)
      if (p.location._tag === "Git") yield* Effect.ignore(git.clean(p.dir))
    }
  }
  const pushErrors: Array<{ source: string; reason: string }> = []
  for (const [p, { branch, keys }] of toPush) {
    const source = p.source.name
    const mine = commits.filter((c) => c.source === source)
    if (mine.length === 0 || skipPush) continue
    const pushed = yield* Effect.either(git.push(p.dir, branch))
    if (Either.isLeft(pushed)) {
      const reason = `push to ${p.location._tag === "Git" ? p.location.url : p.dir} was rejected (${pushed.left.message.split("\n").slice(-1)[0]}); ${recoverHint(p.dir, branch)}; the lock was not advanced`
      pushErrors.push({ source, reason })
      for (const key of keys) {
        failed.add(key)
        skipUnit(key, "push rejected")
      }
    } else for (const c of mine) c.pushed = true
  }
  for (const a of byUnit.values()) {
    if (!failed.has(unitKey(a.source, a.unit))) {
      for (const b of actions)
        if (b.direction === "ToRepo" && b.source === a.source && b.unit === a.unit)
          applied.push({ source: b.source, unit: b.unit, tool: b.tool, direction: b.direction })
    }
  }

  // 2. ToHome: re-check the home just before writing; a moved home skips that unit only. Repo bytes are read in
  // one `git cat-file --batch` per source; units are written concurrently (their paths are disjoint).
  const toHome = actions.filter((a) => a.direction === "ToHome" && !failed.has(unitKey(a.source, a.unit)))
  const blobs = new Map<string, Uint8Array>()
  for (const p of planned.prepared) {
    if (p.location._tag !== "Git") continue
    const oids = new Set<string>()
    for (const a of toHome) {
      if (a.source !== p.source.name || a.from !== "repo") continue
      const oidsOf = (yield* unitOf(planned, a)).repo?.oids ?? {}
      for (const rel of Object.keys(a.content ?? {})) oids.add(yield* held(oidsOf[rel], `the object id of ${rel}`))
    }
    for (const [oid, bytes] of yield* git.readBlobs(p.dir, [...oids])) blobs.set(oid, bytes)
  }
  yield* Effect.forEach(
    toHome,
    (a) =>
      Effect.gen(function* () {
        const unit = yield* unitOf(planned, a)
        const result = yield* Effect.either(
          Effect.gen(function* () {
            yield* recheckHome(planned, unit, a, a.tool)
            const bytes = yield* sourceBytes(planned, unit, a, blobs)
            const root = homeRootOf(yield* homeOf(planned, a.tool), unit)
            yield* backup(a, root, `home of ${a.tool}`, `home-${a.tool}`, unit.layout.homeRoot)
            yield* disk.write({
              root,
              folder: unit.layout.folder,
              previous: a.home,
              content: a.content,
              bytes,
              stopAt: unit.layout.folder ? root : nodePath.dirname(root)
            })
          })
        )
        if (Either.isLeft(result)) {
          skipped.push({
            source: a.source,
            unit: a.unit,
            tool: a.tool,
            reason: result.left instanceof Skip ? result.left.reason : result.left.message
          })
          failed.add(toolKey(a.source, a.unit, a.tool))
        } else applied.push({ source: a.source, unit: a.unit, tool: a.tool, direction: a.direction })
      }),
    { concurrency: 16, discard: true }
  )

  // 3. The lock: only what succeeded advances.
  /** unit → tool → deployment, per source of this run, starting from what the lock says. */
  const fresh = planned.prepared.map(
    (
      p
    ): { readonly p: PreparedSource; readonly units: Record<string, Readonly<Record<string, LockedDeployment>>> } => ({
      p,
      units: { ...(lock.sources[p.source.name]?.units ?? {}) }
    })
  )
  const unitsOf = new Map(fresh.map(({ p, units }) => [p.source.name, units]))
  for (const a of actions) {
    if (a.lock === "keep") continue
    const key = unitKey(a.source, a.unit)
    if (failed.has(key) || failed.has(toolKey(a.source, a.unit, a.tool))) continue
    const units = yield* held(unitsOf.get(a.source), `the lock entry of ${a.source}`)
    const perTool = { ...(units[a.unit] ?? {}) }
    if (a.lock === "drop" || a.content === undefined) delete perTool[a.tool]
    else {
      const commit = deployedCommit.get(key) ?? (yield* unitOf(planned, a)).prepared.commit
      perTool[a.tool] = { ...(commit === undefined ? {} : { commit }), files: a.content }
    }
    if (Object.keys(perTool).length === 0) delete units[a.unit]
    else units[a.unit] = perTool
  }
  const sources: Record<string, LockedSource> = { ...lock.sources }
  for (const { p, units } of fresh)
    sources[p.source.name] = { ...(p.commit === undefined ? {} : { commit: p.commit }), units }
  yield* store.writeLock({ version: 1, sources })
  return { applied, skipped, commits, errors: [...planned.errors, ...pushErrors], backups } satisfies Outcome
})
