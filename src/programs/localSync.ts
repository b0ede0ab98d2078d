/** Local sync: the services/ tree on disk reconciled with the project database, per kind or all together, both ways. */
import * as nodePath from "node:path"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { Effect, Either, Layer } from "effect"
import { stringify } from "yaml"
import { CurrentConfig, type SyncConfig } from "../config.js"
import { AccessRuleKeyed, AgentKeyed, diffKeyed, type Keyed, SkillKeyed } from "../domain/diff.js"
import {
  ACCESS_RULES_PATH,
  agentPaths,
  contentPath,
  decodeUtf8,
  parseContent,
  parseSourceConfig,
  renderAccessRules,
  renderAgent,
  renderContent,
  renderSkill,
  type SourceConfig,
  skillPaths,
  sourceConfigPath
} from "../domain/formats.js"
import { canonicalJson, contentHash, contentKey, sha256 } from "../domain/hash.js"
import {
  type AccessRule,
  type Agent,
  type Content,
  type ContentLayout,
  type DiffCounts,
  type DiffResult,
  type DiffStatus,
  type LocalSyncDirection,
  LocalSyncError,
  LocalSyncResult,
  type Skill,
  SyncKind
} from "../domain/model.js"
import { isProjectFile, type Project, parseProject, type RawFile } from "../domain/project.js"
import { Conflict, DatabaseError, InvalidInput, type IoError, type SyncInProgress } from "../errors.js"
import * as Database from "../services/Database.js"
import * as Repos from "../services/repos/index.js"
import { note } from "../services/RunStatus.js"
import { Workspace } from "../services/Workspace.js"
import * as WorkspaceLive from "../services/Workspace.js"

export const ALL_KINDS: ReadonlyArray<SyncKind> = SyncKind.literals

export interface LocalSyncOptions {
  readonly direction: LocalSyncDirection
  /** Which kinds; all of them when left out. */
  readonly kinds?: ReadonlyArray<SyncKind> | undefined
  /** Compute and report the plan, write nothing anywhere. */
  readonly dryRun?: boolean | undefined
  /** Also delete what the other side no longer has (rows without a file, or files without a row). */
  readonly deleteOrphans?: boolean | undefined
  /** Allow deleting more than half of a kind on the side written to. */
  readonly force?: boolean | undefined
}

/** One action of a plan: a database upsert or delete, or a file write or removal. */
export interface PlanStep {
  readonly kind: SyncKind
  readonly action: "upsert" | "delete" | "write" | "remove"
  /** The item (`id`, `source/slug`, `entity_type:entity_id:access`), or `source:<name>` for a content source. */
  readonly key: string
  /** The item's status in the direction of the sync (Added: only on the side synced from). */
  readonly status: DiffStatus
  /** The files the step reads from (to the database) or writes and removes (to disk). */
  readonly paths: ReadonlyArray<string>
}

export interface LocalSyncReport {
  readonly direction: LocalSyncDirection
  readonly dry_run: boolean
  readonly results: ReadonlyArray<LocalSyncResult>
  readonly plan: ReadonlyArray<PlanStep>
}

export interface KindDiff {
  readonly kind: SyncKind
  readonly counts: DiffCounts
  /** Items that differ; Added is on disk only, Removed in the database only. */
  readonly changes: ReadonlyArray<{ readonly key: string; readonly status: DiffStatus }>
  readonly errors: ReadonlyArray<LocalSyncError>
}

export interface LocalDiffReport {
  readonly kinds: ReadonlyArray<KindDiff>
}

/** Every error of a report, for the exit code. */
// ---------------------------------------------------------------------------------------------------------
// Reading both sides

/** A content file on disk: its key from the path, its bytes and their SHA-256. */
interface ContentFile {
  readonly key: string
  readonly source: string
  readonly slug: string
  readonly path: string
  readonly bytes: Uint8Array
  readonly sha: string
}

/**
 * A content item on either side: its key and canonical hash, the item itself where it was read (a file whose
 * bytes are the ones its row was last synced with is not parsed: its hash is the row's), and its file if any.
 */
interface ContentRef {
  readonly key: string
  readonly source: string
  readonly slug: string
  readonly hash: string
  readonly item: Content | undefined
  readonly file: ContentFile | undefined
}

const ContentRefKeyed: Keyed<ContentRef> = { key: (r) => r.key, hash: (r) => r.hash }

interface DiskState {
  /** Agents, skills and access rules; content is scanned apart, see `contentFiles`. */
  readonly project: Project
  /** Shown before relative paths in messages. */
  readonly prefix: string
  /** Project files present, relative to the services root. */
  readonly files: ReadonlySet<string>
  /** One file per content key, by path order (a later duplicate is reported). */
  readonly contentFiles: ReadonlyArray<ContentFile>
  /** The layout of each content source, declared in its `source.yaml` or inferred from its files. */
  readonly sources: ReadonlyMap<string, ContentLayout>
  readonly sourceConfigs: ReadonlyMap<string, SourceConfig>
  /** Keys whose files did not parse: left alone in both directions. */
  readonly blocked: Record<SyncKind, Set<string>>
  readonly blockedSources: ReadonlySet<string>
  readonly errors: Record<SyncKind, Array<LocalSyncError>>
}

