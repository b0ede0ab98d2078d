/** A whole `services/` tree parsed from its files: every item of every kind, the files beside them, what is left to file sync, and every problem. */
import { Either } from "effect"
import { InvalidInput } from "../errors.js"
import {
  AGENTS,
  bodyPath,
  configPath,
  type FolderKind,
  fileInFolder,
  type KindShape,
  modePath,
  parseFileItem,
  parseFolderItem,
  SKILLS
} from "./formats/folderKinds.js"
import {
  ACCESS_RULES_PATH,
  contentSlug,
  decodeUtf8,
  parseAccessRules,
  parseContent,
  parseSourceConfig,
  type SourceConfig,
  type TextFile
} from "./formats.js"
import { sha256 } from "./hash.js"
import {
  type AccessRule,
  type Agent,
  type Content,
  type ContentLayout,
  type ItemMode,
  keptMode,
  MARKDOWN,
  type Skill,
  withMode
} from "./model.js"

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
  /** Its kept mode (`keptMode`): 0644, or 0755 when executable. */
  readonly mode: ItemMode
  readonly item: Content | undefined
}

export interface ParseOptions {
  /** Shown before every path in messages. */
  readonly prefix?: string
  /** A content file this says is unchanged is not parsed (its row already holds what it says). */
  readonly unchanged?: (file: Omit<ContentFile, "item" | "mode">) => boolean
}

/** What a path of the tree is to local sync. */
export type PathRole =
  /** An agent's or skill's config.yaml, the Markdown beside it, or its single file (a skill's is its SKILL.md). */
  | { readonly role: "config" | "body" | "file"; readonly kind: "agents" | "skills"; readonly id: string }
  | { readonly role: "source-config"; readonly source: string }
  | { readonly role: "content"; readonly source: string; readonly path: string; readonly slug: string }
  | { readonly role: "acl" }
  /** A file stored beside an item (an image in a bundle, a skill's script); `owner` is the item's key. */
  | { readonly role: "attachment"; readonly kind: "agents" | "skills" | "content"; readonly owner: string | undefined }

type AttachmentRole = Extract<PathRole, { readonly role: "attachment" }>
type ContentRole = Extract<PathRole, { readonly role: "content" }>

/** The role of a path below an agent or skill folder (`parts` starts with the kind's folder). */
const itemRole = (k: KindShape, parts: ReadonlyArray<string>): PathRole | undefined => {
  const [, name, file] = parts
  // A file named as the kind's folder itself (`agents`) is an attachment no item owns.
  if (name === undefined) return { role: "attachment", kind: k.kind, owner: undefined }
  if (parts.length === 2)
    return !fileInFolder(k) && name.endsWith(".md") ? { role: "file", kind: k.kind, id: name.slice(0, -3) } : undefined
  if (parts.length === 3 && file === "config.yaml") return { role: "config", kind: k.kind, id: name }
  if (parts.length === 3 && file === k.bodyName) return { role: "body", kind: k.kind, id: name }
  return { role: "attachment", kind: k.kind, owner: name }
}

