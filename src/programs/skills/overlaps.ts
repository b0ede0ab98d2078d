/** Which home paths a run's units hold in each tool home, withheld units included, and the check that no two sources write one path or one under another's. */
import { Either } from "effect"
import { foldersAbove, nestedHomes, unitFromName } from "../../domain/skills/discover.js"
import { compileLayout, type UnitLayout } from "../../domain/skills/layout.js"
import type { Lock, Manifest, ManifestSource } from "../../domain/skills/model.js"
import { type WithheldUnit, withheldReason } from "./report.js"
import type { PreparedSource, RepoUnit } from "./sources.js"

/** A unit of a source sent to some tools: its home root is held in each of their homes. */
export interface Holder {
  readonly key: string
  readonly source: PreparedSource
  readonly layout: UnitLayout
  readonly repo: RepoUnit | undefined
  readonly tools: ReadonlyArray<string>
}

/**
 * The withheld units of the run's sources, reported once per home path when any of them goes to a tool, and each
 * as a holder of its own home root (as the layout placed it) for the tools its own name goes to: a withheld unit
 * still holds its path against other sources, as if it were planned.
 */
export const withheldHolders = <C extends { readonly p: PreparedSource }>(
  candidates: ReadonlyArray<C>,
  toolsOf: (c: C, name: string) => ReadonlyArray<string>,
  keyOf: (source: string, unit: string) => string
): { readonly withheld: ReadonlyArray<WithheldUnit>; readonly holders: ReadonlyArray<Holder> } => {
  const withheld: Array<WithheldUnit> = []
  const holders: Array<Holder> = []
  for (const c of candidates) {
    const source = c.p.source.name
    for (const w of c.p.withheld) {
      const mine = w.units.flatMap((layout) => {
        const tools = toolsOf(c, layout.name)
        return tools.length === 0
          ? []
          : [{ key: keyOf(source, layout.name), source: c.p, layout, repo: undefined, tools }]
      })
      if (mine.length === 0) continue
      const repo = w.units.map((u) => u.repoRoot).sort()
      withheld.push({ source, unit: w.units[0].name, repo, reason: withheldReason(source, w.units, c.p.readOnly) })
      holders.push(...mine)
    }
  }
  return { withheld, holders }
}

/**
 * Two sources whose units hold one home path in a tool's home, or one below the other's (a folder unit holds what
 * lies in it; a file leaves no folder to put anything in); and, for the sources outside the run, a unit their lock
 * entry says they deployed under a name a unit of the run has, or on its home path, in or above it. Each is a reason to refuse the run before any write.
 */
export const overlapsOf = (
  items: ReadonlyArray<Holder>,
  lock: Lock,
  manifest: Manifest,
  prepared: ReadonlyArray<PreparedSource>
): ReadonlyArray<{ readonly source: string; readonly reason: string }> => {
  const overlaps: Array<{ source: string; reason: string }> = []
  interface Seen {
    readonly roots: Map<string, Holder>
    /** Per folder, the units below it (one per source is enough to name a clash). */
    readonly below: Map<string, Array<Holder>>
    readonly names: Map<string, Holder>
  }
  const byTool = new Map<string, Seen>()
  for (const item of items) {
    for (const tool of item.tools) {
      const seen: Seen = byTool.get(tool) ?? { roots: new Map(), below: new Map(), names: new Map() }
      byTool.set(tool, seen)
      const root = item.layout.homeRoot
      const other = (h: Holder | undefined) => (h !== undefined && h.source !== item.source ? h : undefined)
      const above = foldersAbove(root)
      const clash =
        other(seen.roots.get(root)) ??
        seen.below.get(root)?.find((h) => h.source !== item.source) ??
        above.map((dir) => other(seen.roots.get(dir))).find((h) => h !== undefined)
      if (clash !== undefined) {
        overlaps.push({
          source: item.source.source.name,
          reason: `${clash.source.source.name}:${clash.layout.name} and ${item.source.source.name}:${item.layout.name} ${clash.layout.homeRoot === root ? `both map to ${root}` : `map to ${clash.layout.homeRoot} and ${root}, one inside the other,`} in the home of ${tool}`
        })
      }
      seen.roots.set(root, item)
      seen.names.set(item.layout.name, item)
      for (const dir of above) {
        const list = seen.below.get(dir)
        if (list === undefined) seen.below.set(dir, [item])
        else if (!list.some((h) => h.source === item.source)) list.push(item)
      }
    }
  }
  // Sources outside the scope are known by what the lock says they deployed, each unit at its home path.
  for (const [source, locked] of Object.entries(lock.sources)) {
    const declared = manifest.sources.find((s) => s.name === source && s.enabled)
    if (declared === undefined || prepared.some((p) => p.source.name === source)) continue
    const homeOf = lockedHome(declared)
    for (const [unit, perTool] of Object.entries(locked.units)) {
      for (const [tool, deployed] of Object.entries(perTool)) {
        const seen = byTool.get(tool)
        if (seen === undefined) continue
        const home = homeOf(unit, "" in deployed.files)
        const clash =
          seen.names.get(unit) ??
          seen.roots.get(home) ??
          seen.below.get(home)?.[0] ??
          foldersAbove(home)
            .map((dir) => seen.roots.get(dir))
            .find((h) => h !== undefined)
        if (clash === undefined) continue
        const root = clash.layout.homeRoot
        overlaps.push({
          source: clash.source.source.name,
          reason: `${source}:${unit} and ${clash.source.source.name}:${clash.layout.name} ${root !== home && nestedHomes(root, home) ? `map to ${home} and ${root}, one inside the other,` : `both map to ${root}`} in the home of ${tool}`
        })
      }
    }
  }
  return overlaps
}

/**
 * Where a source outside the run deployed a unit of its lock entry, by name: the lock keeps names and files, not
 * home paths. Under the source's own rules the rule that names it says; under a detected layout a folder unit's
 * name is its home path and a file unit's is its home path without `.md`, the extension every detected and common
 * file rule's home ends in (detect.ts, DEFAULT_LAYOUT).
 */
const lockedHome = (source: ManifestSource): ((unit: string, file: boolean) => string) => {
  const own = source.target_layout.length > 0 ? Either.getOrUndefined(compileLayout(source.target_layout)) : undefined
  return (unit, file) => {
    const placed = own === undefined ? undefined : unitFromName(own, unit)
    if (placed !== undefined) return placed.homeRoot
    return file ? `${unit}.md` : unit
  }
}