interface DbState {
  readonly agents: Repos.Listed<Agent>
  readonly skills: Repos.Listed<Skill>
  /** Keys and hashes of every content row; bodies are fetched only for the rows a run needs. */
  readonly contentMeta: ReadonlyMap<string, Repos.ContentMeta>
  readonly contentRows: ReadonlyMap<string, Repos.Stored<Content>>
  readonly contentInvalid: ReadonlyArray<Repos.InvalidRow>
  readonly sources: ReadonlyArray<Repos.ContentSource>
  readonly rules: Repos.Listed<AccessRule>
}

const emptyListed = { items: [], invalid: [] }

const perKind = <A>(make: () => A): Record<SyncKind, A> => ({
  agents: make(),
  skills: make(),
  content: make(),
  acl: make()
})

/** Which kind, and which key of it, a tree path belongs to. */
const classify = (
  rel: string
): { kind: SyncKind; key?: string; source?: string } | undefined => {
  const parts = rel.split("/")
  switch (parts[0]) {
    case "agents":
      return parts[1] === undefined ? undefined : { kind: "agents", key: parts[1] }
    case "skills":
      return parts[1] === undefined ? undefined : { kind: "skills", key: parts[1] }
    case "content": {
      const source = parts[1]
      if (source === undefined) return undefined
      if (parts.length === 3 && parts[2] === "source.yaml") return { kind: "content", source }
      if (parts.length === 3 && parts[2]!.endsWith(".md")) return { kind: "content", key: `${source}/${parts[2]!.slice(0, -3)}` }
      if (parts.length === 4) return { kind: "content", key: `${source}/${parts[2]}` }
      return { kind: "content", source }
    }
    case "access-control":
      return { kind: "acl", key: "*" }
    default:
      return undefined
  }
}

const readDisk = Effect.fn("LocalSync.readDisk")(function* () {
  const ws = yield* Workspace
  const listed = (yield* ws.listFiles()).filter((f) => isProjectFile(f.path))
  const bytes = yield* ws.readFiles(listed.map((f) => f.path))
  const raw: Array<RawFile> = listed.map((f, i) => ({ path: f.path, bytes: bytes[i]! }))
  const shown = nodePath.relative(process.cwd(), ws.root) || "."
  const prefix = `${shown}/`
  // Content is the bulk of a tree: it is scanned here and parsed later, only where its bytes are new.
  const project = parseProject(
    raw.filter((f) => !f.path.startsWith("content/")),
    prefix
  )
  const blocked = perKind(() => new Set<string>())
  const blockedSources = new Set<string>()
  const errors = perKind((): Array<LocalSyncError> => [])
  const report = (e: InvalidInput) => {
    const file = e.file ?? ""
    const rel = file.startsWith(prefix) ? file.slice(prefix.length) : file
    const c = classify(rel) ?? { kind: "agents" as const }
    errors[c.kind].push(new LocalSyncError({ item: file, message: e.message }))
    if (c.key !== undefined) blocked[c.kind].add(c.key)
    if (c.source !== undefined) blockedSources.add(c.source)
  }
  project.errors.forEach(report)

  const contentFiles: Array<ContentFile> = []
  const inferred = new Map<string, ContentLayout>()
  const sourceConfigs = new Map<string, SourceConfig>()
  const firstPath = new Map<string, string>()
  for (const f of raw) {
    const parts = f.path.split("/")
    if (parts[0] !== "content") continue
    const source = parts[1]!
    if (parts.length === 3 && parts[2] === "source.yaml") {
      const parsed = Either.flatMap(decodeUtf8(prefix + f.path, f.bytes), (text) => parseSourceConfig({ path: prefix + f.path, text }))
      if (Either.isLeft(parsed)) parsed.left.forEach(report)
      else sourceConfigs.set(source, parsed.right)
      continue
    }
    const layout: ContentLayout = parts.length === 4 ? "directory" : "flat"
    const slug = layout === "directory" ? parts[2]! : parts[2]!.slice(0, -".md".length)
    if (!inferred.has(source)) inferred.set(source, layout)
    const key = `${source}/${slug}`
    const earlier = firstPath.get(key)
    if (earlier !== undefined) {
      report(new InvalidInput({ file: prefix + f.path, reason: `duplicate content ${key}: also defined by ${prefix}${earlier}` }))
      continue
    }
    firstPath.set(key, f.path)
    contentFiles.push({ key, source, slug, path: f.path, bytes: f.bytes, sha: sha256(f.bytes) })
  }
  // A duplicate reports its key as blocked; the first file of that key still syncs.
  for (const f of contentFiles) if (blocked.content.has(f.key)) blocked.content.delete(f.key)
  const sources = new Map(inferred)
  for (const [source, c] of sourceConfigs) sources.set(source, c.layout)
  const files = new Set(raw.map((f) => f.path))
  const disk: DiskState = { project, prefix, files, contentFiles, sources, sourceConfigs, blocked, blockedSources, errors }
  return disk
})

const parseContentFile = (prefix: string, f: ContentFile): Either.Either<Content, ReadonlyArray<InvalidInput>> =>
  Either.flatMap(decodeUtf8(prefix + f.path, f.bytes), (text) => parseContent({ path: prefix + f.path, text }, f.source, f.slug))

