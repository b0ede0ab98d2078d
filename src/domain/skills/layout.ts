/** Layout rules compiled: each mapping checked against its glob and made into the matchers that place a unit in the repo and in a tool home. */
import { Either } from "effect"
import { InvalidInput } from "../../errors.js"
import type { LayoutMapping } from "./model.js"
import {
  captures,
  escapeRe,
  extOf,
  literalPrefix,
  parseTemplate,
  pathMatcher,
  TOKEN,
  type Token,
  templateRe
} from "./templates.js"

/** The common layouts, used after the detected ones (and alone when a repository shows no other marker). */
export const DEFAULT_LAYOUT: ReadonlyArray<LayoutMapping> = [
  { glob: "skills/*/SKILL.md", repo: "skills/*", home: "skills/*" },
  { glob: "agents/*.md", repo: "agents/*.md", home: "agents/*.md", exclude: ["README.md"] },
  { glob: "agents/*/*.md", repo: "agents/*/*.md", home: "agents/*/*.md", exclude: ["README.md"] },
  { glob: "commands/*.md", repo: "commands/*.md", home: "commands/*.md", exclude: ["README.md"] }
]

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

/** The repo path of a unit's member `rel` (`""`: a file unit's own file); a unit rooted at `.` is the repository's top. */
export const memberPath = (repoRoot: string, rel: string): string =>
  repoRoot === "." ? rel : rel === "" ? repoRoot : `${repoRoot}/${rel}`

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
  // `.` is the repository's one unit: nothing may vary, or each capture would be a unit holding every file.
  if (m.repo === "." && (captures(glob).length > 0 || captures(home).length > 0))
    return { field: "repo", reason: "is the repository's top, its one unit: the glob and home can capture nothing" }
  const folder = m.repo === "." || m.glob.startsWith(`${m.repo}/`)
  // The anchor's path inside a folder unit.
  const inside = m.repo === "." ? m.glob : m.glob.slice(m.repo.length + 1)
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
  const suffix = folder ? parseTemplate(inside) : []
  // Captures of the anchor inside the folder (below the repo root) are free in a home: any segment matches.
  const anchorTail = folder
    ? `/${suffix.map((t) => ("lit" in t ? escapeRe(t.lit) : t.multi ? ".+?" : "[^/]+")).join("")}`
    : ""
  const homeText = m.home
  const homeDirEnd = literalPrefix(home).lastIndexOf("/")
  const homeDir = homeDirEnd < 0 ? "" : homeText.slice(0, homeDirEnd)
  const below = `${homeText.slice(homeDir === "" ? 0 : homeDir.length + 1)}${folder ? `/${inside}` : ""}`
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

/** The first rule that does not compile, the field at fault, its value and why; `undefined` when every rule does. */
export const layoutProblem = (
  mappings: ReadonlyArray<LayoutMapping>
): (Problem & { readonly index: number; readonly value: string }) | undefined => {
  for (const [index, m] of mappings.entries()) {
    const c = compileOne(m, index)
    if (isProblem(c)) return { index, value: m[c.field], ...c }
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

/** Whether the layout leaves a file of a unit out (by the `exclude` of the unit's mapping); `rel` is relative to the unit root. */
export const isExcluded = (layout: Layout, unit: UnitLayout, rel: string): boolean => {
  const m = layout.mappings[unit.mapping]
  return m?.excluded(memberPath(unit.repoRoot, rel)) === true
}
