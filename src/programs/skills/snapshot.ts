/** The states a plan is made of: which units of which sources go to which tools, their home copies read and filtered (ignored, excluded, links leading out), and the refusals that stop a run (the overlap check itself is overlaps.ts). */
import * as nodePath from "node:path"
import { Array as Arr, Effect, Either } from "effect"
import { homeScanPlan, isWithheldHome, unitFromName, unitsFromHome } from "../../domain/skills/discover.js"
import { isExcluded, memberPath, type UnitLayout } from "../../domain/skills/layout.js"
import type { Lock, Manifest, UnitFiles } from "../../domain/skills/model.js"
import type { UnitState } from "../../domain/skills/planner.js"
import { unitNameMatcher } from "../../domain/skills/templates.js"
import { InvalidInput } from "../../errors.js"
import { phase } from "../../services/Progress.js"
import { SkillStore } from "../../services/SkillStore.js"
import { UnitDisk, type UnitSnapshot } from "../../services/UnitDisk.js"
import { type Holder, overlapsOf, withheldHolders } from "./overlaps.js"
import type { WithheldUnit } from "./report.js"
import { type PreparedSource, prepareSource, type RepoUnit } from "./sources.js"

export interface PlannedUnit {
  readonly prepared: PreparedSource
  readonly layout: UnitLayout
  readonly repo: RepoUnit | undefined
}

export interface BuildOptions {
  /** A source name, a unit name or glob, or `source:unit`. */
  readonly scope?: string | undefined
  readonly dryRun?: boolean | undefined
  /** Fetch from the remotes first (default true). */
  readonly fetch?: boolean | undefined
  /** Only these tools (default: every tool the manifest names for a unit). */
  readonly tools?: ReadonlyArray<string> | undefined
  readonly skipPush: boolean
}

export interface Finding {
  readonly source: string
  readonly path: string
  readonly reason: string
}

export interface Planned {
  readonly prepared: ReadonlyArray<PreparedSource>
  readonly errors: ReadonlyArray<{ readonly source: string; readonly reason: string }>
  readonly units: ReadonlyMap<string, PlannedUnit>
  readonly states: ReadonlyArray<UnitState>
  readonly homes: ReadonlyMap<string, string>
  /** Repo and home files left out of units, and why. */
  readonly ignored: ReadonlyArray<Finding>
  readonly notes: ReadonlyArray<{ readonly source: string; readonly note: string }>
  /**
   * Units a detected layout maps to one home path (the repo roots named): left out of the plan, so nothing under
   * that home path in any tool home, nor in the repo, is written or removed, and the lock keeps their entries.
   */
  readonly withheld: ReadonlyArray<WithheldUnit>
  /** Two sources that would write one home path: the run is refused before any write. */
  readonly overlaps: ReadonlyArray<{ readonly source: string; readonly reason: string }>
  /** Per unit and tool: the home files the plan left out (ignored, excluded); a re-check before writing leaves them out too. */
  readonly dropped: ReadonlyMap<string, ReadonlySet<string>>
  /** Temp files and staging folders of interrupted runs, removed before a real run writes. */
  readonly temps: ReadonlyArray<string>
}

export const unitKey = (source: string, unit: string) => `${source}\u0000${unit}`
export const toolKey = (source: string, unit: string, tool: string) => `${source}\u0000${unit}\u0000${tool}`