/** The disk side of content: a file whose bytes its row was last synced with takes the row's hash unparsed. */
const diskContentRefs = (disk: DiskState, meta: ReadonlyMap<string, Repos.ContentMeta>) => {
  const refs: Array<ContentRef> = []
  const errors: Array<LocalSyncError> = []
  const blocked = new Set<string>()
  for (const f of disk.contentFiles) {
    if (disk.blockedSources.has(f.source)) continue
    const m = meta.get(f.key)
    if (m !== undefined && m.version_hash !== "" && m.file_sha256 === f.sha) {
      refs.push({ key: f.key, source: f.source, slug: f.slug, hash: m.version_hash, item: undefined, file: f })
      continue
    }
    const parsed = parseContentFile(disk.prefix, f)
    if (Either.isLeft(parsed)) {
      blocked.add(f.key)
      for (const e of parsed.left) errors.push(new LocalSyncError({ item: e.file ?? disk.prefix + f.path, message: e.message }))
      continue
    }
    refs.push({ key: f.key, source: f.source, slug: f.slug, hash: contentHash(parsed.right), item: parsed.right, file: f })
  }
  return { refs, errors, blocked }
}

/** The database side of content: every row's key and hash, with the item where its row was fetched. */
const dbContentRefs = (db: DbState): Array<ContentRef> => {
  const invalid = new Set(db.contentInvalid.map((r) => r.key))
  const refs: Array<ContentRef> = []
  for (const [key, m] of db.contentMeta) {
    if (invalid.has(key)) continue
    const row = db.contentRows.get(key)
    const hash = m.version_hash !== "" ? m.version_hash : row?.hash
    if (hash === undefined) continue
    refs.push({ key, source: m.source, slug: m.slug, hash, item: row?.item, file: undefined })
  }
  return refs
}

/** Content of both sides, ready to diff. */
interface ContentSides {
  readonly disk: ReadonlyArray<ContentRef>
  readonly db: ReadonlyArray<ContentRef>
  readonly errors: ReadonlyArray<LocalSyncError>
  /** Keys left alone: files that do not parse, rows that do not decode. */
  readonly blocked: ReadonlySet<string>
}

const contentSides = (disk: DiskState, db: DbState, diskSide = diskContentRefs(disk, db.contentMeta)): ContentSides => ({
  disk: diskSide.refs,
  db: dbContentRefs(db),
  errors: [...disk.errors.content, ...diskSide.errors],
  blocked: new Set([...disk.blocked.content, ...diskSide.blocked, ...db.contentInvalid.map((r) => r.key)])
})

const readDb = Effect.fn("LocalSync.readDb")(function* (kinds: ReadonlyArray<SyncKind>) {
  const has = (k: SyncKind) => kinds.includes(k)
  const agents = has("agents") ? yield* (yield* Repos.AgentsRepo).list() : emptyListed
  const skills = has("skills") ? yield* (yield* Repos.SkillsRepo).list() : emptyListed
  const contentsRepo = yield* Repos.ContentsRepo
  const meta = has("content") ? yield* contentsRepo.listMeta() : []
  // Rows edited by hand have no hash: fetch them to hash their fields.
  const stale = meta.filter((m) => m.version_hash === "")
  const fetched = stale.length > 0 ? yield* contentsRepo.fetch(stale) : emptyListed
  const sources = has("content") ? yield* contentsRepo.listSources() : []
  const rules = has("acl") ? yield* (yield* Repos.AccessRulesRepo).list() : emptyListed
  const db: DbState = {
    agents,
    skills,
    contentMeta: new Map(meta.map((m) => [`${m.source}/${m.slug}`, m])),
    contentRows: new Map(fetched.items.map((s) => [contentKey(s.item), s])),
    contentInvalid: fetched.invalid,
    sources,
    rules
  }
  return db
})

/** Fetches the rows of the content items a sync to disk writes. */
const fetchContentToWrite = Effect.fn("LocalSync.fetchContent")(function* (db: DbState, sides: ContentSides) {
  const d = diffKeyed(ContentRefKeyed, withoutBlocked(sides.db, sides.blocked), withoutBlocked(sides.disk, sides.blocked))
  const need = d.items.flatMap((i) =>
    (i.status === "Added" || i.status === "Modified") && i.source !== undefined && i.source.item === undefined ? [i.source] : []
  )
  if (need.length === 0) return db
  const fetched = yield* (yield* Repos.ContentsRepo).fetch(need)
  const rows = new Map(db.contentRows)
  for (const s of fetched.items) rows.set(contentKey(s.item), s)
  const next: DbState = { ...db, contentRows: rows, contentInvalid: [...db.contentInvalid, ...fetched.invalid] }
  return next
})

const withoutBlocked = (refs: ReadonlyArray<ContentRef>, blocked: ReadonlySet<string>) => refs.filter((r) => !blocked.has(r.key))

// ---------------------------------------------------------------------------------------------------------
// Planning (pure)

type DiskOp = { readonly op: "write"; readonly path: string; readonly text: string } | { readonly op: "remove"; readonly path: string }

type DbEffect = Effect.Effect<unknown, DatabaseError, Repos.Repos>

interface KindPlan {
  readonly result: LocalSyncResult
  readonly steps: ReadonlyArray<PlanStep>
  readonly db: ReadonlyArray<DbEffect>
  readonly disk: ReadonlyArray<DiskOp>
  /** Bookkeeping after the files are written (which file bytes each content row now matches); not a change. */
  readonly after: ReadonlyArray<DbEffect>
}

interface Ctx {
  readonly direction: LocalSyncDirection
  readonly dryRun: boolean
  readonly deleteOrphans: boolean
  readonly disk: DiskState
  readonly db: DbState
  readonly content: ContentSides
}

/** The keyed calculator with the database side hashed by its stored version_hash, so a round trip is Unchanged. */
const withStored = <A extends object>(base: Keyed<A>, stored: ReadonlyArray<Repos.Stored<A>>): Keyed<A> => {
  const hashes = new WeakMap<A, string>()
  for (const s of stored) hashes.set(s.item, s.hash)
  return { key: base.key, hash: (a) => hashes.get(a) ?? base.hash(a) }
}

