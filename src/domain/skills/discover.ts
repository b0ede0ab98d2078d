/** Finding units: which files of a repository listing form which units, and which units already sit in a tool home. */
import { Either } from "effect"
import { held } from "../held.js"
import { checkUnitName } from "./guards.js"
import { type Layout, memberPath, type UnitLayout, unitNameOf } from "./layout.js"
import { fill, groupsOf } from "./templates.js"

export interface DiscoveredUnit extends UnitLayout {
  /** Paths relative to the unit root (`""` for a file unit), sorted. */
  readonly files: ReadonlyArray<string>
}

/** Two units of one repository that would share a home path (or one inside the other): the layout is ambiguous. */
export interface Collision {
  /** The home root of the unit left out. */
  readonly home: string
  /** The repo root of the unit kept, which holds that home path or one in or above it. */
  readonly first: string
  /** The home root of the unit kept. */
  readonly firstHome: string
  /** The repo root of the unit left out. */
  readonly second: string
  /** The unit left out, as the layout placed it. */
  readonly unit: UnitLayout
}

export interface Discovery {
  readonly units: ReadonlyArray<DiscoveredUnit>
  readonly skipped: ReadonlyArray<{ readonly path: string; readonly reason: string }>
  readonly collisions: ReadonlyArray<Collision>
}

