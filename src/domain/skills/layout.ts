/** The layout mapping engine: which repo files form which units, and where each unit lives in a tool home. */
import { Either } from "effect"
import { InvalidInput } from "../../errors.js"
import { checkUnitName } from "./guards.js"
import type { LayoutMapping } from "./model.js"

/** The common layouts, used after the detected ones (and alone when a repository shows no other marker). */
export const DEFAULT_LAYOUT: ReadonlyArray<LayoutMapping> = [
  { glob: "skills/*/SKILL.md", repo: "skills/*", home: "skills/*" },
  { glob: "agents/*.md", repo: "agents/*.md", home: "agents/*.md", exclude: ["README.md"] },
  { glob: "agents/*/*.md", repo: "agents/*/*.md", home: "agents/*/*.md", exclude: ["README.md"] },
  { glob: "commands/*.md", repo: "commands/*.md", home: "commands/*.md", exclude: ["README.md"] }
]

/** A template is literal text and captures: `{name}` and `*` one path segment, `**` one or more. */
type Token = { readonly lit: string } | { readonly cap: string; readonly multi: boolean }

const TOKEN = /\{([A-Za-z_][A-Za-z0-9_]*)\}|\*\*|\*/g

/** Anonymous captures are numbered in order of appearance; named ones keep their name. */
const parseTemplate = (template: string): ReadonlyArray<Token> => {
  const out: Array<Token> = []
  let anonymous = 0
  let last = 0
  for (const m of template.matchAll(TOKEN)) {
    if (m.index > last) out.push({ lit: template.slice(last, m.index) })
    out.push(m[1] !== undefined ? { cap: m[1], multi: false } : { cap: `${++anonymous}`, multi: m[0] === "**" })
    last = m.index + m[0].length
  }
  if (last < template.length) out.push({ lit: template.slice(last) })
  return out
}

const captures = (tokens: ReadonlyArray<Token>): ReadonlyArray<string> =>
  tokens.flatMap((t) => ("cap" in t ? [t.cap] : []))

const escapeRe = (s: string) => s.replace(/[.+^${}()|[\]\\?*]/g, "\\$&")

/** A RegExp over paths whose groups are the template's captures (a repeated capture must repeat its value). */
const templateRe = (tokens: ReadonlyArray<Token>, tail = ""): RegExp => {
  const seen = new Set<string>()
  let re = ""
  for (const t of tokens) {
    if ("lit" in t) re += escapeRe(t.lit)
    else {
      const group = `c${t.cap}`
      if (seen.has(t.cap)) re += `\\k<${group}>`
      else {
        seen.add(t.cap)
        re += `(?<${group}>${t.multi ? ".+?" : "[^/]+"})`
      }
    }
  }
  return new RegExp(`^${re}${tail}$`)
}

const groupsOf = (m: RegExpExecArray): ReadonlyMap<string, string> => {
  const out = new Map<string, string>()
  for (const [k, v] of Object.entries(m.groups ?? {})) if (v !== undefined) out.set(k.slice(1), v)
  return out
}

const fill = (tokens: ReadonlyArray<Token>, values: ReadonlyMap<string, string>): string =>
  tokens.map((t) => ("lit" in t ? t.lit : (values.get(t.cap) ?? ""))).join("")

/** The literal text before the first capture. */
const literalPrefix = (tokens: ReadonlyArray<Token>): string => {
  const first = tokens[0]
  return first !== undefined && "lit" in first ? first.lit : ""
}

/**
 * A glob over repo paths: `*` within a segment, `**` across segments, `?` one character; a pattern without `/`
 * matches a file name in any folder (as in `.gitignore`).
 */
export const pathMatcher = (pattern: string): ((path: string) => boolean) => {
  const anywhere = !pattern.includes("/")
  let re = ""
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!
    if (c === "*" && pattern[i + 1] === "*") {
      if (pattern[i + 2] === "/") {
        re += "(?:.*/)?"
        i += 2
      } else {
        re += ".*"
        i++
      }
    } else if (c === "*") re += "[^/]*"
    else if (c === "?") re += "[^/]"
    else re += escapeRe(c)
  }
  const compiled = new RegExp(anywhere ? `(?:^|/)${re}$` : `^${re}$`)
  return (path) => compiled.test(path)
}