/** Both sides of a kind with blocked keys taken out, diffed in the direction of the sync. */
const diffSides = <A extends object>(
  ctx: Ctx,
  base: Keyed<A>,
  diskItems: ReadonlyArray<A>,
  listed: Repos.Listed<A>,
  isBlocked: (key: string) => boolean
): DiffResult<A> => {
  const keyed = withStored(base, listed.items)
  const disk = diskItems.filter((a) => !isBlocked(base.key(a)))
  const db = listed.items.map((s) => s.item).filter((a) => !isBlocked(base.key(a)))
  return ctx.direction === "ToDatabase" ? diffKeyed(keyed, disk, db) : diffKeyed(keyed, db, disk)
}

const invalidRowErrors = (table: string, listed: Repos.Listed<unknown>) =>
  listed.invalid.map((r) => new LocalSyncError({ item: `database ${table} ${r.key}`, message: `row does not decode: ${r.reason}` }))

interface ItemKind<A> {
  readonly kind: SyncKind
  readonly table: string
  readonly keyed: Keyed<A>
  readonly diskItems: (ctx: Ctx) => ReadonlyArray<A>
  readonly listed: (ctx: Ctx) => Repos.Listed<A>
  readonly isBlocked: (ctx: Ctx) => (key: string) => boolean
  /** Problems found reading the disk side. */
  readonly errors: (ctx: Ctx) => ReadonlyArray<LocalSyncError>
  /** The files an item on disk is made of. */
  readonly diskPaths: (a: A, disk: DiskState) => ReadonlyArray<string>
  /** The files to write for an item from the database, given its current disk version. */
  readonly render: (a: A, onDisk: A | undefined, ctx: Ctx) => ReadonlyArray<{ readonly path: string; readonly text: string }>
  readonly upsert: (items: ReadonlyArray<A>) => DbEffect
  readonly remove: (items: ReadonlyArray<A>) => DbEffect
  /** The fields that go into the database, for the storable check. */
  readonly payload?: (a: A) => unknown
}

const planItems = <A extends object>(spec: ItemKind<A>, ctx: Ctx): KindPlan => {
  const { disk } = ctx
  const listed = spec.listed(ctx)
  const isBlocked = spec.isBlocked(ctx)
  const diff = diffSides(ctx, spec.keyed, spec.diskItems(ctx), listed, isBlocked)
  const steps: Array<PlanStep> = []
  const ops: Array<DiskOp> = []
  const toUpsert: Array<A> = []
  const toDelete: Array<A> = []
  const unstorable: Array<LocalSyncError> = []
  let synced = 0
  let deleted = 0
  let skipped = 0
  for (const item of diff.items) {
    const { status } = item
    if (status === "Unchanged") {
      skipped++
    } else if (status === "Added" || status === "Modified") {
      const a = item.source!
      const bad = ctx.direction === "ToDatabase" ? Repos.unstorable(spec.payload === undefined ? a : spec.payload(a)) : undefined
      if (bad !== undefined) {
        unstorable.push(new LocalSyncError({ item: `${spec.kind} ${item.key}`, message: `${spec.kind} ${item.key}: ${bad}; skipped` }))
        continue
      }
      synced++
      if (ctx.direction === "ToDatabase") {
        toUpsert.push(a)
        steps.push({ kind: spec.kind, action: "upsert", key: item.key, status, paths: spec.diskPaths(a, disk) })
      } else {
        const files = spec.render(a, item.target, ctx)
        ops.push(...files.map((f) => ({ op: "write" as const, ...f })))
        steps.push({ kind: spec.kind, action: "write", key: item.key, status, paths: files.map((f) => f.path) })
      }
    } else if (!ctx.deleteOrphans) {
      skipped++
    } else {
      const a = item.target!
      deleted++
      if (ctx.direction === "ToDatabase") {
        toDelete.push(a)
        steps.push({ kind: spec.kind, action: "delete", key: item.key, status, paths: [] })
      } else {
        const paths = spec.diskPaths(a, disk)
        ops.push(...paths.map((path) => ({ op: "remove" as const, path })))
        steps.push({ kind: spec.kind, action: "remove", key: item.key, status, paths })
      }
    }
  }
  const errors = [...spec.errors(ctx), ...unstorable, ...(ctx.direction === "ToDisk" ? invalidRowErrors(spec.table, listed) : [])]
  return {
    result: new LocalSyncResult({ kind: spec.kind, direction: ctx.direction, dry_run: ctx.dryRun, synced, skipped, deleted, errors }),
    steps,
    db: [
      ...(toUpsert.length > 0 ? [spec.upsert(toUpsert)] : []),
      ...(toDelete.length > 0 ? [spec.remove(toDelete)] : [])
    ],
    disk: ops,
    after: []
  }
}

const present = (disk: DiskState, paths: ReadonlyArray<string>) => paths.filter((p) => disk.files.has(p))

/** The agent or skill config without its Markdown part, to tell which of the two files changed. */
const configPart = <A extends object>(a: A, markdownField: keyof A): string => canonicalJson({ ...a, [markdownField]: null })