/** The role of a tree path, or undefined for a file local sync leaves to file sync. */
export const pathRole = (path: string): PathRole | undefined => {
  const parts = path.split("/")
  switch (parts[0]) {
    case "agents":
      return itemRole(AGENTS, parts)
    case "skills":
      return itemRole(SKILLS, parts)
    case "content": {
      const [, source] = parts
      // A file named `content` at the top: like a file of a source that no item holds.
      if (source === undefined) return { role: "attachment", kind: "content", owner: undefined }
      if (parts.length === 2) return undefined
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
 * The item a content attachment belongs to: the bundle (`index.md`, `_index.md`, `index.mdx`…) of its folder or the nearest
 * folder above it within the source, else none.
 */
export const attachmentOwners = (contentPaths: Iterable<string>) => {
  const bundles = new Map<string, string>()
  for (const p of contentPaths) {
    const parts = p.split("/")
    const last = parts.at(-1)
    if (parts.length < 4 || last === undefined) continue
    const name = last.replace(MARKDOWN, "")
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
  const attachmentFiles: Array<{ readonly path: string; readonly file: RawFile; readonly role: AttachmentRole }> = []
  // Content is decoded only where it is parsed: most files of a large tree are found unchanged by their hash.
  const contentBytes: Array<{
    readonly path: string
    readonly bytes: Uint8Array
    readonly mode: ItemMode
    readonly role: ContentRole
  }> = []
  // The kept mode of each item file read as text (an agent's or skill's files).
  const modes = new Map<string, ItemMode>()
  const sourceConfigPaths: Array<{ readonly path: string; readonly source: string }> = []
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
      attachmentFiles.push({ path: f.path, file: f, role })
      continue
    }
    if (role.role === "content") {
      contentBytes.push({ path: f.path, bytes: f.bytes, mode: keptMode(f.mode ?? 0o644), role })
      continue
    }
    if (role.role === "source-config") sourceConfigPaths.push({ path: f.path, source: role.source })
    else if (role.role !== "acl") modes.set(f.path, keptMode(f.mode ?? 0o644))
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

  const agents = parseItems(AGENTS, roles, texts, modes, report, take)
  const skills = parseItems(SKILLS, roles, texts, modes, report, take)

  // Content: every Markdown or MDX file below a source is an item; one file per slug.
  const contents: Array<Content> = []
  const sources = new Map<string, ContentLayout>()
  const sourceConfigs = new Map<string, SourceConfig>()
  const seen = new Map<string, string>()
  const contentFiles: Array<ContentFile> = []
  // A source's layout for items that have no file yet: what most of its items are, bundles or flat pages.
  const forms = new Map<string, { bundles: number; pages: number }>()
  for (const { path, source } of sourceConfigPaths) {
    // A file that is not UTF-8 has no text (its error is reported already).
    const file = texts.get(path)
    if (file === undefined) continue
    const c = take(parseSourceConfig(file))
    if (c) sourceConfigs.set(source, c)
  }
  for (const { path, bytes, mode, role } of byPath(contentBytes)) {
    const bundle = role.slug !== role.path.replace(MARKDOWN, "")
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
      contentFiles.push({ ...file, mode, item: undefined })
      continue
    }
    const shown = prefix + path
    const text = decodeUtf8(shown, bytes)
    const parsed = take(Either.flatMap(text, (t) => parseContent({ path: shown, text: t }, role.source, role.path)))
    if (parsed === undefined) continue
    const c = withMode(parsed, mode)
    contents.push(c)
    contentFiles.push({ ...file, mode, item: c })
  }
  for (const [source, t] of forms) sources.set(source, t.bundles > t.pages ? "directory" : "flat")
  for (const [source, c] of sourceConfigs) sources.set(source, c.layout)
  const owners = attachmentOwners(seen.values())
  const attachments: Array<Attachment> = byPath(attachmentFiles).map(({ file: f, role }) => {
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

/**
 * The items of a folder kind: a folder with config.yaml (and its Markdown file), or the single Markdown file; an
 * agent's file beside its folder (`agents/<id>.md`) may not come with a folder too.
 */
const parseItems = <A extends Agent | Skill>(
  k: FolderKind<A>,
  roles: ReadonlyMap<string, PathRole>,
  texts: ReadonlyMap<string, TextFile>,
  modes: ReadonlyMap<string, ItemMode>,
  report: (path: string, reason: string) => void,
  take: <B>(parsed: Either.Either<B, ReadonlyArray<InvalidInput>>) => B | undefined
): Array<A> => {
  const items: Array<A> = []
  // Each item with the mode of its Markdown file.
  const add = (a: A | undefined) => {
    if (a) items.push(withMode(a, modes.get(modePath(k, a)) ?? 0o644))
  }
  const folders = new Set<string>()
  const files = new Set<string>()
  for (const role of roles.values()) {
    if (role.role === "config" || role.role === "body") {
      if (role.kind === k.kind) folders.add(role.id)
    } else if (role.role === "attachment") {
      if (role.kind === k.kind && role.owner !== undefined) folders.add(role.owner)
    } else if (role.role === "file" && role.kind === k.kind) files.add(role.id)
  }
  const inFolder = fileInFolder(k)
  for (const id of [...folders].sort()) {
    const config = texts.get(configPath(k, id))
    const body = texts.get(bodyPath(k, id))
    if (files.has(id)) {
      report(
        k.filePath(id),
        `${k.noun} ${id} is defined twice: by this file and by the folder ${k.kind}/${id}/; keep one`
      )
    } else if (config !== undefined) {
      add(take(parseFolderItem(k, config, body, id)))
    } else if (inFolder && body !== undefined) {
      add(take(parseFileItem(k, body, id)))
    } else if (inFolder) {
      // A SKILL.md that is there but did not decode was reported already.
      if (!roles.has(bodyPath(k, id)))
        report(`${k.kind}/${id}`, `${k.noun} folder has no ${k.bodyName} or config.yaml (expected ${bodyPath(k, id)})`)
    } else {
      const shown = roles.has(bodyPath(k, id)) ? bodyPath(k, id) : `${k.kind}/${id}`
      report(
        shown,
        `${k.noun} folder has no config.yaml (expected ${configPath(k, id)}, or a single file ${k.filePath(id)})`
      )
    }
  }
  for (const id of [...files].sort()) {
    if (folders.has(id)) continue
    const file = texts.get(k.filePath(id))
    if (file === undefined) continue
    add(take(parseFileItem(k, file, id)))
  }
  return items
}