const extOf = (path: string) => /\.[^./*{}]+$/.exec(path)?.[0] ?? ""

interface CompiledMapping {
  readonly mapping: LayoutMapping
  readonly index: number
  readonly glob: RegExp
  /** Repo paths this mapping can match start with this text (a fast filter over a sorted listing). */
  readonly prefix: string
  readonly repo: ReadonlyArray<Token>
  readonly home: ReadonlyArray<Token>
  /** A folder unit carries every file under its root; a file unit is one file. */
  readonly folder: boolean
  readonly excluded: (path: string) => boolean
  /** Over unit names (home roots, file units without their extension); `undefined` when the home cannot name the repo root. */
  readonly reverse: RegExp | undefined
  /** Over home file paths: the anchor of a unit as it would sit in a home; `undefined` when not reversible. */
  readonly homeAnchor: RegExp | undefined
  /** The folder of the tool home where such anchors are found, and how many segments deep below it. */
  readonly homeDir: string
  readonly homeDepth: number
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

/** The unit name of a home root: the path in the tool home, a file unit without its extension. */
export const unitNameOf = (homeRoot: string, folder: boolean): string =>
  folder ? homeRoot : homeRoot.slice(0, homeRoot.length - extOf(homeRoot).length)

/** Why a rule does not compile, and which of its fields is at fault. */
interface Problem {
  readonly field: "glob" | "repo" | "home"
  readonly reason: string
}

const compileOne = (m: LayoutMapping, index: number): CompiledMapping | Problem => {
  for (const field of ["glob", "repo", "home"] as const) {
    const t = m[field]
    if (t.replace(TOKEN, "").includes("{") || t.replace(TOKEN, "").includes("}"))
      return { field, reason: `${t}: a capture is written {name}, with a letter first` }
  }
  const glob = parseTemplate(m.glob)
  const repo = parseTemplate(m.repo)
  const home = parseTemplate(m.home)
  const globCaps = captures(glob)
  if (new Set(globCaps).size !== globCaps.length) return { field: "glob", reason: "names the same capture twice" }
  for (const [field, tokens] of [
    ["repo", repo],
    ["home", home]
  ] as const) {
    for (const c of captures(tokens)) {
      if (!globCaps.includes(c))
        return {
          field,
          reason: /^\d/.test(c) ? "uses more * captures than the glob" : `uses {${c}}, which the glob does not capture`
        }
    }
  }
  const folder = m.glob.startsWith(`${m.repo}/`)
  if (!folder && m.glob !== m.repo)
    return { field: "repo", reason: "must be the glob itself (a file unit) or a folder prefix of it (a folder unit)" }
  const anonymous = (tokens: ReadonlyArray<Token>) => captures(tokens).filter((c) => /^\d/.test(c)).length
  // `*` in home refers to the glob's in order; home may leave captures out only by naming the ones it keeps.
  if (anonymous(home) !== 0 && anonymous(home) !== anonymous(repo))
    return { field: "home", reason: "must use as many * captures as repo (or name the captures it keeps)" }
  if (captures(home).length === 0 && captures(repo).length > 0)
    return { field: "home", reason: "has no capture: every unit would land on one path" }
  if (!folder && anonymous(repo) !== anonymous(glob))
    return { field: "repo", reason: "must use the same * captures as the glob" }
  const homeExt = folder ? "" : extOf(m.home)
  const reversible = captures(repo).every((c) => captures(home).includes(c))
  const suffix = folder ? parseTemplate(m.glob.slice(m.repo.length + 1)) : []
  // Captures of the anchor inside the folder (below the repo root) are free in a home: any segment matches.
  const anchorTail = folder
    ? `/${suffix.map((t) => ("lit" in t ? escapeRe(t.lit) : t.multi ? ".+?" : "[^/]+")).join("")}`
    : ""
  const homeText = m.home
  const homeDirEnd = literalPrefix(home).lastIndexOf("/")
  const homeDir = homeDirEnd < 0 ? "" : homeText.slice(0, homeDirEnd)
  const below = `${homeText.slice(homeDir === "" ? 0 : homeDir.length + 1)}${folder ? `/${m.glob.slice(m.repo.length + 1)}` : ""}`
  const homeDepth = below.includes("**") ? 8 : below.split("/").length
  const excludes = (m.exclude ?? []).map(pathMatcher)
  return {
    mapping: m,
    index,
    glob: templateRe(glob),
    prefix: literalPrefix(glob),
    repo,
    home,
    folder,
    excluded: (p) => excludes.some((x) => x(p)),
    reverse: reversible ? templateRe(parseTemplate(m.home.slice(0, m.home.length - homeExt.length))) : undefined,
    homeAnchor: reversible ? templateRe(home, anchorTail) : undefined,
    homeDir,
    homeDepth
  }
}

const isProblem = (c: CompiledMapping | Problem): c is Problem => "reason" in c

/** The first rule that does not compile, the field at fault and why; `undefined` when every rule does. */
export const layoutProblem = (
  mappings: ReadonlyArray<LayoutMapping>
): (Problem & { readonly index: number }) | undefined => {
  for (const [index, m] of mappings.entries()) {
    const c = compileOne(m, index)
    if (isProblem(c)) return { index, ...c }
  }
  return undefined
}

/** Compiles mappings (an empty list means the common layouts), checking each template against its glob. */
export const compileLayout = (mappings: ReadonlyArray<LayoutMapping>): Either.Either<Layout, InvalidInput> => {
  const source = mappings.length === 0 ? DEFAULT_LAYOUT : mappings
  const compiled: Array<CompiledMapping> = []
  for (const [index, m] of source.entries()) {
    const c = compileOne(m, index)
    if (isProblem(c))
      return Either.left(
        new InvalidInput({
          field: `target_layout.${index}.${c.field}`,
          reason: `${JSON.stringify(m[c.field])} ${c.reason}`
        })
      )
    compiled.push(c)
  }
  return Either.right({ mappings: compiled })
}

export interface DiscoveredUnit extends UnitLayout {
  /** Paths relative to the unit root (`""` for a file unit), sorted. */
  readonly files: ReadonlyArray<string>
}

/** Two units of one repository that would share a home path (or one inside the other): the layout is ambiguous. */
export interface Collision {
  readonly home: string
  readonly first: string
  readonly second: string
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
    if (sorted[mid]! < prefix) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** Is `path` a unit root, or inside a folder unit root, of the given sets. */
const insideRoots = (path: string, files: ReadonlySet<string>, folders: ReadonlySet<string>): string | undefined => {
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
  const homeFolders = new Map<string, UnitLayout>()
  // Every folder above a home root, and the first unit below it: a folder unit there would contain that unit.
  const above = new Map<string, UnitLayout>()
  const folderAbove = (path: string) => {
    for (let slash = path.indexOf("/"); slash > 0; slash = path.indexOf("/", slash + 1)) {
      const u = homeFolders.get(path.slice(0, slash))
      if (u !== undefined) return u
    }
    return undefined
  }
  for (const m of layout.mappings) {
    for (let i = lowerBound(sorted, m.prefix); i < sorted.length && sorted[i]!.startsWith(m.prefix); i++) {
      const path = sorted[i]!
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
      // One home path, one unit: the same path, the same name, or one unit's home inside another's folder.
      const clash =
        byHome.get(homeRoot) ??
        byName.get(name) ??
        folderAbove(homeRoot) ??
        (m.folder ? above.get(homeRoot) : undefined)
      if (clash !== undefined) {
        collisions.push({ home: homeRoot, first: clash.repoRoot, second: repoRoot })
        continue
      }
      byHome.set(homeRoot, unit)
      byName.set(name, unit)
      for (let slash = homeRoot.indexOf("/"); slash > 0; slash = homeRoot.indexOf("/", slash + 1)) {
        if (!above.has(homeRoot.slice(0, slash))) above.set(homeRoot.slice(0, slash), unit)
      }
      if (m.folder) {
        claimedFolders.add(repoRoot)
        homeFolders.set(homeRoot, unit)
      } else claimedFiles.add(repoRoot)
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
      if (folder) {
        if (!folder.excluded(path)) folder.files.push(path.slice(slash + 1))
        break
      }
      slash = path.lastIndexOf("/", slash - 1)
    }
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

/** Whether the layout leaves a file of a unit out (by the `exclude` of the unit's mapping); `rel` is relative to the unit root. */
export const isExcluded = (layout: Layout, unit: UnitLayout, rel: string): boolean => {
  const m = layout.mappings[unit.mapping]
  return m?.excluded(rel === "" ? unit.repoRoot : `${unit.repoRoot}/${rel}`) === true
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
      const anchor = m.folder ? `${repoRoot}${path.slice(homeRoot.length)}` : repoRoot
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