const agentsKind: ItemKind<Agent> = {
  kind: "agents",
  table: "agents",
  keyed: AgentKeyed,
  diskItems: (ctx) => ctx.disk.project.agents,
  listed: (ctx) => ctx.db.agents,
  isBlocked: (ctx) => (k) => ctx.disk.blocked.agents.has(k),
  errors: (ctx) => ctx.disk.errors.agents,
  diskPaths: (a, d) => present(d, Object.values(agentPaths(a.id))),
  render: (a, onDisk) => {
    const r = renderAgent(a)
    const p = agentPaths(a.id)
    return [
      ...(onDisk === undefined || configPart(a, "system_prompt") !== configPart(onDisk, "system_prompt") ? [{ path: p.config, text: r.config }] : []),
      ...(onDisk === undefined || a.system_prompt !== onDisk.system_prompt ? [{ path: p.prompt, text: r.prompt }] : [])
    ]
  },
  upsert: (items) => Effect.flatMap(Repos.AgentsRepo, (r) => r.upsert(items)),
  remove: (items) => Effect.flatMap(Repos.AgentsRepo, (r) => r.remove(items.map((a) => a.id)))
}

const skillsKind: ItemKind<Skill> = {
  kind: "skills",
  table: "skills",
  keyed: SkillKeyed,
  diskItems: (ctx) => ctx.disk.project.skills,
  listed: (ctx) => ctx.db.skills,
  isBlocked: (ctx) => (k) => ctx.disk.blocked.skills.has(k),
  errors: (ctx) => ctx.disk.errors.skills,
  diskPaths: (s, d) => present(d, Object.values(skillPaths(s.id))),
  render: (s, onDisk) => {
    const r = renderSkill(s)
    const p = skillPaths(s.id)
    return [
      ...(onDisk === undefined || configPart(s, "instructions") !== configPart(onDisk, "instructions") ? [{ path: p.config, text: r.config }] : []),
      ...(onDisk === undefined || s.instructions !== onDisk.instructions ? [{ path: p.instructions, text: r.instructions }] : [])
    ]
  },
  upsert: (items) => Effect.flatMap(Repos.SkillsRepo, (r) => r.upsert(items)),
  remove: (items) => Effect.flatMap(Repos.SkillsRepo, (r) => r.remove(items.map((s) => s.id)))
}

/** The layout a source is written with: what the disk shows, else what the database remembers, else flat. */
const layoutOf = (ctx: Ctx, source: string): ContentLayout =>
  ctx.disk.sources.get(source) ?? ctx.db.sources.find((s) => s.source === source)?.layout ?? "flat"

/** The item of a ref that has to be written somewhere; refs without one are always Unchanged (see diskContentRefs). */
const itemOf = (r: ContentRef): Content => {
  if (r.item === undefined) throw new Error(`content ${r.key} was planned for writing without being read`)
  return r.item
}

const contentKind: ItemKind<ContentRef> = {
  kind: "content",
  table: "contents",
  keyed: ContentRefKeyed,
  diskItems: (ctx) => ctx.content.disk,
  listed: (ctx) => ({ items: ctx.content.db.map((r) => ({ item: r, hash: r.hash })), invalid: ctx.db.contentInvalid }),
  isBlocked: (ctx) => (k) => ctx.content.blocked.has(k) || ctx.disk.blockedSources.has(k.slice(0, k.indexOf("/"))),
  errors: (ctx) => ctx.content.errors,
  diskPaths: (r) => (r.file === undefined ? [] : [r.file.path]),
  render: (r, onDisk, ctx) => [
    { path: onDisk?.file?.path ?? contentPath(r.source, r.slug, layoutOf(ctx, r.source)), text: renderContent(itemOf(r)) }
  ],
  upsert: (refs) =>
    Effect.flatMap(Repos.ContentsRepo, (repo) =>
      repo.upsert(
        refs.map(itemOf),
        new Map(refs.map((r) => [r.key, r.file === undefined ? { hash: r.hash } : { hash: r.hash, fileSha256: r.file.sha }]))
      )
    ),
  remove: (refs) => Effect.flatMap(Repos.ContentsRepo, (repo) => repo.remove(refs)),
  payload: (r) => r.item
}

/**
 * Which file bytes each content row matches after the run: the files just written, and unchanged files whose
 * row did not know its bytes yet. Lets the next run skip parsing them.
 */
const contentBookkeeping = (ctx: Ctx, ops: ReadonlyArray<DiskOp>): ReadonlyArray<DbEffect> => {
  const rows: Array<{ source: string; slug: string; version_hash: string; file_sha256: string }> = []
  const dbHash = new Map(ctx.content.db.map((r) => [r.key, r.hash]))
  const written = new Set<string>()
  if (ctx.direction === "ToDisk") {
    // sha256 of a string hashes its UTF-8 bytes: the bytes the file gets.
    for (const op of ops) {
      if (op.op !== "write") continue
      const c = classify(op.path)
      if (c?.kind !== "content" || c.key === undefined) continue
      const hash = dbHash.get(c.key)
      if (hash === undefined) continue
      const slash = c.key.indexOf("/")
      written.add(c.key)
      rows.push({ source: c.key.slice(0, slash), slug: c.key.slice(slash + 1), version_hash: hash, file_sha256: sha256(op.text) })
    }
  }
  for (const r of ctx.content.disk) {
    if (r.file === undefined || written.has(r.key) || dbHash.get(r.key) !== r.hash) continue
    if (ctx.db.contentMeta.get(r.key)?.file_sha256 === r.file.sha) continue
    rows.push({ source: r.source, slug: r.slug, version_hash: r.hash, file_sha256: r.file.sha })
  }
  return rows.length === 0 ? [] : [Effect.flatMap(Repos.ContentsRepo, (repo) => repo.setFileSha256(rows))]
}

