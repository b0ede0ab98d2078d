/** The executors of a skill plan: home edits committed and pushed, repo content deployed, each side re-checked just before it is written, the lock advanced only for what succeeded. */
import * as nodePath from "node:path"
import { Data, Effect, Either, Option } from "effect"
import { sha256 } from "../../domain/hash.js"
import type { Lock, LockedSource, UnitFiles } from "../../domain/skills/model.js"
import { type SkillAction, sideHash } from "../../domain/skills/planner.js"
import type { CommandFailed, IoError } from "../../errors.js"
import { Git } from "../../services/Git.js"
import { SkillStore } from "../../services/SkillStore.js"
import { UnitDisk } from "../../services/UnitDisk.js"
import { recoverHint } from "./clone.js"
import type { SyncReport } from "./report.js"
import { keep, type Planned, type PlannedUnit, toolKey, unitKey } from "./snapshot.js"

/** An action left out at apply time (its side moved since the plan); internal, reported in `skipped`. */
class Skip extends Data.TaggedError("Skip")<{ readonly reason: string }> {}

const homeRootOf = (home: string, planned: PlannedUnit) => nodePath.join(home, planned.layout.homeRoot)
const repoRootOf = (planned: PlannedUnit) => nodePath.join(planned.prepared.dir, planned.layout.repoRoot)
const fileOf = (root: string, rel: string) => (rel === "" ? root : nodePath.join(root, ...rel.split("/")))

/** The home of `tool` as the plan saw it (the files it left out left out again); a difference skips the action. */
const recheckHome = (planned: Planned, unit: PlannedUnit, action: SkillAction, tool: string) =>
  Effect.gen(function* () {
    const disk = yield* UnitDisk
    const now = yield* disk.snapshot(homeRootOf(planned.homes.get(tool)!, unit), unit.layout.folder)
    const seen = keep(now.files, planned.dropped.get(toolKey(action.source, action.unit, tool)))
    if (sideHash(seen) !== sideHash(action.home) || now.linked !== undefined)
      return yield* new Skip({ reason: `the home of ${tool} changed since the plan` })
  })

