/** The synced kinds as Schema models: agents, skills, content, access rules, files, and sync results. */
import { Schema } from "effect"

/** An identifier that is safe as a single path segment: no separators, no `..`, no leading `-` or `.`. */
export const Id = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/),
  Schema.filter((s) => !s.includes(".."), { message: () => "must not contain '..'" }),
  Schema.annotations({
    identifier: "Id",
    description: "letters, digits, '_', '-', '.'; not starting with '-' or '.'"
  })
)

/**
 * A key of a JSON object. `__proto__` is refused: a decoded object would take it as its prototype instead of
 * keeping it as a field, so it could not come back as it was written.
 */
export const JsonKey = Schema.String.pipe(
  Schema.filter((k) => k !== "__proto__", { message: () => "a key named __proto__ cannot be stored" })
)

/** A JSON-like value: what free-form settings may hold. */
export type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [key: string]: Json }
export const Json: Schema.Schema<Json> = Schema.suspend(
  (): Schema.Schema<Json> =>
    Schema.Union(
      Schema.Null,
      Schema.Boolean,
      Schema.Number.pipe(Schema.finite()),
      Schema.String,
      Schema.Array(Json),
      Schema.Record({ key: JsonKey, value: Json })
    )
).annotations({ identifier: "Json" })

const Tags = Schema.Array(Schema.String)

/** Fields a file has beyond the ones agentsync knows, in their written order. */
export const JsonObject = Schema.Record({ key: JsonKey, value: Json })

/**
 * How an agent or a skill is laid out on disk. `folder`: `config.yaml` beside the Markdown file
 * (`system_prompt.md`, `SKILL.md`), which is kept whole. `file`: one Markdown file with front matter
 * (a Claude Code subagent `agents/<id>.md`; an Agent Skills `skills/<id>/SKILL.md`).
 */
export const ItemForm = Schema.Literal("folder", "file")
export type ItemForm = typeof ItemForm.Type

/**
 * The mode an item's own file is kept with (see `keptMode`): 0644, or 0755 for an executable one. Rows stored
 * before modes were kept have 0644.
 */
export const ItemMode = Schema.Literal(0o644, 0o755)
export type ItemMode = typeof ItemMode.Type
const itemMode = Schema.optionalWith(ItemMode, { default: () => 0o644 as const })

export class Agent extends Schema.Class<Agent>("Agent")({
  id: Id,
  name: Schema.String,
  display_name: Schema.String,
  description: Schema.String,
  enabled: Schema.Boolean,
  tags: Tags,
  settings: Schema.Record({ key: Schema.String, value: Json }),
  system_prompt: Schema.String,
  form: Schema.optionalWith(ItemForm, { default: () => "folder" as const }),
  /** The config.yaml text (`folder`) or the front matter head (`file`) it was read from; null when never on disk. */
  original: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null }),
  extra: Schema.optionalWith(JsonObject, { default: () => ({}) }),
  /** The mode of its Markdown file (`<id>.md`, `system_prompt.md`); config.yaml is written 0644. */
  mode: itemMode
}) {}

export class Skill extends Schema.Class<Skill>("Skill")({
  id: Id,
  name: Schema.String,
  description: Schema.String,
  enabled: Schema.Boolean,
  tags: Tags,
  category: Schema.String,
  assigned_agents: Schema.Array(Id),
  instructions: Schema.String,
  form: Schema.optionalWith(ItemForm, { default: () => "folder" as const }),
  original: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null }),
  extra: Schema.optionalWith(JsonObject, { default: () => ({}) }),
  /** The mode of its SKILL.md; config.yaml is written 0644. */
  mode: itemMode
}) {}

/** The item with its file's kept mode: the same item when it has that mode already, else a copy. */
export const withMode = <A extends Agent | Skill | Content>(a: A, mode: ItemMode): A =>
  a.mode === mode ? a : Object.assign(Object.create(Object.getPrototypeOf(a)) as A, a, { mode })

/** An ISO-8601 date or date-time, kept as written so that it round-trips byte for byte. */
export const IsoDate = Schema.String.pipe(
  Schema.pattern(
    /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])(T([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,9})?)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)?)?$/
  ),
  Schema.annotations({
    identifier: "IsoDate",
    description: "an ISO-8601 date such as 2025-03-01 or 2025-03-01T10:00:00Z"
  })
)

export const ContentLayout = Schema.Literal("flat", "directory")
export type ContentLayout = typeof ContentLayout.Type