/** Content sources: the database remembers each source's layout; the disk gets a source.yaml where one was declared. */
const planSources = (ctx: Ctx): Pick<KindPlan, "steps" | "db" | "disk"> => {
  const { disk, db } = ctx
  const stored = new Map(db.sources.map((s) => [s.source, s]))
  const steps: Array<PlanStep> = []
  if (ctx.direction === "ToDatabase") {
    const wanted: Array<Repos.ContentSource> = []
    for (const [source, layout] of disk.sources) {
      if (disk.blockedSources.has(source)) continue
      const config = disk.sourceConfigs.get(source)
      const s = new Repos.ContentSource({ source, layout, declared: config !== undefined, description: config?.description ?? null })
      const old = stored.get(source)
      if (old !== undefined && old.layout === s.layout && old.declared === s.declared && old.description === s.description) continue
      wanted.push(s)
      const paths = config === undefined ? [] : [sourceConfigPath(source)]
      steps.push({ kind: "content", action: "upsert", key: `source:${source}`, status: old === undefined ? "Added" : "Modified", paths })
    }
    return { steps, db: wanted.length > 0 ? [Effect.flatMap(Repos.ContentsRepo, (r) => r.upsertSources(wanted))] : [], disk: [] }
  }
  const ops: Array<DiskOp> = []
  for (const s of db.sources) {
    const path = sourceConfigPath(s.source)
    if (!s.declared || disk.files.has(path) || disk.blockedSources.has(s.source)) continue
    const text = stringify({ layout: s.layout, ...(s.description === null ? {} : { description: s.description }) })
    ops.push({ op: "write", path, text })
    steps.push({ kind: "content", action: "write", key: `source:${s.source}`, status: "Added", paths: [path] })
  }
  return { steps, db: [], disk: ops }
}

const entityOf = (r: Pick<AccessRule, "entity_type" | "entity_id">) => `${r.entity_type}:${r.entity_id}`

/**
 * Role rules. To the database: the file's rules replace the stored ones of every entity the file names
 * (a stored rule of such an entity that the file no longer has is deleted); rules of entities the file does
 * not name go only with --delete-orphans; user rules are never touched. To disk, the same in reverse.
 */
const planAcl = (ctx: Ctx): KindPlan => {
  const { disk, db } = ctx
  const errors = [...disk.errors.acl, ...(ctx.direction === "ToDisk" ? invalidRowErrors("access_rules", db.rules) : [])]
  const blocked = disk.blocked.acl.size > 0
  const empty = (skipped: number): KindPlan => ({
    result: new LocalSyncResult({ kind: "acl", direction: ctx.direction, dry_run: ctx.dryRun, synced: 0, skipped, deleted: 0, errors }),
    steps: [],
    db: [],
    disk: [],
    after: []
  })
  if (blocked) return empty(0)
  const diff = diffSides(ctx, AccessRuleKeyed, disk.project.accessRules, db.rules, () => false)
  const sourceEntities = new Set(
    (ctx.direction === "ToDatabase" ? disk.project.accessRules : db.rules.items.map((s) => s.item)).map(entityOf)
  )
  const steps: Array<PlanStep> = []
  const changed = new Set<string>()
  const dropped = new Set<string>()
  let skipped = 0
  for (const item of diff.items) {
    if (item.status === "Unchanged") skipped++
    else if (item.status === "Added" || item.status === "Modified") changed.add(item.key)
    else if (sourceEntities.has(entityOf(item.target!)) || ctx.deleteOrphans) dropped.add(item.key)
    else skipped++
  }
  const statusOf = new Map(diff.items.map((i) => [i.key, i.status]))
  const paths = [ACCESS_RULES_PATH]
  if (ctx.direction === "ToDatabase") {
    // Deletes run first, then upserts: the steps are listed in that order.
    const deletes = db.rules.items.map((s) => s.item).filter((r) => dropped.has(AccessRuleKeyed.key(r)))
    for (const r of deletes) steps.push({ kind: "acl", action: "delete", key: AccessRuleKeyed.key(r), status: "Removed", paths: [] })
    const upserts: Array<Repos.PlacedRule> = []
    disk.project.accessRules.forEach((rule, position) => {
      const key = AccessRuleKeyed.key(rule)
      if (!changed.has(key)) return
      const bad = Repos.unstorable(rule)
      if (bad !== undefined) {
        errors.push(new LocalSyncError({ item: `acl ${key}`, message: `acl ${key}: ${bad}; skipped` }))
        return
      }
      upserts.push({ rule, position })
      steps.push({ kind: "acl", action: "upsert", key, status: statusOf.get(key)!, paths })
    })
    const effects: Array<DbEffect> = [
      ...(deletes.length > 0 ? [Effect.flatMap(Repos.AccessRulesRepo, (r) => r.remove(deletes))] : []),
      ...(upserts.length > 0 ? [Effect.flatMap(Repos.AccessRulesRepo, (r) => r.upsert(upserts))] : [])
    ]
    return {
      result: new LocalSyncResult({ kind: "acl", direction: ctx.direction, dry_run: ctx.dryRun, synced: upserts.length, skipped, deleted: deletes.length, errors }),
      steps,
      db: effects,
      disk: [],
      after: []
    }
  }
  if (changed.size === 0 && dropped.size === 0) return empty(skipped)
  // The file keeps its order: changed rules in place, dropped ones out, new ones appended in database order.
  const fromDb = new Map(db.rules.items.map((s) => [AccessRuleKeyed.key(s.item), s.item]))
  const next: Array<AccessRule> = []
  for (const rule of disk.project.accessRules) {
    const key = AccessRuleKeyed.key(rule)
    if (dropped.has(key)) {
      steps.push({ kind: "acl", action: "remove", key, status: "Removed", paths })
      continue
    }
    if (changed.has(key)) steps.push({ kind: "acl", action: "write", key, status: "Modified", paths })
    next.push(changed.has(key) ? fromDb.get(key)! : rule)
  }
  for (const s of db.rules.items) {
    const key = AccessRuleKeyed.key(s.item)
    if (statusOf.get(key) !== "Added") continue
    next.push(s.item)
    steps.push({ kind: "acl", action: "write", key, status: "Added", paths })
  }
  return {
    result: new LocalSyncResult({ kind: "acl", direction: ctx.direction, dry_run: ctx.dryRun, synced: changed.size, skipped, deleted: dropped.size, errors }),
    steps,
    db: [],
    disk: [{ op: "write", path: ACCESS_RULES_PATH, text: renderAccessRules(next) }],
    after: []
  }
}

