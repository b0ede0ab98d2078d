/** A whole `services/` tree parsed from its files: every item of every kind, the files beside them, what is left to file sync, and every problem. */
import { Either } from "effect"
import { InvalidInput } from "../errors.js"
import {
  ACCESS_RULES_PATH,
  contentSlug,
  decodeUtf8,
  parseAccessRules,
  parseAgent,
  parseAgentFile,
  parseContent,
  parseSkill,
  parseSkillFile,
  parseSourceConfig,
  type SourceConfig,
  type TextFile
} from "./formats.js"
import { sha256 } from "./hash.js"
import type { AccessRule, Agent, Content, ContentLayout, Skill } from "./model.js"

/** A file of the tree: its path relative to `services/` (POSIX separators), its bytes, and its mode bits. */
export interface RawFile {
  readonly path: string
  readonly bytes: Uint8Array
  readonly mode?: number
  /** The file's size where its bytes were not read (over ATTACHMENT_MAX_BYTES). */
  readonly size?: number
}

/** The largest file kept in the database beside an item; a larger one is reported and left to file sync. */
export const ATTACHMENT_MAX_BYTES = 16 * 1024 * 1024

const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`

/** A content file of the tree: its key and place, the SHA-256 of its bytes, and the item where it was parsed. */
export interface ContentFile {
  readonly key: string
  readonly source: string
  readonly slug: string
  /** Below the source folder. */
  readonly path: string
  readonly sha: string
  readonly item: Content | undefined
}

export interface ParseOptions {
  /** Shown before every path in messages. */
  readonly prefix?: string
  /** A content file this says is unchanged is not parsed (its row already holds what it says). */
  readonly unchanged?: (file: Omit<ContentFile, "item">) => boolean
}

/** What a path of the tree is to local sync. */
export type PathRole =
  | { readonly role: "agent-config" | "agent-prompt" | "agent-file"; readonly id: string }
  | { readonly role: "skill-config" | "skill-md"; readonly id: string }
  | { readonly role: "source-config"; readonly source: string }
  | { readonly role: "content"; readonly source: string; readonly path: string; readonly slug: string }
  | { readonly role: "acl" }
  /** A file stored beside an item (an image in a bundle, a skill's script); `owner` is the item's key. */
  | { readonly role: "attachment"; readonly kind: "agents" | "skills" | "content"; readonly owner: string | undefined }

/** The role of a tree path, or undefined for a file local sync leaves to file sync. */
export const pathRole = (path: string): PathRole | undefined => {
  const parts = path.split("/")
  switch (parts[0]) {
    case "agents": {
      if (parts.length === 2)
        return parts[1]!.endsWith(".md") ? { role: "agent-file", id: parts[1]!.slice(0, -3) } : undefined
      const id = parts[1]!
      if (parts.length === 3 && parts[2] === "config.yaml") return { role: "agent-config", id }
      if (parts.length === 3 && parts[2] === "system_prompt.md") return { role: "agent-prompt", id }
      return { role: "attachment", kind: "agents", owner: id }
    }
    case "skills": {
      if (parts.length === 2) return undefined
      const id = parts[1]!
      if (parts.length === 3 && parts[2] === "config.yaml") return { role: "skill-config", id }
      if (parts.length === 3 && parts[2] === "SKILL.md") return { role: "skill-md", id }
      return { role: "attachment", kind: "skills", owner: id }
    }
    case "content": {
      if (parts.length === 2) return undefined
      const source = parts[1]!
      const below = parts.slice(2).join("/")
      if (below === "source.yaml") return { role: "source-config", source }
      const slug = contentSlug(below)
      if (slug !== undefined) return { role: "content", source, path: below, slug }
      return { role: "attachment", kind: "content", owner: undefined }
    }
    case "access-control":
      return path === ACCESS_RULES_PATH ? { role: "acl" } : undefined
    default:
      return undefined
  }
}

/** Which files of the tree local sync reads (items and the files beside them); everything else is file sync's. */
export const isProjectFile = (path: string): boolean => pathRole(path) !== undefined

/** A file stored with an item: content-addressed bytes, the mode they had, and the item they belong to. */
export interface Attachment {
  readonly path: string
  readonly kind: "agents" | "skills" | "content"
  /** The item's key (agent or skill id, `source/slug`), or undefined for a file of a source that no bundle holds. */
  readonly owner: string | undefined
  readonly bytes: Uint8Array
  readonly mode: number
}

export interface Project {
  readonly agents: ReadonlyArray<Agent>
  readonly skills: ReadonlyArray<Skill>
  readonly contents: ReadonlyArray<Content>
  /** Every content file that is an item (the first of a duplicated slug), parsed or found unchanged. */
  readonly contentFiles: ReadonlyArray<ContentFile>
  readonly accessRules: ReadonlyArray<AccessRule>
  /** The files beside items, by path. */
  readonly attachments: ReadonlyArray<Attachment>
  /** The layout of each content source, declared in its `source.yaml` or inferred from its files (for new items). */
  readonly sources: ReadonlyMap<string, ContentLayout>
  readonly sourceConfigs: ReadonlyMap<string, SourceConfig>
  /** Files under services/ that local sync does not treat (file sync carries them), sorted. */
  readonly unsynced: ReadonlyArray<string>
  readonly errors: ReadonlyArray<InvalidInput>
}

const byPath = <A extends { readonly path: string }>(items: Iterable<A>) =>
  [...items].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))

/**
 * The item a content attachment belongs to: the bundle (`index.md` or `_index.md`) of its folder or the nearest
 * folder above it within the source, else none.
 */
export const attachmentOwners = (contentPaths: Iterable<string>) => {
  const bundles = new Map<string, string>()
  for (const p of contentPaths) {
    const parts = p.split("/")
    if (parts.length < 4) continue
    const name = parts[parts.length - 1]!.replace(/\.(md|markdown)$/i, "")
    if (name !== "index" && name !== "_index") continue
    bundles.set(parts.slice(0, -1).join("/"), `${parts[1]}/${parts.slice(2, -1).join("/")}`)
  }
  return (path: string): string | undefined => {
    const parts = path.split("/")
    for (let n = parts.length - 1; n >= 3; n--) {
      const owner = bundles.get(parts.slice(0, n).join("/"))
      if (owner !== undefined) return owner
    }
    return undefined
  }
}

/** Parses every item file of a tree; a bad file is reported and skipped, the others still parse. */
export const parseProject = (files: Iterable<RawFile>, options: ParseOptions = {}): Project => {
  const prefix = options.prefix ?? ""
  const errors: Array<InvalidInput> = []
  const report = (path: string, reason: string) => errors.push(new InvalidInput({ file: prefix + path, reason }))
  const unsynced: Array<string> = []
  const texts = new Map<string, TextFile>()
  const roles = new Map<string, PathRole>()
  const attachmentFiles: Array<RawFile> = []
  // Content is decoded only where it is parsed: most files of a large tree are found unchanged by their hash.
  const contentBytes = new Map<string, Uint8Array>()
  for (const f of files) {
    const role = pathRole(f.path)
    if (role === undefined) {
      unsynced.push(f.path)
      continue
    }
    roles.set(f.path, role)
    const size = f.size ?? f.bytes.length
    if (size > ATTACHMENT_MAX_BYTES) {
      report(
        f.path,
        `${mib(size)} is over the ${mib(ATTACHMENT_MAX_BYTES)} a file kept in the database may have; local sync leaves it out (file sync still carries it)`
      )
      continue
    }
    if (role.role === "attachment") {
      attachmentFiles.push(f)
      continue
    }
    if (role.role === "content") {
      contentBytes.set(f.path, f.bytes)
      continue
    }
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

  // Agents: a folder with config.yaml, or one Markdown file; not both.
  const agents: Array<Agent> = []
  const agentFolders = new Set<string>()
  const agentFiles = new Set<string>()
  for (const role of roles.values()) {
    if (role.role === "agent-config" || role.role === "agent-prompt") agentFolders.add(role.id)
    else if (role.role === "attachment" && role.kind === "agents" && role.owner !== undefined)
      agentFolders.add(role.owner)
    else if (role.role === "agent-file") agentFiles.add(role.id)
  }
  for (const id of [...agentFolders].sort()) {
    const config = texts.get(`agents/${id}/config.yaml`)
    if (agentFiles.has(id)) {
      report(`agents/${id}.md`, `agent ${id} is defined twice: by this file and by the folder agents/${id}/; keep one`)
      continue
    }
    if (config === undefined) {
      const shown = roles.has(`agents/${id}/system_prompt.md`) ? `agents/${id}/system_prompt.md` : `agents/${id}`
      report(
        shown,
        `agent folder has no config.yaml (expected agents/${id}/config.yaml, or a single file agents/${id}.md)`
      )
      continue
    }
    const a = take(parseAgent(config, texts.get(`agents/${id}/system_prompt.md`), id))
    if (a) agents.push(a)
  }
  for (const id of [...agentFiles].sort()) {
    if (agentFolders.has(id)) continue
    const file = texts.get(`agents/${id}.md`)
    if (file === undefined) continue
    const a = take(parseAgentFile(file, id))
    if (a) agents.push(a)
  }

  // Skills: a folder with config.yaml (+ SKILL.md), or with SKILL.md alone (Agent Skills).
  const skills: Array<Skill> = []
  const skillFolders = new Set<string>()
  for (const role of roles.values()) {
    if (role.role === "skill-config" || role.role === "skill-md") skillFolders.add(role.id)
    else if (role.role === "attachment" && role.kind === "skills" && role.owner !== undefined)
      skillFolders.add(role.owner)
  }
  for (const id of [...skillFolders].sort()) {
    const config = texts.get(`skills/${id}/config.yaml`)
    const md = texts.get(`skills/${id}/SKILL.md`)
    if (config !== undefined) {
      const s = take(parseSkill(config, md, id))
      if (s) skills.push(s)
    } else if (md !== undefined) {
      const s = take(parseSkillFile(md, id))
      if (s) skills.push(s)
    } else if (!roles.has(`skills/${id}/SKILL.md`)) {
      report(`skills/${id}`, `skill folder has no SKILL.md or config.yaml (expected skills/${id}/SKILL.md)`)
    }
  }

  // Content: every Markdown file below a source is an item; one file per slug.
  const contents: Array<Content> = []
  const sources = new Map<string, ContentLayout>()
  const sourceConfigs = new Map<string, SourceConfig>()
  const seen = new Map<string, string>()
  const contentFiles: Array<ContentFile> = []
  // A source's layout for items that have no file yet: what most of its items are, bundles or flat pages.
  const forms = new Map<string, { bundles: number; pages: number }>()
  for (const [path, file] of texts) {
    const role = roles.get(path)!
    if (role.role !== "source-config") continue
    const c = take(parseSourceConfig(file))
    if (c) sourceConfigs.set(role.source, c)
  }
  for (const path of [...contentBytes.keys()].sort()) {
    const role = roles.get(path) as Extract<PathRole, { role: "content" }>
    const bytes = contentBytes.get(path)!
    const bundle = /(^|\/)_?index\.(md|markdown)$/i.test(role.path) && role.path.includes("/")
    const tally = forms.get(role.source) ?? { bundles: 0, pages: 0 }
    if (bundle) tally.bundles++
    else tally.pages++
    forms.set(role.source, tally)
    const key = `${role.source}/${role.slug}`
    const earlier = seen.get(key)
    if (earlier !== undefined) {
      report(path, `duplicate content ${key}: also defined by ${prefix}${earlier}; keep one of the two files`)
      continue
    }
    seen.set(key, path)
    const file = { key, source: role.source, slug: role.slug, path: role.path, sha: sha256(bytes) }
    if (options.unchanged?.(file)) {
      contentFiles.push({ ...file, item: undefined })
      continue
    }
    const shown = prefix + path
    const text = decodeUtf8(shown, bytes)
    const c = take(Either.flatMap(text, (t) => parseContent({ path: shown, text: t }, role.source, role.path)))
    if (c === undefined) continue
    contents.push(c)
    contentFiles.push({ ...file, item: c })
  }
  for (const [source, t] of forms) sources.set(source, t.bundles > t.pages ? "directory" : "flat")
  for (const [source, c] of sourceConfigs) sources.set(source, c.layout)
  const owners = attachmentOwners(seen.values())
  const attachments: Array<Attachment> = byPath(attachmentFiles).map((f) => {
    const role = roles.get(f.path) as Extract<PathRole, { role: "attachment" }>
    return {
      path: f.path,
      kind: role.kind,
      owner: role.kind === "content" ? owners(f.path) : role.owner,
      bytes: f.bytes,
      mode: f.mode ?? 0o644
    }
  })

  let accessRules: ReadonlyArray<AccessRule> = []
  const rules = texts.get(ACCESS_RULES_PATH)
  if (rules !== undefined) accessRules = take(parseAccessRules(rules)) ?? []

  return {
    agents,
    skills,
    contents,
    contentFiles,
    accessRules,
    attachments,
    sources,
    sourceConfigs,
    unsynced: unsynced.sort(),
    errors
  }
}