// A segment of a path below a content source: any file name but `.`, `..`, a separator, NUL or a control.
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
const SEGMENT = /^(?!\.{1,2}$)[^/\\\x00-\x1f\x7f]{1,255}$/
const isBelowSource = (s: string) => s.length > 0 && s.length <= 1024 && s.split("/").every((p) => SEGMENT.test(p))

/** An item's slug: its path below the source without the Markdown extension (`guides/install`, `Rust-1.12`). */
const segmentArb = (fc: typeof import("effect").FastCheck) =>
  fc.stringMatching(/^[A-Za-z0-9_@ .-]{1,12}$/).filter((s) => s !== "." && s !== "..")
export const ContentSlug = Schema.String.pipe(
  Schema.filter(isBelowSource, {
    message: () => "must be a relative path of file names (no '.', '..' or empty segment)"
  }),
  Schema.annotations({
    identifier: "ContentSlug",
    arbitrary: () => (fc) => fc.array(segmentArb(fc), { minLength: 1, maxLength: 3 }).map((s) => s.join("/"))
  })
)

/** Markdown files are items, MDX pages (Markdown with JSX) too; the extension is kept. */
export const MARKDOWN = /\.(md|markdown|mdx)$/i
/** An MDX page: a leading `{` opens a JavaScript expression there, never JSON front matter. */
export const MDX = /\.mdx$/i

/** Where an item's file lives below its source: `post.md`, `post/index.md`, `guides/_index.markdown`, `intro.mdx`. */
export const ContentPath = ContentSlug.pipe(
  Schema.filter((s) => MARKDOWN.test(s), { message: () => "must end in .md, .markdown or .mdx" }),
  Schema.annotations({
    identifier: "ContentPath",
    arbitrary: () => (fc) =>
      fc
        .tuple(
          fc.array(segmentArb(fc), { minLength: 1, maxLength: 3 }),
          fc.constantFrom(".md", ".markdown", ".mdx", "/index.md", "/_index.md", "/index.mdx")
        )
        .map(([s, ext]) => s.join("/") + ext)
  })
)

export const FrontMatterFormat = Schema.Literal("yaml", "toml", "json", "none")

export class Content extends Schema.Class<Content>("Content")({
  source: Id,
  slug: ContentSlug,
  /** The file below the source, which the item is written back to. */
  path: ContentPath,
  format: FrontMatterFormat,
  /** Every byte of the file before the body, as read; null for an item never read from a file. */
  head: Schema.NullOr(Schema.String),
  title: Schema.String,
  kind: Schema.String,
  description: Schema.String,
  author: Schema.String,
  keywords: Schema.Array(Schema.String),
  image: Schema.NullOr(Schema.String),
  public: Schema.Boolean,
  tags: Tags,
  /** Dates as written; see `parseDate` for the typed columns. */
  published_at: Schema.NullOr(Schema.String),
  updated_at: Schema.NullOr(Schema.String),
  extra: JsonObject,
  body: Schema.String,
  /** The mode of its file. */
  mode: itemMode
}) {}

/** A date as written, as an ISO-8601 instant when it reads as one, else null (the typed database columns). */
export const parseDate = (text: string | null): string | null => {
  if (text === null || !/^\d{4}-\d{2}-\d{2}/.test(text)) return null
  // Jekyll writes `2013-05-06 00:00:00 +0000`: a space before the time and an offset without a colon.
  const iso = text
    .trim()
    .replace(/^(\S+) (\d)/, "$1T$2")
    .replace(/ ?([+-]\d{2}):?(\d{2})$/, "$1:$2")
  const ms = Date.parse(iso)
  return Number.isNaN(ms) ? null : new Date(ms).toISOString()
}

/** What the database remembers of a content source: its layout (for new items) and whether a source.yaml declared it. */
export class ContentSource extends Schema.Class<ContentSource>("ContentSource")({
  source: Id,
  layout: ContentLayout,
  declared: Schema.Boolean,
  description: Schema.NullOr(Schema.String),
  /** The source.yaml text it was read from, written back as it was. */
  original: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null })
}) {}

export const AccessEntityType = Schema.Literal("agent", "skill", "content", "mcp", "plugin")
export type AccessEntityType = typeof AccessEntityType.Type

export const Access = Schema.Literal("allow", "deny")
export type Access = typeof Access.Type