/** The whole plan of a run: per kind, what changes where. Pure. */
export const plan = (ctx: Ctx, kinds: ReadonlyArray<SyncKind>): ReadonlyArray<KindPlan> =>
  ALL_KINDS.filter((k) => kinds.includes(k)).map((kind): KindPlan => {
    if (kind === "agents") return planItems(agentsKind, ctx)
    if (kind === "skills") return planItems(skillsKind, ctx)
    if (kind === "acl") return planAcl(ctx)
    const items = planItems(contentKind, ctx)
    const sources = planSources(ctx)
    const disk = [...sources.disk, ...items.disk]
    return {
      result: items.result,
      steps: [...sources.steps, ...items.steps],
      db: [...sources.db, ...items.db],
      disk,
      after: contentBookkeeping(ctx, disk)
    }
  })

// ---------------------------------------------------------------------------------------------------------
// Running

const kindsOf = (kinds: ReadonlyArray<SyncKind> | undefined) => (kinds === undefined || kinds.length === 0 ? ALL_KINDS : kinds)

/** Serialises local syncs on one database, inside the run's transaction. */
const lockRun = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql`SELECT pg_advisory_xact_lock(hashtext('agentsync.local-sync'))`.pipe(
    Effect.mapError((cause) => new DatabaseError({ reason: `cannot lock the database for a local sync: ${cause.message}`, cause }))
  )
)

const inTransaction = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.withTransaction(Effect.zipRight(lockRun, effect)).pipe(
      Effect.mapError((e) =>
        e instanceof SqlError ? new DatabaseError({ reason: `transaction failed: ${Database.causeMessage(e)}`, cause: e }) : e
      )
    )
  )

/** Reads the database side (inside the run's transaction) and puts both sides together. */
const buildCtx = Effect.fn("LocalSync.read")(function* (
  base: Pick<Ctx, "direction" | "dryRun" | "deleteOrphans">,
  disk: DiskState,
  kinds: ReadonlyArray<SyncKind>
) {
  let db = yield* readDb(kinds)
  const diskSide = kinds.includes("content") ? diskContentRefs(disk, db.contentMeta) : { refs: [], errors: [], blocked: new Set<string>() }
  let content = contentSides(disk, db, diskSide)
  if (base.direction === "ToDisk" && kinds.includes("content")) {
    db = yield* fetchContentToWrite(db, content)
    content = contentSides(disk, db, diskSide)
  }
  const ctx: Ctx = { ...base, disk, db, content }
  return ctx
})

/** Disk vs database for the given kinds (all by default): Added is on disk only, Removed in the database only. */
export const diff = Effect.fn("LocalSync.diff")(function* (kinds?: ReadonlyArray<SyncKind>) {
  const chosen = kindsOf(kinds)
  const disk = yield* readDisk()
  const ctx = yield* inTransaction(buildCtx({ direction: "ToDatabase", dryRun: true, deleteOrphans: true }, disk, chosen))
  const summary = <A extends object>(spec: ItemKind<A>) => {
    const listed = spec.listed(ctx)
    const d = diffSides(ctx, spec.keyed, spec.diskItems(ctx), listed, spec.isBlocked(ctx))
    return { d, errors: [...spec.errors(ctx), ...invalidRowErrors(spec.table, listed)] }
  }
  const out: Array<KindDiff> = ALL_KINDS.filter((k) => chosen.includes(k)).map((kind) => {
    const { d, errors } =
      kind === "agents"
        ? summary(agentsKind)
        : kind === "skills"
          ? summary(skillsKind)
          : kind === "content"
            ? summary(contentKind)
            : {
                d:
                  ctx.disk.blocked.acl.size > 0
                    ? { items: [], counts: { added: 0, modified: 0, removed: 0, unchanged: 0 } }
                    : diffSides(ctx, AccessRuleKeyed, ctx.disk.project.accessRules, ctx.db.rules, () => false),
                errors: [...ctx.disk.errors.acl, ...invalidRowErrors("access_rules", ctx.db.rules)]
              }
    return {
      kind,
      counts: d.counts,
      changes: (d.items as ReadonlyArray<{ key: string; status: DiffStatus }>)
        .filter((i) => i.status !== "Unchanged")
        .map((i) => ({ key: i.key, status: i.status })),
      errors
    }
  })
  const report: LocalDiffReport = { kinds: out }
  return report
})

