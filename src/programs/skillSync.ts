/** SkillSync: units deployed in tool homes reconciled with their git repositories (install, update, status, sync). */
import * as nodePath from "node:path"
import { Config, Data, Effect, Either, Option } from "effect"
import { sha256 } from "../domain/hash.js"
import { checkName, checkRef, defaultSourceName, parseSourceUri, type SourceLocation } from "../domain/skills/guards.js"
import { compileLayout, discoverUnits, type Layout, type UnitLayout, unitFromName, unitNameMatcher } from "../domain/skills/layout.js"
import type { Lock, LockedSource, Manifest, ManifestSource, UnitFiles } from "../domain/skills/model.js"
import { type PlanOptions, type Prefer, planSync, sameSide, type SkillAction, sideHash, summarize, type UnitState, type UnitStatus } from "../domain/skills/planner.js"
import { CommandFailed, Conflict, InvalidInput, type IoError } from "../errors.js"
import { Git } from "../services/Git.js"
import { exists, KNOWN_TOOLS, listTreeFiles, readBytes, removeUnitFile, SkillStore, snapshotHomes, snapshotUnit } from "../services/SkillStore.js"
import { writeFileAtomic } from "../services/Workspace.js"

export interface SyncOptions extends PlanOptions {
  /** A source name, a unit name or glob, or `source:unit`. */
  readonly scope?: string | undefined
  readonly dryRun?: boolean | undefined
  /** Fetch from the remotes first (default true). */
  readonly fetch?: boolean | undefined
  /** Only these tools (default: every tool the manifest names for a unit). */
  readonly tools?: ReadonlyArray<string> | undefined
  /** Asked with the plan before anything is written (a prompt on a terminal); `false` leaves everything as it is. */
  readonly confirm?: ((plan: ReadonlyArray<ActionView>) => Effect.Effect<boolean>) | undefined
}

/** An action as reported: the decision and the fingerprints of the three states it was taken from. */
export interface ActionView {
  readonly source: string
  readonly unit: string
  readonly tool: string
  readonly direction: SkillAction["direction"]
  readonly status: UnitStatus
  readonly reason: string
  readonly home: string
  readonly repo: string
  readonly base: string
}

export interface SyncReport {
  readonly dryRun: boolean
  readonly actions: ReadonlyArray<ActionView>
  readonly summary: ReturnType<typeof summarize>
  /** What was carried out. */
  readonly applied: ReadonlyArray<{ readonly source: string; readonly unit: string; readonly tool: string; readonly direction: string }>
  /** Actions not carried out, and why (the home moved since the plan, a push was rejected, a write failed). */
  readonly skipped: ReadonlyArray<{ readonly source: string; readonly unit: string; readonly tool: string; readonly reason: string }>
  /** Commits made in cache clones, and whether they reached the remote. */
  readonly commits: ReadonlyArray<{ readonly source: string; readonly unit: string; readonly commit: string; readonly pushed: boolean }>
  /** Sources that could not be prepared (clone, fetch, rebase or push failed). */
  readonly errors: ReadonlyArray<{ readonly source: string; readonly reason: string }>
  /** Units the layout could not take. */
  readonly ignored: ReadonlyArray<{ readonly source: string; readonly path: string; readonly reason: string }>
}

export const viewAction = (a: SkillAction): ActionView => {
  // In sync, the three states are equal: one fingerprint serves all three.
  const home = sideHash(a.home)
  return {
    source: a.source,
    unit: a.unit,
    tool: a.tool,
    direction: a.direction,
    status: a.status,
    reason: a.reason,
    home,
    repo: sameSide(a.repo, a.home) ? home : sideHash(a.repo),
    base: sameSide(a.base, a.home) ? home : sideHash(a.base)
  }
}

// ---------------------------------------------------------------------------------------------------------
// The repo side

interface RepoUnit {
  readonly layout: UnitLayout
  /** `undefined` when the unit is absent from the repo. */
  readonly files: UnitFiles | undefined
  /** Blob ids by relative path, for git sources. */
  readonly oids: Readonly<Record<string, string>>
}

interface PreparedSource {
  readonly source: ManifestSource
  readonly location: SourceLocation
  readonly layout: Layout
  /** The folder units are read from and written to: the cache clone, or the local folder. */
  readonly dir: string
  readonly commit: string | undefined
  /** The branch ToRepo commits go to; `undefined` for tags, commits and local folders. */
  readonly branch: string | undefined
  readonly readOnly: boolean
  readonly units: ReadonlyMap<string, RepoUnit>
  readonly ignored: ReadonlyArray<{ readonly path: string; readonly reason: string }>
}

