/** A whole `services/` tree parsed from its files: every item of every kind, and every problem found. */
import { Either } from "effect"
import { InvalidInput } from "../errors.js"
import {
  ACCESS_RULES_PATH,
  decodeUtf8,
  parseAccessRules,
  parseAgent,
  parseContent,
  parseSkill,
  parseSourceConfig,
  type SourceConfig,
  type TextFile
} from "./formats.js"
import type { AccessRule, Agent, Content, ContentLayout, Skill } from "./model.js"

/** A file of the tree: its path relative to `services/` (POSIX separators) and its bytes. */
export interface RawFile {
  readonly path: string
  readonly bytes: Uint8Array
}

export interface Project {
  readonly agents: ReadonlyArray<Agent>
  readonly skills: ReadonlyArray<Skill>
  readonly contents: ReadonlyArray<Content>
  readonly accessRules: ReadonlyArray<AccessRule>
  /** The layout of each content source, declared in its `source.yaml` or inferred from its files. */
  readonly sources: ReadonlyMap<string, ContentLayout>
  readonly errors: ReadonlyArray<InvalidInput>
}

/** Which files of the tree a kind reads; everything else is carried by file sync only. */
export const isProjectFile = (path: string): boolean => {
  const parts = path.split("/")
  switch (parts[0]) {
    case "agents":
      return parts.length === 3 && (parts[2] === "config.yaml" || parts[2] === "system_prompt.md")
    case "skills":
      return parts.length === 3 && (parts[2] === "config.yaml" || parts[2] === "SKILL.md")
    case "content":
      return (
        (parts.length === 3 && (parts[2] === "source.yaml" || parts[2]!.endsWith(".md"))) ||
        (parts.length === 4 && parts[3] === "index.md")
      )
    case "access-control":
      return path === ACCESS_RULES_PATH
    default:
      return false
  }
}

const byPath = <A>(items: Iterable<[string, A]>) => [...items].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))

/** Parses every item file of a tree; a bad file is reported and skipped, the others still parse. */
export const parseProject = (files: Iterable<RawFile>, prefix = ""): Project => {
  const errors: Array<InvalidInput> = []
  const texts = new Map<string, TextFile>()
  for (const f of files) {
    if (!isProjectFile(f.path)) continue
    const shown = prefix + f.path
    const text = decodeUtf8(shown, f.bytes)
    if (Either.isLeft(text)) errors.push(...text.left)
    else texts.set(f.path, { path: shown, text: text.right })
  }
  const take = <A>(parsed: Either.Either<A, ReadonlyArray<InvalidInput>>): A | undefined => {
    if (Either.isLeft(parsed)) {
      errors.push(...parsed.left)
      return undefined
    }
    return parsed.right
  }
  const missing = (path: string, reason: string) => errors.push(new InvalidInput({ file: prefix + path, reason }))

  const agents: Array<Agent> = []
  const skills: Array<Skill> = []
  const contents: Array<Content> = []
  let accessRules: ReadonlyArray<AccessRule> = []
  const sources = new Map<string, ContentLayout>()
  const sourceConfigs = new Map<string, SourceConfig>()
  const seenContent = new Map<string, string>()

  const folders = (kind: "agents" | "skills") => {
    const ids = new Set<string>()
    for (const path of texts.keys()) {
      const parts = path.split("/")
      if (parts[0] === kind) ids.add(parts[1]!)
    }
    return [...ids].sort()
  }
  for (const id of folders("agents")) {
    const config = texts.get(`agents/${id}/config.yaml`)
    if (config === undefined) {
      missing(`agents/${id}/system_prompt.md`, `agent folder has no config.yaml (expected agents/${id}/config.yaml)`)
      continue
    }
    const a = take(parseAgent(config, texts.get(`agents/${id}/system_prompt.md`), id))
    if (a) agents.push(a)
  }
  for (const id of folders("skills")) {
    const config = texts.get(`skills/${id}/config.yaml`)
    if (config === undefined) {
      missing(`skills/${id}/SKILL.md`, `skill folder has no config.yaml (expected skills/${id}/config.yaml)`)
      continue
    }
    const s = take(parseSkill(config, texts.get(`skills/${id}/SKILL.md`), id))
    if (s) skills.push(s)
  }
  for (const [path, file] of byPath(texts)) {
    const parts = path.split("/")
    if (parts[0] !== "content") continue
    const source = parts[1]!
    if (parts.length === 3 && parts[2] === "source.yaml") {
      const c = take(parseSourceConfig(file))
      if (c) sourceConfigs.set(source, c)
      continue
    }
    const slug = parts.length === 4 ? parts[2]! : parts[2]!.slice(0, -".md".length)
    const layout: ContentLayout = parts.length === 4 ? "directory" : "flat"
    if (!sources.has(source)) sources.set(source, layout)
    const c = take(parseContent(file, source, slug))
    if (c === undefined) continue
    const key = `${source}/${slug}`
    const earlier = seenContent.get(key)
    if (earlier !== undefined) {
      missing(path, `duplicate content ${key}: also defined by ${prefix}${earlier}`)
      continue
    }
    seenContent.set(key, path)
    contents.push(c)
  }
  for (const [source, c] of sourceConfigs) sources.set(source, c.layout)
  const rules = texts.get(ACCESS_RULES_PATH)
  if (rules !== undefined) accessRules = take(parseAccessRules(rules)) ?? []

  return { agents, skills, contents, accessRules, sources, errors }
}