/** How many items of each kind the side a sync writes to holds. */
const sideSizes = (ctx: Ctx): Record<SyncKind, number> =>
  ctx.direction === "ToDatabase"
    ? { agents: ctx.db.agents.items.length, skills: ctx.db.skills.items.length, content: ctx.content.db.length, acl: ctx.db.rules.items.length }
    : { agents: ctx.disk.project.agents.length, skills: ctx.disk.project.skills.length, content: ctx.content.disk.length, acl: ctx.disk.project.accessRules.length }

/**
 * Refuses a run that would delete more than half of a kind on the side it writes to (an empty or mistyped
 * tree would otherwise empty the database), unless forced; the transaction is then rolled back whole.
 */
const guardDeletes = (ctx: Ctx, planned: ReadonlyArray<KindPlan>) => {
  const sizes = sideSizes(ctx)
  for (const p of planned) {
    const deletes = p.steps.filter((s) => (s.action === "delete" || s.action === "remove") && !s.key.startsWith("source:"))
    const kind = p.result.kind
    if (deletes.length > 0 && deletes.length > sizes[kind] * DELETE_THRESHOLD) {
      const where = ctx.direction === "ToDatabase" ? "rows in the database" : "items on disk"
      return Effect.fail(
        new Conflict({
          reason: `refusing to delete ${deletes.length} of ${sizes[kind]} ${kind} ${where} (more than half); nothing was changed. Check the services path, or pass --force if that is intended`,
          items: deletes.slice(0, 20).map((d) => `${kind} ${d.key}`)
        })
      )
    }
  }
  return Effect.void
}

/** Deleting more than this share of a kind needs --force. */
export const DELETE_THRESHOLD = 0.5

/**
 * One local sync: reads both sides, plans (pure), then applies the plan unless it is a dry run. The database
 * side is one transaction, held across the file writes of a sync to disk; files are written atomically.
 * Malformed files are reported in the results and skipped; the rest still syncs.
 */
export const sync = Effect.fn("LocalSync.sync")(function* (options: LocalSyncOptions) {
  const kinds = kindsOf(options.kinds)
  const dryRun = options.dryRun ?? false
  const base = { direction: options.direction, dryRun, deleteOrphans: options.deleteOrphans ?? false }
  const ws = yield* Workspace
  yield* note("local sync: reading the tree and the database; nothing changed yet")
  // What a killed sync to disk left in the tree (temp files, staged folders) goes first.
  if (!dryRun) yield* ws.sweepLitter()
  const disk = yield* readDisk()
  const plans = yield* inTransaction(
    Effect.gen(function* () {
      const ctx = yield* buildCtx(base, disk, kinds)
      const planned = plan(ctx, kinds)
      if (dryRun) return planned
      if (options.force !== true) yield* guardDeletes(ctx, planned)
      yield* note(
        options.direction === "ToDatabase"
          ? "local sync: writing to the database in one transaction; stopped, it is rolled back and nothing changed"
          : "local sync: writing files, each whole (old or new bytes, never half); the database's record of them is rolled back; run it again to finish"
      )
      for (const p of planned) for (const e of p.db) yield* e
      const ops = planned.flatMap((p) => p.disk)
      const files = Effect.zipRight(
        ws.writeFiles(ops.flatMap((o) => (o.op === "write" ? [{ path: o.path, bytes: o.text }] : []))),
        Effect.forEach(ops.filter((o) => o.op === "remove"), (o) => ws.removeFile(o.path), { concurrency: 64, discard: true })
      )
      // The bookkeeping runs beside the file writes (the database works while the files are created): it is in
      // the same transaction, which commits only once every write has succeeded.
      const after = Effect.forEach(
        planned.flatMap((p) => p.after),
        (e) => e,
        { discard: true }
      )
      yield* Effect.all([files, after], { concurrency: 2, discard: true })
      return planned
    })
  )
  if (!dryRun) yield* note("local sync: done and committed; only its report was not printed")
  const report: LocalSyncReport = {
    direction: options.direction,
    dry_run: dryRun,
    results: plans.map((p) => p.result),
    plan: plans.flatMap((p) => p.steps)
  }
  return report
})

export type LocalSyncRequirements = Workspace | Repos.Repos | SqlClient.SqlClient
export type LocalSyncFailure = IoError | DatabaseError | Conflict

/** Everything a local sync runs on: the workspace of the config and the migrated project database. */
export const layer = (config: Pick<SyncConfig, "servicesPath" | "projectRoot" | "databaseUrl">) =>
  Layer.mergeAll(WorkspaceLive.layer(config.servicesPath), Repos.layer).pipe(
    Layer.provideMerge(Database.layerMigrated(Database.optionsFromConfig(config)))
  )

/** The same, for the configuration in context. */
export const layerFromConfig: Layer.Layer<
  LocalSyncRequirements,
  DatabaseError | SyncInProgress,
  CurrentConfig
> = Layer.unwrapEffect(Effect.map(CurrentConfig, layer))

const forKind = (kind: SyncKind) => ({
  /** Disk vs database for this kind. */
  diff: () => Effect.map(diff([kind]), (r) => r.kinds[0]!),
  /** A local sync of this kind only. */
  sync: (options: Omit<LocalSyncOptions, "kinds">) => sync({ ...options, kinds: [kind] })
})

export const AgentsLocalSync = forKind("agents")
export const SkillsLocalSync = forKind("skills")
export const ContentLocalSync = forKind("content")
export const AccessControlLocalSync = forKind("acl")

/** The local sync program as one value. */
export const LocalSync = { diff, sync, plan, layer, layerFromConfig, ALL_KINDS } as const