/** The blob-id → SHA-256 memo of a cache clone; a missing or unreadable memo is simply empty. */
const readHashCache = (file: string) =>
  Effect.map(Effect.either(readBytes(file)), (bytes) => {
    if (Either.isLeft(bytes)) return {} as Record<string, unknown>
    try {
      const value: unknown = JSON.parse(new TextDecoder().decode(bytes.right))
      return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {}
    } catch {
      return {}
    }
  })

const recoverHint = (dir: string, ref: string) =>
  `the commits stay in ${dir}; once the remote accepts them, run \`agentsync skill sync\` again (it pushes pending commits first), or push by hand with \`git -C ${dir} push origin ${ref}\``

const prepareSource = Effect.fn("SkillSync.prepareSource")(function* (
  source: ManifestSource,
  options: { readonly dryRun: boolean; readonly fetch: boolean; readonly skipPush: boolean }
) {
  const store = yield* SkillStore
  const git = yield* Git
  const location = yield* parseSourceUri(source.uri)
  yield* checkRef(source.ref)
  const layout = yield* compileLayout(source.target_layout)

  if (location._tag === "Local") {
    if (!(yield* exists(location.path))) {
      return yield* new InvalidInput({ field: "uri", reason: `source ${source.name}: ${location.path} does not exist` })
    }
    const paths = yield* listTreeFiles(location.path)
    const found = discoverUnits(layout, paths)
    const units = new Map<string, RepoUnit>()
    for (const u of found.units) {
      const files: Record<string, string> = {}
      for (const rel of u.files) {
        const abs = rel === "" ? nodePath.join(location.path, u.repoRoot) : nodePath.join(location.path, u.repoRoot, rel)
        files[rel] = sha256(yield* readBytes(abs))
      }
      units.set(u.name, { layout: u, files, oids: {} })
    }
    return {
      source,
      location,
      layout,
      dir: location.path,
      commit: undefined,
      branch: undefined,
      readOnly: source.read_only,
      units,
      ignored: found.skipped
    } satisfies PreparedSource
  }

  const dir = store.cacheDir(source.name)
  if (!(yield* exists(nodePath.join(dir, ".git")))) {
    yield* git.clone(location.url, dir)
  } else if (options.fetch) {
    yield* git.fetch(dir)
  }
  const ref = source.ref
  const remote = yield* git.resolve(dir, `refs/remotes/origin/${ref}`)
  let commit: string
  let branch: string | undefined
  if (Option.isSome(remote)) {
    branch = ref
    const local = yield* git.resolve(dir, `refs/heads/${ref}`)
    let target = remote.value
    let pending = false
    if (Option.isSome(local) && local.value !== remote.value) {
      if (yield* git.isAncestor(dir, local.value, remote.value)) target = remote.value
      else if (yield* git.isAncestor(dir, remote.value, local.value)) {
        target = local.value
        pending = true
      } else if (options.dryRun) {
        target = local.value
      } else {
        // Local commits that were never pushed, and upstream moved: replay ours on top, or stop and say how to recover.
        yield* git.clean(dir)
        yield* git.checkout(dir, ref, local.value)
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
      yield* git.clean(dir)
      yield* git.checkout(dir, ref, target)
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
    commit = target
  } else {
    // A tag or a commit: deployable, never a target for commits.
    const tag = yield* git.resolve(dir, `refs/tags/${ref}`)
    const any = Option.isSome(tag) ? tag : /^[0-9a-f]{7,40}$/.test(ref) ? yield* git.resolve(dir, ref) : Option.none<string>()
    if (Option.isNone(any)) {
      return yield* new InvalidInput({ field: "ref", reason: `source ${source.name}: ${ref} is not a branch, tag or commit of ${location.url}` })
    }
    commit = any.value
    branch = undefined
  }

  const tree = yield* git.listTree(dir, commit)
  const oidOf = new Map(tree.map((e) => [e.path, e.oid]))
  const found = discoverUnits(
    layout,
    tree.map((e) => e.path)
  )
  const wanted = new Set<string>()
  for (const u of found.units) for (const rel of u.files) wanted.add(oidOf.get(rel === "" ? u.repoRoot : `${u.repoRoot}/${rel}`)!)
  // Blob ids name contents, so their SHA-256 never changes: remembered beside the clone, only new blobs are read.
  const hashFile = nodePath.join(dir, ".git", "agentsync-sha256.json")
  const known = yield* readHashCache(hashFile)
  const hashOf = new Map<string, string>()
  const unknown: Array<string> = []
  for (const oid of wanted) {
    const h = known[oid]
    if (typeof h === "string" && /^[0-9a-f]{64}$/.test(h)) hashOf.set(oid, h)
    else unknown.push(oid)
  }
  for (const [oid, bytes] of yield* git.readBlobs(dir, unknown)) hashOf.set(oid, sha256(bytes))
  if (!options.dryRun && (unknown.length > 0 || Object.keys(known).length !== hashOf.size)) {
    yield* writeFileAtomic(hashFile, JSON.stringify(Object.fromEntries(hashOf)))
  }
  const units = new Map<string, RepoUnit>()
  for (const u of found.units) {
    const files: Record<string, string> = {}
    const oids: Record<string, string> = {}
    for (const rel of u.files) {
      const oid = oidOf.get(rel === "" ? u.repoRoot : `${u.repoRoot}/${rel}`)!
      oids[rel] = oid
      files[rel] = hashOf.get(oid)!
    }
    units.set(u.name, { layout: u, files, oids })
  }
  return {
    source,
    location,
    layout,
    dir,
    commit,
    branch,
    readOnly: source.read_only || branch === undefined,
    units,
    ignored: found.skipped
  } satisfies PreparedSource
})

// ---------------------------------------------------------------------------------------------------------
// Planning

interface PlannedUnit {
  readonly prepared: PreparedSource
  readonly layout: UnitLayout
  readonly repo: RepoUnit | undefined
}

interface Scope {
  readonly source: (name: string) => boolean
  readonly unit: (name: string) => boolean
}

const parseScope = (manifest: Manifest, scope: string | undefined): Scope => {
  if (scope === undefined || scope === "") return { source: () => true, unit: () => true }
  if (manifest.sources.some((s) => s.name === scope)) return { source: (n) => n === scope, unit: () => true }
  const colon = scope.indexOf(":")
  if (colon > 0) {
    const src = scope.slice(0, colon)
    const unit = unitNameMatcher(scope.slice(colon + 1))
    return { source: (n) => n === src, unit }
  }
  return { source: () => true, unit: unitNameMatcher(scope) }
}

interface Planned {
  readonly prepared: ReadonlyArray<PreparedSource>
  readonly errors: ReadonlyArray<{ readonly source: string; readonly reason: string }>
  readonly units: ReadonlyMap<string, PlannedUnit>
  readonly states: ReadonlyArray<UnitState>
  readonly homes: ReadonlyMap<string, string>
}

const unitKey = (source: string, unit: string) => `${source}\u0000${unit}`

const buildStates = Effect.fn("SkillSync.buildStates")(function* (
  manifest: Manifest,
  lock: Lock,
  options: SyncOptions & { readonly skipPush: boolean }
) {
  const store = yield* SkillStore
  const scope = parseScope(manifest, options.scope)
  if (options.scope !== undefined && options.scope !== "" && !manifest.sources.some((s) => scope.source(s.name))) {
    return yield* new InvalidInput({ field: "scope", reason: `no source named ${JSON.stringify(options.scope.split(":")[0])}` })
  }
  const prepared: Array<PreparedSource> = []
  const errors: Array<{ source: string; reason: string }> = []
  for (const source of manifest.sources) {
    if (!source.enabled || !scope.source(source.name)) continue
    const result = yield* Effect.either(
      prepareSource(source, { dryRun: options.dryRun === true, fetch: options.fetch !== false, skipPush: options.skipPush })
    )
    if (Either.isLeft(result)) {
      // A bad source stops only itself; a hostile value in the manifest is still refused before any git call.
      errors.push({ source: source.name, reason: result.left.message })
    } else prepared.push(result.right)
  }

  const homes = new Map<string, string>()
  const homeOf = (tool: string) =>
    Effect.gen(function* () {
      const known = homes.get(tool)
      if (known !== undefined) return known
      const home = yield* store.toolHome(tool)
      homes.set(tool, home)
      return home
    })

  const units = new Map<string, PlannedUnit>()
  const pending: Array<{ key: string; source: PreparedSource; layout: UnitLayout; tools: ReadonlyArray<string> }> = []
  for (const p of prepared) {
    const selections = manifest.units.filter((u) => u.source === p.source.name).map((u) => ({ match: unitNameMatcher(u.name), name: u.name, tools: u.tools }))
    const toolsFor = (name: string) => {
      const tools = new Set<string>()
      for (const s of selections) if (s.match(name)) for (const t of s.tools) if (options.tools === undefined || options.tools.includes(t)) tools.add(t)
      return [...tools].sort()
    }
    const candidates = new Map<string, UnitLayout>()
    for (const [name, u] of p.units) candidates.set(name, u.layout)
    // Units the lock remembers (deleted upstream) and units named in the manifest that exist only in a home.
    const lockedUnits = lock.sources[p.source.name]?.units ?? {}
    const named = selections.filter((s) => !/[*?]/.test(s.name)).map((s) => s.name)
    for (const name of [...Object.keys(lockedUnits), ...named]) {
      if (candidates.has(name)) continue
      const layout = unitFromName(p.layout, name)
      if (layout !== undefined) candidates.set(name, layout)
    }
    for (const [name, layout] of candidates) {
      if (!scope.unit(name)) continue
      const tools = toolsFor(name)
      if (tools.length === 0) continue
      const key = unitKey(p.source.name, name)
      units.set(key, { prepared: p, layout, repo: p.units.get(name) })
      pending.push({ key, source: p, layout, tools })
    }
  }

  for (const item of pending) for (const tool of item.tools) yield* homeOf(tool)
  // One pass over every unit and tool: the snapshots are synchronous reads, a fiber each would only add overhead.
  const states = yield* snapshotHomes(
    pending.map((item) => {
      const lockedUnit = lock.sources[item.source.source.name]?.units[item.layout.name] ?? {}
      return {
        source: item.source.source.name,
        unit: item.layout.name,
        readOnly: item.source.readOnly,
        repo: units.get(item.key)!.repo?.files,
        layout: item.layout,
        tools: item.tools.map((tool) => ({ tool, base: lockedUnit[tool]?.files, home: homes.get(tool)! }))
      }
    })
  )
  return { prepared, errors, units, states, homes } satisfies Planned
})

// ---------------------------------------------------------------------------------------------------------
// Executors

const homePath = (home: string, layout: UnitLayout, rel: string) =>
  rel === "" ? nodePath.join(home, layout.homeRoot) : nodePath.join(home, layout.homeRoot, ...rel.split("/"))

const repoPath = (dir: string, layout: UnitLayout, rel: string) =>
  rel === "" ? nodePath.join(dir, layout.repoRoot) : nodePath.join(dir, layout.repoRoot, ...rel.split("/"))

const sameFiles = (a: UnitFiles | undefined, b: UnitFiles | undefined) => sideHash(a) === sideHash(b)

/** An action left out at apply time (its side moved since the plan); internal, reported in `skipped`. */
class Skip extends Data.TaggedError("Skip")<{ readonly reason: string }> {}

/** Reads the bytes an action writes, verifying each against the hash the plan saw. */
const sourceBytes = (
  planned: PlannedUnit,
  action: SkillAction,
  homes: ReadonlyMap<string, string>,
  prefetched: ReadonlyMap<string, Uint8Array> = new Map()
): Effect.Effect<ReadonlyMap<string, Uint8Array>, Skip | IoError | CommandFailed, Git> =>
  Effect.gen(function* () {
    const content = action.content ?? {}
    const rels = Object.keys(content)
    const out = new Map<string, Uint8Array>()
    if (rels.length === 0) return out
    const fromTool = action.direction === "ToRepo" ? action.tool : action.from === "repo" ? undefined : action.from.tool
    if (fromTool !== undefined) {
      const home = homes.get(fromTool)!
      for (const rel of rels) {
        const bytes = yield* readBytes(homePath(home, planned.layout, rel)).pipe(Effect.mapError(() => new Skip({ reason: `the home of ${fromTool} changed since the plan` })))
        out.set(rel, bytes)
      }
    } else if (planned.prepared.location._tag === "Local") {
      for (const rel of rels) out.set(rel, yield* readBytes(repoPath(planned.prepared.dir, planned.layout, rel)))
    } else {
      const git = yield* Git
      const oids = planned.repo?.oids ?? {}
      const missing = rels.filter((r) => !prefetched.has(oids[r]!))
      const blobs = missing.length === 0 ? prefetched : yield* git.readBlobs(planned.prepared.dir, missing.map((r) => oids[r]!))
      for (const rel of rels) out.set(rel, prefetched.get(oids[rel]!) ?? blobs.get(oids[rel]!)!)
    }
    for (const rel of rels) {
      if (sha256(out.get(rel)!) !== content[rel]) return yield* new Skip({ reason: `${rel === "" ? planned.layout.homeRoot : rel} changed since the plan` })
    }
    return out
  })

/** Makes the unit under `root` exactly `content`: writes each file through temp + rename, removes the ones not in it. */
const writeUnit = (
  write: (rel: string) => string,
  stopAt: string,
  previous: UnitFiles | undefined,
  bytes: ReadonlyMap<string, Uint8Array>,
  content: UnitFiles | undefined
) =>
  Effect.gen(function* () {
    for (const [rel, b] of bytes) {
      if (previous?.[rel] === content?.[rel]) continue
      yield* writeFileAtomic(write(rel), b)
    }
    for (const rel of Object.keys(previous ?? {})) {
      if (content?.[rel] === undefined) yield* removeUnitFile(write(rel), stopAt)
    }
  })

const skipPushConfig = Config.boolean("AGENTSYNC_SKIP_PUSH").pipe(Config.withDefault(false))

/** Plans, prints nothing, and (unless dry-run) applies. Conflicts are in the report; the caller decides the exit. */
export const sync = Effect.fn("SkillSync.sync")(function* (options: SyncOptions = {}, manifestOverride?: Manifest) {
  const store = yield* SkillStore
  const run = Effect.gen(function* () {
    const manifest = manifestOverride ?? (yield* store.readManifest())
    const lock = yield* store.readLock()
    const skipPush = yield* skipPushConfig
    const planned = yield* buildStates(manifest, lock, { ...options, skipPush })
    const actions = planSync(planned.states, options)
    const ignored = planned.prepared.flatMap((p) => p.ignored.map((i) => ({ source: p.source.name, ...i })))
    const base = { actions: actions.map(viewAction), summary: summarize(actions), errors: planned.errors, ignored }
    if (options.dryRun) return { ...base, dryRun: true, applied: [], skipped: [], commits: [] } satisfies SyncReport
    const writes = base.actions.filter((a) => a.direction === "ToHome" || a.direction === "ToRepo")
    if (writes.length > 0 && options.confirm !== undefined && !(yield* options.confirm(base.actions))) {
      return { ...base, dryRun: true, applied: [], skipped: [], commits: [] } satisfies SyncReport
    }
    const outcome = yield* apply(planned, actions, lock, skipPush)
    return { ...base, dryRun: false, ...outcome } satisfies SyncReport
  })
  return yield* store.withLock(run)
})

const apply = Effect.fn("SkillSync.apply")(function* (planned: Planned, actions: ReadonlyArray<SkillAction>, lock: Lock, skipPush: boolean) {
  const store = yield* SkillStore
  const git = yield* Git
  const applied: Array<SyncReport["applied"][number]> = []
  const skipped: Array<SyncReport["skipped"][number]> = []
  const commits: Array<{ source: string; unit: string; commit: string; pushed: boolean }> = []
  /** Units whose edit did not reach the repo: nothing of theirs advances. */
  const failed = new Set<string>()
  const deployedCommit = new Map<string, string | undefined>()

  // 1. ToRepo: one commit per unit, then one push per source.
  const byUnit = new Map<string, SkillAction>()
  for (const a of actions) if (a.direction === "ToRepo" && !byUnit.has(unitKey(a.source, a.unit))) byUnit.set(unitKey(a.source, a.unit), a)
  const unitsBySource = new Map<string, Array<string>>()
  for (const [key, a] of byUnit) {
    const planned1 = planned.units.get(key)!
    const p = planned1.prepared
    const result = yield* Effect.either(
      Effect.gen(function* () {
        const home = planned.homes.get(a.tool)!
        const now = yield* snapshotUnit(nodePath.join(home, planned1.layout.homeRoot), planned1.layout.folder)
        if (!sameFiles(now, a.home)) return yield* new Skip({ reason: `the home of ${a.tool} changed since the plan` })
        const bytes = yield* sourceBytes(planned1, a, planned.homes)
        const root = nodePath.join(p.dir, planned1.layout.repoRoot)
        yield* writeUnit((rel) => repoPath(p.dir, planned1.layout, rel), root, a.repo, bytes, a.content)
        if (p.location._tag === "Git") {
          yield* git.add(p.dir, [planned1.layout.repoRoot])
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
      const reason = result.left instanceof Skip ? result.left.reason : result.left.message
      for (const b of actions) if (unitKey(b.source, b.unit) === key && b.direction !== "NoOp" && b.direction !== "Conflict") skipped.push({ source: b.source, unit: b.unit, tool: b.tool, reason })
      if (p.location._tag === "Git") yield* Effect.ignore(git.clean(p.dir))
    }
  }
  const pushErrors: Array<{ source: string; reason: string }> = []
  for (const [source, keys] of unitsBySource) {
    const p = planned.prepared.find((x) => x.source.name === source)!
    const mine = commits.filter((c) => c.source === source)
    if (mine.length === 0) continue
    if (skipPush) continue
    const pushed = yield* Effect.either(git.push(p.dir, p.branch!))
    if (Either.isLeft(pushed)) {
      const reason = `push to ${p.location._tag === "Git" ? p.location.url : p.dir} was rejected (${pushed.left.message.split("\n").slice(-1)[0]}); ${recoverHint(p.dir, p.branch!)}; the lock was not advanced`
      pushErrors.push({ source, reason })
      for (const key of keys) {
        failed.add(key)
        for (const b of actions) if (unitKey(b.source, b.unit) === key && b.direction !== "NoOp" && b.direction !== "Conflict") skipped.push({ source: b.source, unit: b.unit, tool: b.tool, reason: "push rejected" })
      }
    } else for (const c of mine) c.pushed = true
  }
  for (const a of byUnit.values()) {
    if (!failed.has(unitKey(a.source, a.unit))) {
      for (const b of actions) if (b.direction === "ToRepo" && b.source === a.source && b.unit === a.unit) applied.push({ source: b.source, unit: b.unit, tool: b.tool, direction: b.direction })
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
        const planned1 = planned.units.get(key)!
        const result = yield* Effect.either(
          Effect.gen(function* () {
            const home = planned.homes.get(a.tool)!
            const root = nodePath.join(home, planned1.layout.homeRoot)
            const now = yield* snapshotUnit(root, planned1.layout.folder)
            if (!sameFiles(now, a.home)) return yield* new Skip({ reason: `the home of ${a.tool} changed since the plan` })
            const bytes = yield* sourceBytes(planned1, a, planned.homes, blobs)
            yield* writeUnit((rel) => homePath(home, planned1.layout, rel), planned1.layout.folder ? root : nodePath.dirname(root), a.home, bytes, a.content)
          })
        )
        if (Either.isLeft(result)) {
          skipped.push({ source: a.source, unit: a.unit, tool: a.tool, reason: result.left instanceof Skip ? result.left.reason : result.left.message })
          failed.add(`${key}\u0000${a.tool}`)
        } else applied.push({ source: a.source, unit: a.unit, tool: a.tool, direction: a.direction })
      }),
    { concurrency: 16, discard: true }
  )

  // 3. The lock: only what succeeded advances.
  const sources: Record<string, LockedSource> = { ...lock.sources }
  for (const p of planned.prepared) {
    const prev = sources[p.source.name]
    sources[p.source.name] = { ...(p.commit === undefined ? {} : { commit: p.commit }), units: { ...(prev?.units ?? {}) } }
  }
  for (const a of actions) {
    if (a.lock === "keep") continue
    const key = unitKey(a.source, a.unit)
    if (failed.has(key) || failed.has(`${key}\u0000${a.tool}`)) continue
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
  const next: Lock = { version: 1, sources }
  yield* store.writeLock(next)
  return { applied, skipped, commits, errors: [...planned.errors, ...pushErrors] }
})

/** The conflicts of a report as the error the CLI exits 3 with, naming both sides' hashes. */
export const conflictOf = (report: SyncReport): Option.Option<Conflict> => {
  const conflicts = report.actions.filter((a) => a.direction === "Conflict")
  if (conflicts.length === 0) return Option.none()
  return Option.some(
    new Conflict({
      reason: `${conflicts.length} unit${conflicts.length === 1 ? "" : "s"} changed on both sides; nothing was written for ${conflicts.length === 1 ? "it" : "them"}. Re-run with --prefer home or --prefer repo`,
      items: conflicts.map((c) => `${c.source}:${c.unit} [${c.tool}]: home ${c.home}, repo ${c.repo}, base ${c.base}: ${c.reason}`)
    })
  )
}

// ---------------------------------------------------------------------------------------------------------
// Status

export interface StatusRow {
  readonly source: string
  readonly unit: string
  readonly tool: string
  /** in sync, home changed, repo changed, conflict, behind upstream, and the deletion and adoption cases. */
  readonly state: string
  readonly reason: string
}

export const status = Effect.fn("SkillSync.status")(function* (
  options: { readonly scope?: string | undefined; readonly fetch?: boolean | undefined; readonly tools?: ReadonlyArray<string> | undefined } = {}
) {
  const store = yield* SkillStore
  const manifest = yield* store.readManifest()
  const lock = yield* store.readLock()
  const planned = yield* buildStates(manifest, lock, { scope: options.scope, dryRun: true, fetch: options.fetch, tools: options.tools, skipPush: true })
  const actions = planSync(planned.states, {})
  const commitOf = new Map(planned.prepared.map((p) => [p.source.name, p.commit]))
  const rows: Array<StatusRow> = actions.map((a) => {
    const lockCommit = lock.sources[a.source]?.commit
    const upstreamMoved = commitOf.get(a.source) !== undefined && lockCommit !== undefined && lockCommit !== commitOf.get(a.source)
    const state =
      a.direction === "Conflict"
        ? "conflict"
        : a.direction === "ToHome"
          ? a.from !== "repo"
            ? `changed in the ${a.from.tool} home`
            : upstreamMoved
              ? "behind upstream"
              : a.status === "new-in-repo" || a.status === "deleted-in-repo" ? a.status.replace(/-/g, " ") : "repo changed"
          : a.direction === "ToRepo"
            ? a.status === "new-in-home" || a.status === "deleted-in-home" ? a.status.replace(/-/g, " ") : "home changed"
            : a.status === "in-sync" ? "in sync" : a.status.replace(/-/g, " ")
    return { source: a.source, unit: a.unit, tool: a.tool, state, reason: a.reason }
  })
  return { rows, errors: planned.errors }
})

// ---------------------------------------------------------------------------------------------------------
// Sources and install

export interface SourceInput {
  readonly uri: string
  readonly name?: string | undefined
  readonly ref?: string | undefined
  readonly readOnly?: boolean | undefined
}

/** Makes a user's URI absolute (`git:./repo`, `local:../x`) and checks it, before it reaches the manifest or git. */
export const normalizeUri = (uri: string, cwd = process.cwd()): Either.Either<string, InvalidInput> => {
  const m = /^(git|local):(.*)$/s.exec(uri)
  let out = uri
  if (m && !m[2]!.startsWith("-") && !/^[a-z][a-z0-9+.-]*:\/\//i.test(m[2]!) && !/^[^/]+@[^/]+:/.test(m[2]!) && !m[2]!.startsWith("/") && m[2] !== "") {
    // A relative path is resolved here, so a stored URI means one place; `..` is refused before resolving.
    if (m[2]!.split(/[\\/]/).includes("..")) return Either.left(new InvalidInput({ field: "uri", reason: `${JSON.stringify(uri)} refused: contains '..'` }))
    out = `${m[1]}:${nodePath.resolve(cwd, m[2]!)}`
  }
  return Either.map(parseSourceUri(out), () => out)
}

export const addSource = Effect.fn("SkillSync.addSource")(function* (input: SourceInput) {
  const store = yield* SkillStore
  const uri = yield* normalizeUri(input.uri)
  const name = yield* checkName("source", input.name ?? defaultSourceName(uri))
  const ref = yield* checkRef(input.ref ?? "main")
  return yield* store.withLock(
    Effect.gen(function* () {
      const manifest = yield* store.readManifest()
      const same = manifest.sources.find((s) => s.name === name)
      if (same !== undefined && same.uri !== uri) {
        return yield* new InvalidInput({ field: "name", reason: `a source named ${name} already exists (${same.uri}); pick another --name` })
      }
      const source: ManifestSource = same ?? { name, uri, ref, enabled: true, read_only: input.readOnly === true, target_layout: [] }
      if (same === undefined) yield* store.writeManifest({ ...manifest, sources: [...manifest.sources, source] })
      return { source, added: same === undefined }
    })
  )
})

export const listSources = Effect.fn("SkillSync.listSources")(function* () {
  const store = yield* SkillStore
  const manifest = yield* store.readManifest()
  const lock = yield* store.readLock()
  return manifest.sources.map((s) => ({
    ...s,
    commit: lock.sources[s.name]?.commit,
    units: Object.keys(lock.sources[s.name]?.units ?? {}).length,
    tools: [...new Set(manifest.units.filter((u) => u.source === s.name).flatMap((u) => u.tools))].sort()
  }))
})

/** Forgets a source: its manifest entry, its unit selections and its lock entries. Deployed files stay where they are. */
export const removeSource = Effect.fn("SkillSync.removeSource")(function* (name: string) {
  const store = yield* SkillStore
  yield* checkName("source", name)
  return yield* store.withLock(
    Effect.gen(function* () {
      const manifest = yield* store.readManifest()
      const lock = yield* store.readLock()
      if (!manifest.sources.some((s) => s.name === name)) return yield* new InvalidInput({ field: "source", reason: `no source named ${name}` })
      yield* store.writeManifest({
        ...manifest,
        sources: manifest.sources.filter((s) => s.name !== name),
        units: manifest.units.filter((u) => u.source !== name)
      })
      const { [name]: _, ...rest } = lock.sources
      yield* store.writeLock({ ...lock, sources: rest })
      return { removed: name, cache: store.cacheDir(name) }
    })
  )
})

/** The tools to deploy to when none are named: those whose home exists, else claude. */
export const defaultTools = Effect.fn("SkillSync.defaultTools")(function* () {
  const store = yield* SkillStore
  const present: Array<string> = []
  for (const tool of KNOWN_TOOLS) if (yield* exists(yield* store.toolHome(tool))) present.push(tool)
  return present.length > 0 ? present : ["claude"]
})

export interface InstallInput extends SourceInput {
  readonly tools?: ReadonlyArray<string> | undefined
  /** Which units: a unit name or glob (default every unit). */
  readonly units?: string | undefined
}

/**
 * Installs a source (a URI, or the name of a source already added) for some tools: records it, then deploys
 * repo → home. A home that already holds a different copy is a conflict, never overwritten.
 */
export const install = Effect.fn("SkillSync.install")(function* (input: InstallInput) {
  const store = yield* SkillStore
  const manifest = yield* store.readManifest()
  const byName = manifest.sources.find((s) => s.name === input.uri)
  const uri = byName?.uri ?? (yield* normalizeUri(input.uri))
  const name = yield* checkName("source", input.name ?? byName?.name ?? manifest.sources.find((s) => s.uri === uri)?.name ?? defaultSourceName(uri))
  const ref = yield* checkRef(input.ref ?? byName?.ref ?? "main")
  const tools = input.tools !== undefined && input.tools.length > 0 ? input.tools : yield* defaultTools()
  for (const t of tools) yield* checkName("tool", t)
  const existing = manifest.sources.find((s) => s.name === name)
  if (existing !== undefined && existing.uri !== uri) {
    return yield* new InvalidInput({ field: "name", reason: `a source named ${name} already exists (${existing.uri}); pick another --name` })
  }
  const source: ManifestSource = existing ?? { name, uri, ref, enabled: true, read_only: input.readOnly === true, target_layout: [] }
  const unitName = input.units ?? "**"
  const selection = manifest.units.find((u) => u.source === name && u.name === unitName)
  const units = selection === undefined
    ? [...manifest.units, { source: name, name: unitName, tools: [...tools].sort() }]
    : manifest.units.map((u) => (u === selection ? { ...u, tools: [...new Set([...u.tools, ...tools])].sort() } : u))
  const next: Manifest = { ...manifest, sources: existing === undefined ? [...manifest.sources, source] : manifest.sources, units }
  const report = yield* sync({ scope: name, toHome: true }, next)
  const failed = report.errors.find((e) => e.source === name)
  if (failed !== undefined) {
    // The source could not even be read: do not record it.
    return yield* new InvalidInput({ field: "uri", reason: `cannot install ${input.uri}: ${failed.reason}` })
  }
  yield* store.withLock(store.writeManifest(next))
  return { source, tools, report }
})

/** Fetches every source and deploys what changed upstream (repo → home only; home edits are kept and reported). */
export const update = (options: { readonly scope?: string | undefined; readonly dryRun?: boolean | undefined } = {}) =>
  sync({ ...options, toHome: true })

export type { Prefer }