/** A role rule as declared in `access-control/config.yaml`. */
export class AccessRule extends Schema.Class<AccessRule>("AccessRule")({
  entity_type: AccessEntityType,
  entity_id: Schema.String.pipe(Schema.minLength(1)),
  access: Access,
  roles: Schema.Array(Schema.String.pipe(Schema.minLength(1))).pipe(Schema.minItems(1)),
  justification: Schema.optional(Schema.String)
}) {}

const SHA256_HEX = /^[0-9a-f]{64}$/

/** A lowercase hex SHA-256 digest. */
export const Sha256 = Schema.String.pipe(Schema.pattern(SHA256_HEX), Schema.annotations({ identifier: "Sha256" }))

/** The Sha256 rule as a plain predicate, for checks that run once per file of a tree. */
export const isSha256 = (s: unknown): s is string => typeof s === "string" && SHA256_HEX.test(s)

// An empty, `.` or `..` segment (which also catches a leading or trailing `/` and `//`), a backslash or a NUL.
const NOT_INSIDE = /(?:^|\/)\.{0,2}(?:\/|$)|[\\\0]/

/** The RelPath rule as a plain predicate, for checks that run once per file of a tree. */
export const isRelPath = (p: unknown): p is string =>
  typeof p === "string" && p.length > 0 && p.length <= 1024 && !NOT_INSIDE.test(p)

/** A relative POSIX path inside the services tree: no `..` segment, no leading `/`, no empty segment. */
export const RelPath = Schema.String.pipe(
  Schema.filter(isRelPath, { message: () => "must be a relative path inside the tree" }),
  Schema.annotations({ identifier: "RelPath" })
)

/**
 * A file of the services tree. `executable` (git's model: a file is 0755 or 0644) is written only when true:
 * an entry without it, as older clients and servers write them, is a plain file. `link` (written only when true)
 * makes it a symbolic link whose "content" is its target text: `sha256` and `size` are the target's, so blobs,
 * uploads, revisions and plans treat it as they treat bytes. A link is never executable.
 */
export class FileEntry extends Schema.Class<FileEntry>("FileEntry")({
  path: RelPath,
  size: Schema.NonNegativeInt,
  sha256: Sha256,
  executable: Schema.optional(Schema.Boolean),
  link: Schema.optional(Schema.Boolean)
}) {}

/** The longest link target file sync carries, in bytes (Linux's PATH_MAX less its NUL). */
export const MAX_LINK_BYTES = 4095

const utf8 = new TextEncoder()

/**
 * Why a symbolic link at `path` (a tree path) with this target is not carried, or undefined when it is: only a
 * relative target that, resolved from the link's folder, stays inside the tree. The target is read lexically
 * as some `..` segments and then names only: a `..` after a name could climb out of a folder that is itself a
 * link, which text alone cannot tell. An empty, `.` or `..`-only rest names a folder of the tree: allowed (a
 * link to a folder is carried as a link; nothing walks into it). The one rule for every tree links are carried
 * in: file sync's services tree, and a skill unit (`tree` names it in the reason).
 */
export const linkTargetProblem = (path: string, target: string, tree = "the tree"): string | undefined => {
  if (target === "") return "its target is empty"
  if (target.includes("\0")) return "its target holds a NUL byte"
  if (target.includes("\uFFFD")) return "its target is not UTF-8 text"
  if (utf8.encode(target).length > MAX_LINK_BYTES) return `its target is longer than ${MAX_LINK_BYTES} bytes`
  if (target.startsWith("/")) return `its target ${target} is absolute`
  const segments = target.split("/").filter((s) => s !== "" && s !== ".")
  let up = 0
  while (up < segments.length && segments[up] === "..") up++
  if (segments.slice(up).includes("..")) return `its target ${target} climbs with '..' after a name`
  if (up > path.split("/").length - 1) return `its target ${target} leaves ${tree}`
  return undefined
}

/** Whether a file's permission bits make it executable: its owner-execute bit, as git reads it. */
export const isExecutableMode = (mode: number) => (mode & 0o100) !== 0

/** The mode a synced file is written with: 0755 or 0644, never setuid, setgid, sticky or writable by others. */
export const fileMode = (executable: boolean | undefined) => (executable === true ? 0o755 : 0o644)

/**
 * What a sync keeps of a file's mode: its executable bit, as git and file sync keep it, as the mode it is written
 * with (0755 or 0644). Local sync stores this for items and the files beside them, and compares nothing else.
 */
export const keptMode = (mode: number) => fileMode(isExecutableMode(mode))

