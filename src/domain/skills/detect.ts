/** Layouts read from a repository's own markers (plugin marketplaces, Codex skill trees, `.claude/` folders, category folders), and what a tree holds. */
import { groups } from "../text.js"
import { DEFAULT_LAYOUT } from "./layout.js"
import type { LayoutMapping } from "./model.js"

export interface DetectedLayout {
  /** What was recognised, for messages (`plugin marketplace: 12 plugins under plugins/`); empty: the common layouts only. */
  readonly kinds: ReadonlyArray<string>
  /** The rules, the detected ones first and the common layouts last. */
  readonly mappings: ReadonlyArray<LayoutMapping>
}

const NOT_UNITS = ["README.md", "CHANGELOG.md", "CONTRIBUTING.md", "LICENSE.md", "CLAUDE.md", "AGENTS.md"]

/**
 * Plugin roots are folders holding `.claude-plugin/plugin.json` (and, in a marketplace, the folders of `plugins/`).
 * A plugin's skills land in `skills/<skill>` (the one level tools read), its agents and commands in a folder named
 * after the plugin, since plugins of one marketplace often share agent names.
 */
const pluginRules = (parent: string): ReadonlyArray<LayoutMapping> => [
  {
    glob: `${parent}/{plugin}/skills/{name}/SKILL.md`,
    repo: `${parent}/{plugin}/skills/{name}`,
    home: "skills/{name}"
  },
  {
    glob: `${parent}/{plugin}/agents/{name}.md`,
    repo: `${parent}/{plugin}/agents/{name}.md`,
    home: "agents/{plugin}/{name}.md",
    exclude: NOT_UNITS
  },
  {
    glob: `${parent}/{plugin}/commands/{name}.md`,
    repo: `${parent}/{plugin}/commands/{name}.md`,
    home: "commands/{plugin}/{name}.md",
    exclude: NOT_UNITS
  }
]

/** The tool-home layout kept under a folder of the repository (`.claude/`). */
const homeFolderRules = (dir: string): ReadonlyArray<LayoutMapping> => [
  { glob: `${dir}/skills/*/SKILL.md`, repo: `${dir}/skills/*`, home: "skills/*" },
  { glob: `${dir}/agents/*.md`, repo: `${dir}/agents/*.md`, home: "agents/*.md", exclude: NOT_UNITS },
  { glob: `${dir}/agents/*/*.md`, repo: `${dir}/agents/*/*.md`, home: "agents/*/*.md", exclude: NOT_UNITS },
  { glob: `${dir}/commands/*.md`, repo: `${dir}/commands/*.md`, home: "commands/*.md", exclude: NOT_UNITS },
  { glob: `${dir}/commands/*/*.md`, repo: `${dir}/commands/*/*.md`, home: "commands/*/*.md", exclude: NOT_UNITS }
]

const CODEX_TIERS = [".system", ".curated", ".experimental"]

/**
 * The layout of a repository from its paths alone (no file is read): each marker adds its rules. `name` (the
 * source's) names the skill of a repository that is one skill, its SKILL.md at the top.
 */