/** The index of the first path ≥ `prefix` in a sorted array. */
const lowerBound = (sorted: ReadonlyArray<string>, prefix: string): number => {
  let lo = 0
  let hi = sorted.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (held(sorted[mid], "a path between the bounds of the search") < prefix) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** Is `path` a unit root, or inside a folder unit root, of the given sets (a unit rooted at `.` holds every path). */
const insideRoots = (path: string, files: ReadonlySet<string>, folders: ReadonlySet<string>): string | undefined => {
  if (folders.has(".")) return "."
  if (files.has(path) || folders.has(path)) return path
  for (let slash = path.indexOf("/"); slash > 0; slash = path.indexOf("/", slash + 1)) {
    const dir = path.slice(0, slash)
    if (folders.has(dir)) return dir
  }
  return undefined
}

/**
 * Groups repo files into units. Anchors are taken mapping by mapping, first match wins: a file already inside a
 * unit is never the anchor or a member of another. Two units that would share a home path, or sit one inside the
 * other in a home, are a collision: the second is left out and both are named.
 */
/** The folders above a home root, outermost first. */
export const foldersAbove = (root: string): ReadonlyArray<string> => {
  const out: Array<string> = []
  for (let slash = root.indexOf("/"); slash > 0; slash = root.indexOf("/", slash + 1)) out.push(root.slice(0, slash))
  return out
}

export const discoverUnits = (layout: Layout, repoPaths: ReadonlyArray<string>): Discovery => {
  // A listing names each path once; a repeated one is the same file.
  const sorted = [...new Set(repoPaths)].sort()
  const claimedFolders = new Set<string>()
  const claimedFiles = new Set<string>()
  const units: Array<UnitLayout & { readonly excluded: (p: string) => boolean }> = []
  const skipped: Array<{ path: string; reason: string }> = []
  const collisions: Array<Collision> = []
  const byHome = new Map<string, UnitLayout>()
  const byName = new Map<string, UnitLayout>()
  // Every folder above a home root, and the first unit below it: a unit there, folder or file, would hold that unit.
  const above = new Map<string, UnitLayout>()
  // A unit whose home root lies above this path: no unit can sit inside a folder unit's home, nor below a file.
  const rootAbove = (path: string) =>
    foldersAbove(path)
      .map((dir) => byHome.get(dir))
      .find((u) => u !== undefined)
  for (const m of layout.mappings) {
    // The paths under the mapping's prefix are one run of the sorted listing; past its end there is no path.
    for (let i = lowerBound(sorted, m.prefix); ; i++) {
      const path = sorted[i]
      if (path === undefined || !path.startsWith(m.prefix)) break
      const match = m.glob.exec(path)
      if (!match || m.excluded(path)) continue
      if (insideRoots(path, claimedFiles, claimedFolders) !== undefined) continue
      const values = groupsOf(match)
      const repoRoot = fill(m.repo, values)
      const homeRoot = fill(m.home, values)
      const name = unitNameOf(homeRoot, m.folder)
      const checked = checkUnitName(name)
      if (Either.isLeft(checked)) {
        skipped.push({ path, reason: checked.left.reason })
        continue
      }
      const unit: UnitLayout = { name, repoRoot, homeRoot, folder: m.folder, mapping: m.index }
      // One home path, one unit: the same path, the same name, or one unit's home below another's (a folder unit
      // holds what lies in it; a file leaves no folder there to put anything in).
      const clash = byHome.get(homeRoot) ?? byName.get(name) ?? rootAbove(homeRoot) ?? above.get(homeRoot)
      if (clash !== undefined) {
        collisions.push({ home: homeRoot, first: clash.repoRoot, firstHome: clash.homeRoot, second: repoRoot, unit })
        continue
      }
      byHome.set(homeRoot, unit)
      byName.set(name, unit)
      for (const dir of foldersAbove(homeRoot)) if (!above.has(dir)) above.set(dir, unit)
      if (m.folder) claimedFolders.add(repoRoot)
      else claimedFiles.add(repoRoot)
      units.push({ ...unit, excluded: m.excluded })
    }
  }
  // Assign member files in one pass: folder roots by prefix lookup, the mapping's exclusions applied.
  const byFolder = new Map<string, { readonly excluded: (p: string) => boolean; readonly files: Array<string> }>()
  for (const u of units) if (u.folder) byFolder.set(u.repoRoot, { excluded: u.excluded, files: [] })
  for (const path of sorted) {
    // A member path that could escape its root or break a line is never written anywhere.
    if (/[\r\n\\\0]/.test(path) || path.split("/").some((s) => s === "" || s === "." || s === "..")) {
      skipped.push({ path, reason: "unsafe file name" })
      continue
    }
    if (claimedFiles.has(path)) continue
    let slash = path.lastIndexOf("/")
    while (slash > 0) {
      const folder = byFolder.get(path.slice(0, slash))
      if (folder) break
      slash = path.lastIndexOf("/", slash - 1)
    }
    // No folder unit holds it: the unit rooted at the repository's top, if there is one, does.
    const folder = slash > 0 ? byFolder.get(path.slice(0, slash)) : byFolder.get(".")
    if (folder && !folder.excluded(path)) folder.files.push(slash > 0 ? path.slice(slash + 1) : path)
  }
  return {
    units: units.map(({ excluded: _, ...u }) => ({
      ...u,
      files: u.folder ? (byFolder.get(u.repoRoot)?.files ?? []) : [""]
    })),
    skipped,
    collisions
  }
}

/**
 * Units left out of a run because their home paths collide, grouped under the home path of the unit found first,
 * which comes first; each as the layout placed it (its own name, home root, and whether it is a folder).
 */
export interface Withheld {
  readonly home: string
  readonly units: readonly [UnitLayout, ...Array<UnitLayout>]
}

/** Whether two home roots are one path or one lies below the other. */
export const nestedHomes = (a: string, b: string) => a === b || a.startsWith(`${b}/`) || b.startsWith(`${a}/`)

/** Whether a unit (its home root and name) is, holds, or lies in a withheld unit (one home path, one unit: see `discoverUnits`). */
export const isWithheldHome = (withheld: ReadonlyArray<Withheld>, homeRoot: string, name: string): boolean =>
  withheld.some((w) => w.units.some((u) => u.name === name || nestedHomes(u.homeRoot, homeRoot)))

/**
 * A discovery without its collisions: every unit of a collision is left out (the first as well as those it kept
 * out, since which one came first is only the order of the listing), grouped by the home path of the first; and so
 * is every other kept unit on a path in or above a unit left out (several units below one file unit's home path,
 * where the collision names only the first), in that unit's group.
 */
export const withholdCollisions = (
  found: Discovery
): { readonly units: ReadonlyArray<DiscoveredUnit>; readonly withheld: ReadonlyArray<Withheld> } => {
  if (found.collisions.length === 0) return { units: found.units, withheld: [] }
  const byRoot = new Map(found.units.map((u) => [u.repoRoot, u]))
  const groups = new Map<string, { readonly first: UnitLayout; readonly rest: Array<UnitLayout> }>()
  for (const c of found.collisions) {
    const { files: _, ...first } = held(byRoot.get(c.first), `the unit at ${c.first} a collision names`)
    const g = groups.get(first.homeRoot) ?? { first, rest: [] }
    g.rest.push(c.unit)
    groups.set(first.homeRoot, g)
  }
  const left = new Set([...groups.values()].map((g) => g.first.repoRoot))
  // Kept units never nest with each other, so one pass over them finds every one a left-out unit holds or lies in.
  for (const u of found.units) {
    if (left.has(u.repoRoot)) continue
    const g = [...groups.values()].find((g) => g.rest.some((r) => nestedHomes(r.homeRoot, u.homeRoot)))
    if (g === undefined) continue
    const { files: _, ...unit } = u
    g.rest.push(unit)
    left.add(u.repoRoot)
  }
  const withheld = [...groups].map(([home, g]): Withheld => ({ home, units: [g.first, ...g.rest] }))
  return { units: found.units.filter((u) => !left.has(u.repoRoot)), withheld }
}

/** The rule that would claim a repo anchor path, with its captures: the first whose glob matches and that does not exclude it. */
const claimant = (layout: Layout, path: string) => {
  for (const m of layout.mappings) {
    if (!path.startsWith(m.prefix)) continue
    const match = m.glob.exec(path)
    if (match && !m.excluded(path)) return { m, values: groupsOf(match) }
  }
  return undefined
}

/** Finds where a unit named in the manifest would live, from its name alone (to adopt a unit that exists only at home). */
export const unitFromName = (layout: Layout, name: string): UnitLayout | undefined => {
  for (const m of layout.mappings) {
    if (m.reverse === undefined) continue
    const match = m.reverse.exec(name)
    if (!match) continue
    const values = groupsOf(match)
    return { name, repoRoot: fill(m.repo, values), homeRoot: fill(m.home, values), folder: m.folder, mapping: m.index }
  }
  return undefined
}

/** Where new units may appear in a tool home: folders to list, and how deep. */
export const homeScanPlan = (layout: Layout): ReadonlyArray<{ readonly dir: string; readonly depth: number }> => {
  const out = new Map<string, number>()
  for (const m of layout.mappings)
    if (m.homeAnchor !== undefined) out.set(m.homeDir, Math.max(out.get(m.homeDir) ?? 0, m.homeDepth))
  return [...out].map(([dir, depth]) => ({ dir, depth }))
}

/**
 * Units the layout would map that sit in a tool home: each home file that is the anchor of a unit as it would lie
 * in the home (`skills/x/SKILL.md`, `agents/y.md`), kept when the repo path it implies would be claimed by the
 * same rule and map back to the same home path. Rules whose home template drops a capture of the repo cannot be
 * read backwards and find nothing.
 */
export const unitsFromHome = (layout: Layout, homePaths: ReadonlyArray<string>): ReadonlyArray<UnitLayout> => {
  const found = new Map<string, UnitLayout>()
  for (const path of homePaths) {
    for (const m of layout.mappings) {
      if (m.homeAnchor === undefined) continue
      const match = m.homeAnchor.exec(path)
      if (!match) continue
      const values = groupsOf(match)
      const homeRoot = fill(m.home, values)
      const repoRoot = fill(m.repo, values)
      const anchor = m.folder ? memberPath(repoRoot, path.slice(homeRoot.length + 1)) : repoRoot
      const owner = claimant(layout, anchor)
      if (owner === undefined || owner.m !== m || fill(m.home, owner.values) !== homeRoot) break
      const name = unitNameOf(homeRoot, m.folder)
      if (Either.isRight(checkUnitName(name)) && !found.has(name))
        found.set(name, { name, repoRoot, homeRoot, folder: m.folder, mapping: m.index })
      break
    }
  }
  return [...found.values()]
}