/** git's words for a kept mode: `100755` or `100644`. */
export const gitMode = (mode: number) => (isExecutableMode(mode) ? "100755" : "100644")

/**
 * A manifest entry as the wire carries it: `executable` present only for an executable file, so a plain file's
 * entry is the same as before modes travelled.
 */
export const fileEntry = (path: string, size: number, sha256: string, executable: boolean): FileEntry =>
  executable ? { path, size, sha256, executable: true } : { path, size, sha256 }

/** A symbolic link's manifest entry: its target's SHA-256 and byte length, with `link: true`. */
export const linkEntry = (path: string, size: number, sha256: string): FileEntry => ({ path, size, sha256, link: true })

/**
 * What a file is, for every comparison of file sync (two-way diff, three-way plan, recorded base): its content,
 * with `+x` after it when executable and `+l` when a symbolic link (so a link and a file of the same bytes
 * differ). A plain file's version is its bare SHA-256, as bases recorded before modes and links travelled hold it.
 */
export const fileVersion = (e: {
  readonly sha256: string
  readonly executable?: boolean | undefined
  readonly link?: boolean | undefined
}) => (e.link === true ? `${e.sha256}+l` : e.executable === true ? `${e.sha256}+x` : e.sha256)

export class FileManifest extends Schema.Class<FileManifest>("FileManifest")({
  entries: Schema.Array(FileEntry),
  checksum: Sha256
}) {}

export const DiffStatus = Schema.Literal("Added", "Modified", "Removed", "Unchanged")
export type DiffStatus = typeof DiffStatus.Type

/**
 * One key of a diff: the item on each side where present, with its hash. The status says which sides are: an
 * added key has only a source, a removed one only a target, a modified or unchanged one both.
 */
export type DiffItem<S, T = S> =
  | {
      readonly key: string
      readonly status: "Added"
      readonly source: S
      readonly target: undefined
      readonly sourceHash: string
      readonly targetHash: undefined
    }
  | {
      readonly key: string
      readonly status: "Removed"
      readonly source: undefined
      readonly target: T
      readonly sourceHash: undefined
      readonly targetHash: string
    }
  | {
      readonly key: string
      readonly status: "Modified" | "Unchanged"
      readonly source: S
      readonly target: T
      readonly sourceHash: string
      readonly targetHash: string
    }

export interface DiffCounts {
  readonly added: number
  readonly modified: number
  readonly removed: number
  readonly unchanged: number
}

export interface DiffResult<S, T = S> {
  /** Every key of either side, sorted by key. */
  readonly items: ReadonlyArray<DiffItem<S, T>>
  readonly counts: DiffCounts
}

export type AgentsDiffResult = DiffResult<Agent>
export type SkillsDiffResult = DiffResult<Skill>
export type ContentDiffResult = DiffResult<Content>
export type AccessRulesDiffResult = DiffResult<AccessRule>
export type FilesDiffResult = DiffResult<FileEntry>

export const LocalSyncDirection = Schema.Literal("ToDisk", "ToDatabase")
export type LocalSyncDirection = typeof LocalSyncDirection.Type

export const SyncKind = Schema.Literal("agents", "skills", "content", "acl")
export type SyncKind = typeof SyncKind.Type

export class LocalSyncError extends Schema.Class<LocalSyncError>("LocalSyncError")({
  item: Schema.String,
  message: Schema.String
}) {}

/** How many items a run's errors name: a file with a problem on each of several lines is one item. */
export const itemsNamed = (errors: ReadonlyArray<Pick<LocalSyncError, "item">>): number =>
  new Set(errors.map((e) => e.item)).size

export class LocalSyncResult extends Schema.Class<LocalSyncResult>("LocalSyncResult")({
  kind: SyncKind,
  direction: LocalSyncDirection,
  dry_run: Schema.Boolean,
  synced: Schema.NonNegativeInt,
  skipped: Schema.NonNegativeInt,
  deleted: Schema.NonNegativeInt,
  errors: Schema.Array(LocalSyncError)
}) {}

export const SyncOpState = Schema.Union(
  Schema.TaggedStruct("NotStarted", { reason: Schema.String }),
  Schema.TaggedStruct("Partial", { completed: Schema.NonNegativeInt, total: Schema.NonNegativeInt }),
  Schema.TaggedStruct("Completed", {}),
  Schema.TaggedStruct("Failed", { error: Schema.String })
)
export type SyncOpState = typeof SyncOpState.Type