export const detectLayout = (paths: ReadonlyArray<string>, name?: string): DetectedLayout => {
  const kinds: Array<string> = []
  const mappings: Array<LayoutMapping> = []

  const plugins = new Map<string, Set<string>>()
  const addPlugin = (parent: string, name: string) => {
    const set = plugins.get(parent) ?? new Set<string>()
    set.add(name)
    plugins.set(parent, set)
  }
  const marketplace = paths.includes(".claude-plugin/marketplace.json")
  // Plugins that carry units (a plugin of hooks or servers only has nothing to deploy here).
  const carrying = new Set<string>()
  const codex = new Set<string>()
  let categories = 0
  const homeFolders = new Set<string>()
  for (const p of paths) {
    const plugin = groups(/^(.+)\/([^/]+)\/\.claude-plugin\/plugin\.json$/, p, 2)
    if (plugin) addPlugin(...plugin)
    const units = groups(/^(.+)\/([^/]+)\/(?:skills|agents|commands)\//, p, 2)
    if (units) {
      const [parent, name] = units
      carrying.add(parent)
      if (marketplace && parent === "plugins") addPlugin("plugins", name)
    }
    const tier = groups(/^skills\/(\.[a-z]+)\/[^/]+\/SKILL\.md$/, p, 1)
    if (tier && CODEX_TIERS.includes(tier[0])) codex.add(tier[0])
    if (/^categories\/[^/]+\/[^/]+\.md$/.test(p) && !NOT_UNITS.includes(p.slice(p.lastIndexOf("/") + 1))) categories++
    const dot = groups(/^((?:[^/]+\/)?\.claude)\/(?:skills|agents|commands)\//, p, 1)
    if (dot) homeFolders.add(dot[0])
  }
  for (const [parent, names] of [...plugins].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (!carrying.has(parent)) continue
    kinds.push(`plugin marketplace: ${names.size} plugin${names.size === 1 ? "" : "s"} under ${parent}/`)
    mappings.push(...pluginRules(parent))
  }
  const tiers = CODEX_TIERS.filter((t) => codex.has(t))
  if (tiers.length > 0) {
    kinds.push(`Codex skills: ${tiers.map((t) => `skills/${t}`).join(", ")}`)
    for (const t of tiers)
      mappings.push({ glob: `skills/${t}/{name}/SKILL.md`, repo: `skills/${t}/{name}`, home: "skills/{name}" })
  }
  if (categories > 0) {
    kinds.push(`subagents in category folders: ${categories} under categories/*`)
    mappings.push({
      glob: "categories/{category}/{name}.md",
      repo: "categories/{category}/{name}.md",
      home: "agents/{name}.md",
      exclude: NOT_UNITS
    })
  }
  // A `.claude/` folder is a tool home kept in a repository (dotfiles); a repository that is a marketplace or a
  // collection keeps its own project settings there, which are not what it offers.
  const dir = [...homeFolders].sort((a, b) => a.length - b.length || (a < b ? -1 : 1))[0]
  if (kinds.length === 0 && dir !== undefined) {
    kinds.push(`a tool home folder: ${dir}/`)
    mappings.push(...homeFolderRules(dir))
  }
  // Skill folders kept outside `skills/` (at the top, or a collection under a folder of their own), where nothing
  // above named the layout and `skills/*/SKILL.md` holds none: each folder holding a SKILL.md is a unit, as the
  // Agent Skills format has it, by the folders that hold them.
  const skillsFolder = paths.some((p) => /^skills\/[^/]+\/SKILL\.md$/.test(p))
  if (kinds.length === 0 && !skillsFolder && name !== undefined && paths.includes("SKILL.md")) {
    // A repository that is one skill: its top folder is the skill, every file of it (`agents/`, a SKILL.md below),
    // named after the source; its hidden folders at the top (`.github/`) and git's files (`.gitignore`) are not
    // part of it. It is the only rule: a common layout's home folder (`skills/*`) would adopt other home units.
    return {
      kinds: [`one skill: the repository's top folder, as skills/${name}`],
      mappings: [{ glob: "SKILL.md", repo: ".", home: `skills/${name}`, exclude: [".*/**", ".git*"] }]
    }
  }
  if (kinds.length === 0 && !skillsFolder) {
    const parents = skillParents(paths)
    if (parents.length > 0) {
      const named = parents.map(([parent, count]) => `${count} ${parent === "" ? "at the top" : `under ${parent}/`}`)
      const more = named.length > 4 ? `, and ${named.length - 4} more folders` : ""
      kinds.push(`skill folders: ${named.slice(0, 4).join(", ")}${more}`)
      for (const [parent] of parents) {
        const at = parent === "" ? "" : `${parent}/`
        mappings.push({ glob: `${at}{name}/SKILL.md`, repo: `${at}{name}`, home: "skills/{name}" })
      }
    }
  }
  mappings.push(...DEFAULT_LAYOUT)
  return { kinds, mappings }
}

/** The folders of a tree that hold a SKILL.md (not one inside another), by the folder holding them: the most first. */
const skillParents = (paths: ReadonlyArray<string>): ReadonlyArray<readonly [string, number]> => {
  const dirs = new Set<string>()
  for (const p of paths) if (p.endsWith("/SKILL.md")) dirs.add(p.slice(0, p.length - "/SKILL.md".length))
  const inside = (dir: string) => {
    for (let slash = dir.lastIndexOf("/"); slash > 0; slash = dir.lastIndexOf("/", slash - 1))
      if (dirs.has(dir.slice(0, slash))) return true
    return false
  }
  const count = new Map<string, number>()
  for (const dir of dirs) {
    // Hidden folders (`.github/`, a tool's own settings) hold no units a repository offers, and the common
    // layouts' agents/ and commands/ folders hold agents and commands.
    if (dir.split("/").some((seg) => seg.startsWith(".")) || /^(?:agents|commands)\//.test(dir) || inside(dir)) continue
    const parent = dir.includes("/") ? dir.slice(0, dir.lastIndexOf("/")) : ""
    count.set(parent, (count.get(parent) ?? 0) + 1)
  }
  return [...count].sort(([a, x], [b, y]) => y - x || (a < b ? -1 : 1))
}

/** `a/x/b`, `a/y/b` → `a/*\/b`: the segments that vary become `*`. */
const generalize = (dirs: readonly [ReadonlyArray<string>, ...ReadonlyArray<ReadonlyArray<string>>]): string =>
  dirs[0].map((seg, i) => (dirs.every((d) => d[i] === seg) ? seg : "*")).join("/")

/** Groups folders of the same depth under the pattern they share; the largest groups first. */
const patterns = (dirs: ReadonlyArray<string>): ReadonlyArray<{ readonly pattern: string; readonly count: number }> => {
  const byDepth = new Map<string, [ReadonlyArray<string>, ...Array<ReadonlyArray<string>>]>()
  for (const d of dirs) {
    const segs = d === "" ? [] : d.split("/")
    // Folders of one depth under the same first segment are one group; the top's folders are one group.
    const key = segs.length <= 1 ? `${segs.length}` : `${segs.length}\0${segs[0]}`
    const list = byDepth.get(key)
    if (list === undefined) byDepth.set(key, [segs])
    else list.push(segs)
  }
  return [...byDepth.values()]
    .map((list) => ({ pattern: list[0].length === 0 ? "." : generalize(list), count: list.length }))
    .sort((a, b) => b.count - a.count || (a.pattern < b.pattern ? -1 : 1))
}

/** What a tree holds that looks like units, for a source whose layout matches nothing: `found 42 SKILL.md under plugins/*\/skills/*`. */
export const describeTree = (paths: ReadonlyArray<string>): ReadonlyArray<string> => {
  const skillDirs: Array<string> = []
  const mdDirs: Array<string> = []
  const inSkill = new Set<string>()
  for (const p of paths)
    if (p === "SKILL.md" || p.endsWith("/SKILL.md")) inSkill.add(p.slice(0, Math.max(0, p.length - "/SKILL.md".length)))
  const underSkill = (p: string) => {
    for (let slash = p.lastIndexOf("/"); slash > 0; slash = p.lastIndexOf("/", slash - 1))
      if (inSkill.has(p.slice(0, slash))) return true
    return false
  }
  for (const p of paths) {
    const slash = p.lastIndexOf("/")
    const dir = slash < 0 ? "" : p.slice(0, slash)
    const file = p.slice(slash + 1)
    if (file === "SKILL.md") skillDirs.push(dir)
    else if (
      file.endsWith(".md") &&
      !NOT_UNITS.includes(file) &&
      dir !== "" &&
      !underSkill(p) &&
      !p.startsWith(".github/")
    )
      mdDirs.push(dir)
  }
  const out: Array<string> = []
  for (const g of patterns(skillDirs).slice(0, 4)) out.push(`found ${g.count} SKILL.md under ${g.pattern}`)
  for (const g of patterns(mdDirs).slice(0, 4))
    out.push(`found ${g.count} .md file${g.count === 1 ? "" : "s"} in ${g.pattern}/`)
  if (paths.includes(".claude-plugin/marketplace.json")) out.push("found .claude-plugin/marketplace.json")
  if (out.length === 0)
    out.push(
      `found no SKILL.md and no Markdown outside the top folder among ${paths.length} file${paths.length === 1 ? "" : "s"}`
    )
  return out
}
