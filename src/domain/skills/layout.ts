/** The layout mapping engine: which repo files form which units, and where each unit lives in a tool home. */
import { Either } from "effect"
import { InvalidInput } from "../../errors.js"
import { checkUnitName } from "./guards.js"
import type { LayoutMapping } from "./model.js"

/** The common layouts, used when a source declares no `target_layout`. */
export const DEFAULT_LAYOUT: ReadonlyArray<LayoutMapping> = [
  { glob: "skills/*/SKILL.md", repo: "skills/*", home: "skills/*" },
  { glob: "agents/*.md", repo: "agents/*.md", home: "agents/*.md" },
  { glob: "agents/*/*.md", repo: "agents/*/*.md", home: "agents/*/*.md" },
  { glob: "commands/*.md", repo: "commands/*.md", home: "commands/*.md" }
]

interface CompiledMapping {
  readonly mapping: LayoutMapping
  readonly index: number
  readonly glob: RegExp
  readonly repo: ReadonlyArray<string>
  readonly home: ReadonlyArray<string>
  /** A folder unit carries every file under its root; a file unit is one file. */
  readonly folder: boolean
  /** The home template as a RegExp over unit names (file units without their extension). */
  readonly nameRe: RegExp
  readonly homeExt: string
}

export interface Layout {
  readonly mappings: ReadonlyArray<CompiledMapping>
}

/** A unit as the layout sees it: its name, its root in the repo and in a tool home. */
export interface UnitLayout {
  readonly name: string
  readonly repoRoot: string
  readonly homeRoot: string
  readonly folder: boolean
  readonly mapping: number
}

const escapeRe = (s: string) => s.replace(/[.+^${}()|[\]\\?]/g, "\\$&")

/** `*` captures within a segment, `**` captures across segments; everything else is literal. */
const captureRe = (glob: string): RegExp => {
  let re = ""
  for (let i = 0; i < glob.length; i++) {
    if (glob[i] === "*") {
      if (glob[i + 1] === "*") {
        re += "(.+?)"
        i++
      } else re += "([^/]+)"
    } else re += escapeRe(glob[i]!)
  }
  return new RegExp(`^${re}$`)
}

/** Splits a template at its `*` / `**` tokens. */
const tokens = (template: string): ReadonlyArray<string> => template.split(/\*\*?/)

const fill = (parts: ReadonlyArray<string>, captures: ReadonlyArray<string>): string =>
  parts.reduce((out, part, i) => (i === 0 ? part : `${out}${captures[i - 1] ?? ""}${part}`), "")