/** Reads the bytes an action writes, verifying each against the digest the plan saw. */
const sourceBytes = (
  planned: PlannedUnit,
  action: SkillAction,
  homes: ReadonlyMap<string, string>,
  prefetched: ReadonlyMap<string, Uint8Array> = new Map()
): Effect.Effect<ReadonlyMap<string, Uint8Array>, Skip | IoError | CommandFailed, Git> =>
  Effect.gen(function* () {
    const disk = yield* UnitDisk
    const content = action.content ?? {}
    const rels = Object.keys(content)
    const out = new Map<string, Uint8Array>()
    if (rels.length === 0) return out
    const fromTool = action.direction === "ToRepo" ? action.tool : action.from === "repo" ? undefined : action.from.tool
    if (fromTool !== undefined) {
      const root = homeRootOf(homes.get(fromTool)!, planned)
      for (const rel of rels) {
        const bytes = yield* disk
          .read(fileOf(root, rel), content[rel]!)
          .pipe(Effect.mapError(() => new Skip({ reason: `the home of ${fromTool} changed since the plan` })))
        out.set(rel, bytes)
      }
    } else if (planned.prepared.location._tag === "Local") {
      for (const rel of rels) out.set(rel, yield* disk.read(fileOf(repoRootOf(planned), rel), content[rel]!))
    } else {
      const git = yield* Git
      const oids = planned.repo?.oids ?? {}
      const missing = rels.filter((r) => !prefetched.has(oids[r]!))
      const blobs =
        missing.length === 0
          ? prefetched
          : yield* git.readBlobs(
              planned.prepared.dir,
              missing.map((r) => oids[r]!)
            )
      for (const rel of rels) out.set(rel, prefetched.get(oids[rel]!) ?? blobs.get(oids[rel]!)!)
    }
    for (const rel of rels) {
      if (sha256(out.get(rel)!) !== content[rel]!.slice(0, 64))
        return yield* new Skip({ reason: `${rel === "" ? planned.layout.homeRoot : rel} changed since the plan` })
    }
    return out
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
      yield* disk.copy(root, dest)
      backups.push({ source: a.source, unit: a.unit, side, path: dest })
    })

  // 1. ToRepo: one commit per unit, then one push per source.
  const byUnit = new Map<string, SkillAction>()
  for (const a of actions)
    if (a.direction === "ToRepo" && !byUnit.has(unitKey(a.source, a.unit))) byUnit.set(unitKey(a.source, a.unit), a)
  const unitsBySource = new Map<string, Array<string>>()
  for (const [key, a] of byUnit) {
    const unit = planned.units.get(key)!
    const p = unit.prepared
    const result = yield* Effect.either(
      Effect.gen(function* () {
        yield* recheckHome(planned, unit, a, a.tool)
        const bytes = yield* sourceBytes(unit, a, planned.homes)
        const root = repoRootOf(unit)
        yield* backup(a, root, "repo", "repo", unit.layout.repoRoot)
        yield* disk.write({
          root,
          folder: unit.layout.folder,
          previous: a.repo,
          content: a.content,
          bytes,
          stopAt: root
        })
        if (p.location._tag === "Git") {
          yield* git.add(p.dir, [unit.layout.repoRoot])
          const made = yield* git.commit(p.dir, `sync: ${a.unit}`)
          if (Option.isSome(made)) {
            commits.push({ source: a.source, unit: a.unit, commit: made.value, pushed: false })
            deployedCommit.set(key, made.value)
          }
          const list = unitsBySource.get(a.source) ?? []
          list.push(key)
          unitsBySource.set(a.source, list)
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
  for (const [source, keys] of unitsBySource) {
    const p = planned.prepared.find((x) => x.source.name === source)!
    const mine = commits.filter((c) => c.source === source)
    if (mine.length === 0 || skipPush) continue
    const pushed = yield* Effect.either(git.push(p.dir, p.branch!))
    if (Either.isLeft(pushed)) {
      const reason = `push to ${p.location._tag === "Git" ? p.location.url : p.dir} was rejected (${pushed.left.message.split("\n").slice(-1)[0]}); ${recoverHint(p.dir, p.branch!)}; the lock was not advanced`
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
      const oidsOf = planned.units.get(unitKey(a.source, a.unit))!.repo?.oids ?? {}
      for (const rel of Object.keys(a.content ?? {})) oids.add(oidsOf[rel]!)
    }
    for (const [oid, bytes] of yield* git.readBlobs(p.dir, [...oids])) blobs.set(oid, bytes)
  }
  yield* Effect.forEach(
    toHome,
    (a) =>
      Effect.gen(function* () {
        const key = unitKey(a.source, a.unit)
        const unit = planned.units.get(key)!
        const result = yield* Effect.either(
          Effect.gen(function* () {
            yield* recheckHome(planned, unit, a, a.tool)
            const bytes = yield* sourceBytes(unit, a, planned.homes, blobs)
            const root = homeRootOf(planned.homes.get(a.tool)!, unit)
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
  const sources: Record<string, LockedSource> = { ...lock.sources }
  for (const p of planned.prepared) {
    const prev = sources[p.source.name]
    sources[p.source.name] = {
      ...(p.commit === undefined ? {} : { commit: p.commit }),
      units: { ...(prev?.units ?? {}) }
    }
  }
  for (const a of actions) {
    if (a.lock === "keep") continue
    const key = unitKey(a.source, a.unit)
    if (failed.has(key) || failed.has(toolKey(a.source, a.unit, a.tool))) continue
    const src = sources[a.source]!
    const units = src.units as Record<string, Record<string, { commit?: string; files: UnitFiles }>>
    const perTool = { ...(units[a.unit] ?? {}) }
    if (a.lock === "drop" || a.content === undefined) delete perTool[a.tool]
    else {
      const commit = deployedCommit.get(key) ?? planned.units.get(key)!.prepared.commit
      perTool[a.tool] = { ...(commit === undefined ? {} : { commit }), files: a.content }
    }
    if (Object.keys(perTool).length === 0) delete units[a.unit]
    else units[a.unit] = perTool
  }
  yield* store.writeLock({ version: 1, sources })
  return { applied, skipped, commits, errors: [...planned.errors, ...pushErrors], backups } satisfies Outcome
})
