/** Which home paths a run's units hold in each tool home, withheld units included, and the check that no two sources write one path or one under another's. */
import type { UnitLayout } from "../../domain/skills/layout.js"
import type { Lock, Manifest } from "../../domain/skills/model.js"
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
      withheld.push({ source, unit: w.units[0].name, repo, reason: withheldReason(source, w.units) })
      holders.push(...mine)
    }
  }
  return { withheld, holders }
}

/** The folders above a home root, outermost first. */
const foldersAbove = (root: string): ReadonlyArray<string> => {
  const out: Array<string> = []
  for (let slash = root.indexOf("/"); slash > 0; slash = root.indexOf("/", slash + 1)) out.push(root.slice(0, slash))
  return out
}

/**
 * Two sources whose units hold one home path in a tool's home, or one below the other's (a folder unit holds what
 * lies in it; a file leaves no folder to put anything in); and, for the sources outside the run, a unit their lock
 * entry says they deployed under a name a unit of the run has. Each is a reason to refuse the run before any write.
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
  // Sources outside the scope are known by what the lock says they deployed.
  for (const [source, locked] of Object.entries(lock.sources)) {
    if (prepared.some((p) => p.source.name === source) || !manifest.sources.some((s) => s.name === source && s.enabled))
      continue
    for (const [unit, perTool] of Object.entries(locked.units)) {
      for (const tool of Object.keys(perTool)) {
        const clash = byTool.get(tool)?.names.get(unit)
        if (clash !== undefined) {
          overlaps.push({
            source: clash.source.source.name,
            reason: `${source}:${unit} and ${clash.source.source.name}:${unit} both map to ${clash.layout.homeRoot} in the home of ${tool}`
          })
        }
      }
    }
  }
  return overlaps
}