const extOf = (path: string) => /\.[^./*]+$/.exec(path)?.[0] ?? ""

/** The unit name of a home root: the path in the tool home, a file unit without its extension. */
export const unitNameOf = (homeRoot: string, folder: boolean): string => (folder ? homeRoot : homeRoot.slice(0, homeRoot.length - extOf(homeRoot).length))

/** Compiles mappings, checking that each template uses the glob's captures and that `repo` is the file or a folder of it. */
export const compileLayout = (mappings: ReadonlyArray<LayoutMapping>): Either.Either<Layout, InvalidInput> => {
  const source = mappings.length === 0 ? DEFAULT_LAYOUT : mappings
  const compiled: Array<CompiledMapping> = []
  for (const [index, m] of source.entries()) {
    const bad = (reason: string) =>
      Either.left(new InvalidInput({ field: `target_layout.${index}`, reason: `${JSON.stringify(m)}: ${reason}` }))
    const n = tokens(m.glob).length
    if (tokens(m.repo).length !== n || tokens(m.home).length !== n) return bad("glob, repo and home must use the same number of * captures")
    const folder = m.glob.startsWith(`${m.repo}/`)
    if (!folder && m.glob !== m.repo) return bad("repo must be the glob itself (a file unit) or a folder prefix of it (a folder unit)")
    const homeExt = folder ? "" : extOf(m.home)
    compiled.push({
      mapping: m,
      index,
      glob: captureRe(m.glob),
      repo: tokens(m.repo),
      home: tokens(m.home),
      folder,
      nameRe: captureRe(m.home.slice(0, m.home.length - homeExt.length)),
      homeExt
    })
  }
  return Either.right({ mappings: compiled })
}

export interface DiscoveredUnit extends UnitLayout {
  /** Paths relative to the unit root (`""` for a file unit), sorted. */
  readonly files: ReadonlyArray<string>
}

export interface Discovery {
  readonly units: ReadonlyArray<DiscoveredUnit>
  readonly skipped: ReadonlyArray<{ readonly path: string; readonly reason: string }>
}

/**
 * Groups repo files into units. Anchors are taken mapping by mapping, first match wins: a file already inside a
 * unit is never the anchor or a member of another, and two units may not share a home root.
 */
export const discoverUnits = (layout: Layout, repoPaths: ReadonlyArray<string>): Discovery => {
  // A listing names each path once; a repeated one is the same file.
  const sorted = [...new Set(repoPaths)].sort()
  const claimedFolders = new Set<string>()
  const claimedFiles = new Set<string>()
  const names = new Set<string>()
  const units: Array<UnitLayout> = []
  const skipped: Array<{ path: string; reason: string }> = []
  const insideClaimed = (p: string) => {
    if (claimedFiles.has(p)) return true
    for (let slash = p.indexOf("/"); slash > 0; slash = p.indexOf("/", slash + 1)) if (claimedFolders.has(p.slice(0, slash))) return true
    return false
  }
  for (const m of layout.mappings) {
    for (const path of sorted) {
      const match = m.glob.exec(path)
      if (!match) continue
      if (insideClaimed(path)) continue
      const captures = match.slice(1)
      const repoRoot = fill(m.repo, captures)
      const homeRoot = fill(m.home, captures)
      const name = unitNameOf(homeRoot, m.folder)
      const checked = checkUnitName(name)
      if (Either.isLeft(checked)) {
        skipped.push({ path, reason: checked.left.reason })
        continue
      }
      if (names.has(name)) {
        skipped.push({ path, reason: `unit ${name} is already provided by another file` })
        continue
      }
      names.add(name)
      if (m.folder) claimedFolders.add(repoRoot)
      else claimedFiles.add(repoRoot)
      units.push({ name, repoRoot, homeRoot, folder: m.folder, mapping: m.index })
    }
  }
  // Assign member files in one pass: folder roots by prefix lookup.
  const byFolder = new Map<string, Array<string>>()
  for (const u of units) if (u.folder) byFolder.set(u.repoRoot, [])
  for (const path of sorted) {
    // A member path that could escape its root or break a line is never written anywhere.
    if (/[\r\n\\\0]/.test(path) || path.split("/").some((s) => s === "" || s === "." || s === "..")) {
      skipped.push({ path, reason: "unsafe file name" })
      continue
    }
    let slash = path.lastIndexOf("/")
    while (slash > 0) {
      const list = byFolder.get(path.slice(0, slash))
      if (list) {
        list.push(path.slice(slash + 1))
        break
      }
      slash = path.lastIndexOf("/", slash - 1)
    }
  }
  return {
    units: units.map((u) => ({ ...u, files: u.folder ? (byFolder.get(u.repoRoot) ?? []) : [""] })),
    skipped
  }
}

/** Finds where a unit named in the manifest would live, from its name alone (to adopt a unit that exists only at home). */
export const unitFromName = (layout: Layout, name: string): UnitLayout | undefined => {
  for (const m of layout.mappings) {
    const match = m.nameRe.exec(name)
    if (!match) continue
    const captures = match.slice(1)
    return { name, repoRoot: fill(m.repo, captures), homeRoot: fill(m.home, captures), folder: m.folder, mapping: m.index }
  }
  return undefined
}

/** A glob over unit names: `*` within a segment, `**` across segments. */
export const unitNameMatcher = (pattern: string): ((name: string) => boolean) => {
  if (!pattern.includes("*") && !pattern.includes("?")) return (name) => name === pattern
  let re = ""
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!
    if (c === "*") {
      if (pattern[i + 1] === "*") {
        re += ".*"
        i++
      } else re += "[^/]*"
    } else if (c === "?") re += "[^/]"
    else re += escapeRe(c)
  }
  const compiled = new RegExp(`^${re}$`)
  return (name) => compiled.test(name)
}