/** A home copy without the files the plan leaves out. */
export const keep = (files: UnitFiles | undefined, dropped: ReadonlySet<string> | undefined): UnitFiles | undefined => {
  if (files === undefined || dropped === undefined || dropped.size === 0) return files
  const out: Record<string, string> = {}
  let any = false
  for (const [k, digest] of Object.entries(files)) {
    if (dropped.has(k)) continue
    out[k] = digest
    any = true
  }
  return any ? out : undefined
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

/** A source of this run with the manifest's selections of its units, and the units it may take (filled in steps). */
interface Candidate {
  readonly p: PreparedSource
  readonly selections: ReadonlyArray<{
    readonly match: (name: string) => boolean
    readonly name: string
    readonly tools: ReadonlyArray<string>
  }>
  readonly units: Map<string, UnitLayout>
}

export const buildStates = Effect.fn("SkillSync.buildStates")(function* (
  manifest: Manifest,
  lock: Lock,
  options: BuildOptions
) {
  const store = yield* SkillStore
  const disk = yield* UnitDisk
  const scope = parseScope(manifest, options.scope)
  if (options.scope !== undefined && options.scope !== "" && !manifest.sources.some((s) => scope.source(s.name))) {
    return yield* new InvalidInput({
      field: "scope",
      reason: `no source named ${JSON.stringify(options.scope.split(":")[0])}`
    })
  }
  const prepared: Array<PreparedSource> = []
  const errors: Array<{ source: string; reason: string }> = []
  for (const source of manifest.sources) {
    if (!source.enabled || !scope.source(source.name)) continue
    const result = yield* Effect.either(
      phase(
        `${options.fetch !== false ? "fetching" : "reading"} ${source.name}`,
        prepareSource(source, {
          dryRun: options.dryRun === true,
          fetch: options.fetch !== false,
          skipPush: options.skipPush
        })
      )
    )
    // A bad source stops only itself.
    if (Either.isLeft(result)) errors.push({ source: source.name, reason: result.left.message })
    else prepared.push(result.right)
  }

  const homes = new Map<string, string>()
  const homeOf = (tool: string) => {
    const known = homes.get(tool)
    return known !== undefined
      ? Effect.succeed(known)
      : Effect.tap(store.toolHome(tool), (home) => {
          homes.set(tool, home)
        })
  }

  // 1. Units of each source: in the repo, remembered by the lock, named in the manifest.
  const toolsFor = (c: Candidate, name: string) => {
    const tools = new Set<string>()
    for (const s of c.selections)
      if (s.match(name))
        for (const t of s.tools) if (options.tools === undefined || options.tools.includes(t)) tools.add(t)
    return [...tools].sort()
  }
  const candidates = prepared.map((p): Candidate => {
    const selections = manifest.units
      .filter((u) => u.source === p.source.name)
      .map((u) => ({ match: unitNameMatcher(u.name), name: u.name, tools: u.tools }))
    const mine = new Map<string, UnitLayout>()
    for (const [name, u] of p.units) mine.set(name, u.layout)
    const lockedUnits = lock.sources[p.source.name]?.units ?? {}
    const named = selections.filter((s) => !/[*?]/.test(s.name)).map((s) => s.name)
    for (const name of [...Object.keys(lockedUnits), ...named]) {
      if (mine.has(name)) continue
      const layout = unitFromName(p.layout, name)
      // A withheld unit is neither deleted in the repo nor new: its lock entry stays as it is.
      if (layout !== undefined && !isWithheldHome(p.withheld, layout.homeRoot, name)) mine.set(name, layout)
    }
    return { p, selections, units: mine }
  })

  // 2. Units that exist only in a home, where a layout would map them: claimed by the one source that can take them.
  const temps: Array<string> = []
  const notes: Array<{ source: string; note: string }> = []
  type Claim = { readonly c: Candidate; readonly layout: UnitLayout }
  const claims = new Map<string, [Claim, ...Array<Claim>]>()
  const known = new Set<string>()
  for (const c of candidates) for (const u of c.units.values()) known.add(u.homeRoot)
  for (const c of candidates) for (const w of c.p.withheld) for (const u of w.units) known.add(u.homeRoot)
  // Units another source deployed are not new, even when that source is outside this run's scope.
  const owned = new Set<string>()
  for (const [source, locked] of Object.entries(lock.sources)) {
    if (manifest.sources.some((x) => x.name === source)) for (const unit of Object.keys(locked.units)) owned.add(unit)
  }
  for (const c of candidates) {
    const p = c.p
    const tools = new Set(
      c.selections.flatMap((s) => s.tools).filter((t) => options.tools === undefined || options.tools.includes(t))
    )
    const plan = homeScanPlan(p.layout)
    for (const tool of tools) {
      const home = yield* homeOf(tool)
      const paths: Array<string> = []
      for (const { dir, depth } of plan) {
        const scanned = yield* disk.scanHome(home, dir, depth, (rel) => known.has(rel))
        paths.push(...scanned.paths)
        temps.push(...scanned.temps)
      }
      for (const u of unitsFromHome(p.layout, paths)) {
        if (
          c.units.has(u.name) ||
          owned.has(u.name) ||
          isWithheldHome(p.withheld, u.homeRoot, u.name) ||
          !scope.unit(u.name) ||
          !toolsFor(c, u.name).includes(tool)
        )
          continue
        const list = claims.get(u.homeRoot)
        if (list === undefined) claims.set(u.homeRoot, [{ c, layout: u }])
        else if (!list.some((x) => x.c === c)) list.push({ c, layout: u })
      }
    }
  }
  for (const [homeRoot, list] of claims) {
    const [first] = list
    if (list.length === 1) first.c.units.set(first.layout.name, first.layout)
    else {
      for (const { c, layout } of list) {
        notes.push({
          source: c.p.source.name,
          note: `${homeRoot} is new in a home and ${list.map((x) => x.c.p.source.name).join(" and ")} could each take it; name it with \`agentsync skill install ${c.p.source.name} --units ${layout.name}\``
        })
      }
    }
  }

  // 3. What each tool gets; two sources writing one home path refuse the run.
  const units = new Map<string, PlannedUnit>()
  const pending: Array<Holder> = []
  for (const c of candidates) {
    const p = c.p
    for (const [name, layout] of c.units) {
      if (!scope.unit(name)) continue
      const tools = toolsFor(c, name)
      if (tools.length === 0) continue
      const key = unitKey(p.source.name, name)
      const repo = p.units.get(name)
      units.set(key, { prepared: p, layout, repo })
      pending.push({ key, source: p, layout, repo, tools })
    }
  }
  // A withheld unit still holds its home path: another source mapping there is an overlap, as if it were planned.
  const { withheld, holders } = withheldHolders(
    candidates,
    (c, name) => (scope.unit(name) ? toolsFor(c, name) : []),
    unitKey
  )
  const overlaps = overlapsOf([...holders, ...pending], lock, manifest, prepared)

  // 4. Home copies, read in one pass (thousands of small reads; a fiber each would only add overhead): links that
  // lead out, ignored and excluded files are left out, and never touched.
  const ignored: Array<Finding> = prepared.flatMap((p) => p.ignored.map((i) => ({ source: p.source.name, ...i })))
  interface Read {
    readonly item: Holder
    readonly tool: string
    readonly abs: string
    readonly snap: UnitSnapshot
    /** Home files the repo unit lacks: excluded by the layout, or to be asked whether the repository ignores them. */
    readonly excluded: ReadonlyArray<string>
    readonly extra: ReadonlyArray<string>
  }
  const roots: Array<{
    readonly item: Holder
    readonly tool: string
    readonly abs: string
    readonly folder: boolean
  }> = []
  for (const item of pending) {
    for (const tool of item.tools)
      roots.push({
        item,
        tool,
        abs: nodePath.join(yield* homeOf(tool), item.layout.homeRoot),
        folder: item.layout.folder
      })
  }
  const read = yield* disk.snapshots(roots)
  if (read.units.length !== roots.length)
    return yield* Effect.dieMessage(`${read.units.length} home snapshots for ${roots.length} unit roots`)
  const reads = Arr.zipWith(roots, read.units, ({ item, tool, abs }, snap): Read => {
    const repoFiles = item.repo?.files ?? {}
    const excluded: Array<string> = []
    const extra: Array<string> = []
    for (const rel in snap.files) {
      if (repoFiles[rel] !== undefined) continue
      if (isExcluded(item.source.layout, item.layout, rel)) excluded.push(rel)
      else extra.push(rel)
    }
    return { item, tool, abs, snap, excluded, extra }
  })
  const repoPathOf = (item: Holder, rel: string) => memberPath(item.layout.repoRoot, rel)
  const asked = new Map<PreparedSource, Set<string>>()
  for (const r of reads) {
    temps.push(...r.snap.temps)
    if (r.extra.length === 0) continue
    const set = asked.get(r.item.source) ?? new Set<string>()
    for (const rel of r.extra) set.add(repoPathOf(r.item, rel))
    asked.set(r.item.source, set)
  }
  const ignoredBy = new Map<PreparedSource, ReadonlySet<string>>()
  for (const [p, paths] of asked) ignoredBy.set(p, yield* p.ignores([...paths]))

  const dropped = new Map<string, ReadonlySet<string>>()
  const states: Array<UnitState> = []
  const byItem = new Map<Holder, Array<UnitState["tools"][number]>>()
  for (const r of reads) {
    const name = r.item.source.source.name
    const tools = byItem.get(r.item) ?? []
    byItem.set(r.item, tools)
    if (r.snap.linked !== undefined) {
      ignored.push({
        source: name,
        path: r.abs,
        reason: `a symbolic link to ${r.snap.linked}: left alone, ${r.item.layout.name} is not synced for ${r.tool}`
      })
      continue
    }
    for (const o of r.snap.outside)
      ignored.push({
        source: name,
        path: nodePath.join(r.abs, o.rel),
        reason: `a symbolic link left alone: ${o.reason}`
      })
    const ignoredHere = ignoredBy.get(r.item.source)
    const gone = new Set([...r.excluded, ...r.extra.filter((rel) => ignoredHere?.has(repoPathOf(r.item, rel)))])
    if (gone.size > 0) dropped.set(toolKey(name, r.item.layout.name, r.tool), gone)
    tools.push({
      tool: r.tool,
      base: lock.sources[name]?.units[r.item.layout.name]?.[r.tool]?.files,
      home: keep(r.snap.files, gone)
    })
  }
  for (const [item, tools] of byItem) {
    if (tools.length > 0)
      states.push({
        source: item.source.source.name,
        unit: item.layout.name,
        readOnly: item.source.readOnly,
        repo: item.repo?.files,
        tools
      })
  }

  // Interrupted writes also leave temp files beside units and staging folders beside new ones.
  temps.push(
    ...read.beside,
    ...(yield* disk.tempsIn(nodePath.join(store.root, "cache"))),
    ...(yield* disk.tempsIn(store.root))
  )
  for (const p of prepared) temps.push(...p.temps)
  for (const p of prepared) for (const note of p.notes) notes.push({ source: p.source.name, note })

  return {
    prepared,
    errors,
    units,
    states,
    homes,
    ignored,
    notes,
    withheld,
    overlaps,
    dropped,
    temps: [...new Set(temps)]
  } satisfies Planned
})
