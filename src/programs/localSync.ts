/** Local sync: the services/ tree on disk reconciled with the project database, per kind or all together, both ways. */
import * as nodePath from "node:path"
import { SqlClient } from "@effect/sql"
import { SqlError } from "@effect/sql/SqlError"
import { Effect, Either, Layer } from "effect"
import { stringify } from "yaml"
import { CurrentConfig, type SyncConfig } from "../config.js"
import { AccessRuleKeyed, AgentKeyed, ContentKeyed, diffKeyed, type Keyed, SkillKeyed } from "../domain/diff.js"
import {
  ACCESS_RULES_PATH,
  agentPaths,
  contentPath,
  parseSourceConfig,
  renderAccessRules,
  renderAgent,
  renderContent,
  renderSkill,
  type SourceConfig,
  skillPaths,
  sourceConfigPath
} from "../domain/formats.js"
import { canonicalJson } from "../domain/hash.js"
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
  type SyncKind
} from "../domain/model.js"
import { isProjectFile, type Project, parseProject, type RawFile } from "../domain/project.js"
import { DatabaseError, type IoError, type SyncInProgress } from "../errors.js"
import * as Database from "../services/Database.js"
import * as Repos from "../services/repos/index.js"
import { Workspace } from "../services/Workspace.js"
import * as WorkspaceLive from "../services/Workspace.js"

export const ALL_KINDS: ReadonlyArray<SyncKind> = ["agents", "skills", "content", "acl"]

export interface LocalSyncOptions {
  readonly direction: LocalSyncDirection
  /** Which kinds; all of them when left out. */
  readonly kinds?: ReadonlyArray<SyncKind> | undefined
  /** Compute and report the plan, write nothing anywhere. */
  readonly dryRun?: boolean | undefined
  /** Also delete what the other side no longer has (rows without a file, or files without a row). */
  readonly deleteOrphans?: boolean | undefined
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
export const errorCount = (report: { readonly results: ReadonlyArray<{ readonly errors: ReadonlyArray<unknown> }> }) =>
  report.results.reduce((n, r) => n + r.errors.length, 0)

// ---------------------------------------------------------------------------------------------------------
// Reading both sides

interface DiskState {
  readonly project: Project
  /** Project files present, relative to the services root. */
  readonly files: ReadonlySet<string>
  /** Where each content item lives: `source/slug` → path. */
  readonly contentPaths: ReadonlyMap<string, string>
  readonly sourceConfigs: ReadonlyMap<string, SourceConfig>
  /** Keys whose files did not parse: left alone in both directions. */
  readonly blocked: Record<SyncKind, Set<string>>
  readonly blockedSources: ReadonlySet<string>
  readonly errors: Record<SyncKind, Array<LocalSyncError>>
}

interface DbState {
  readonly agents: Repos.Listed<Agent>
  readonly skills: Repos.Listed<Skill>
  readonly contents: Repos.Listed<Content>
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
  const raw: Array<RawFile> = yield* Effect.forEach(
    listed,
    (f) => Effect.map(ws.readFile(f.path), (bytes): RawFile => ({ path: f.path, bytes })),
    { concurrency: 64 }
  )
  const shown = nodePath.relative(process.cwd(), ws.root) || "."
  const prefix = `${shown}/`
  const project = parseProject(raw, prefix)

  const files = new Set(raw.map((f) => f.path))
  const contentPaths = new Map<string, string>()
  const sourceConfigs = new Map<string, SourceConfig>()
  for (const f of raw) {
    const c = classify(f.path)
    if (c?.kind !== "content") continue
    if (c.key !== undefined) contentPaths.set(c.key, f.path)
    else if (c.source !== undefined && f.path.endsWith("/source.yaml")) {
      const parsed = parseSourceConfig({ path: prefix + f.path, text: new TextDecoder().decode(f.bytes) })
      if (Either.isRight(parsed)) sourceConfigs.set(c.source, parsed.right)
    }
  }
  const blocked = perKind(() => new Set<string>())
  const blockedSources = new Set<string>()
  const errors = perKind((): Array<LocalSyncError> => [])
  for (const e of project.errors) {
    const file = e.file ?? ""
    const rel = file.startsWith(prefix) ? file.slice(prefix.length) : file
    const c = classify(rel) ?? { kind: "agents" as const }
    errors[c.kind].push(new LocalSyncError({ item: file, message: e.message }))
    if (c.key !== undefined) blocked[c.kind].add(c.key)
    if (c.source !== undefined) blockedSources.add(c.source)
  }
  const disk: DiskState = { project, files, contentPaths, sourceConfigs, blocked, blockedSources, errors }
  return disk
})

const readDb = Effect.fn("LocalSync.readDb")(function* (kinds: ReadonlyArray<SyncKind>) {
  const has = (k: SyncKind) => kinds.includes(k)
  const agents = has("agents") ? yield* (yield* Repos.AgentsRepo).list() : emptyListed
  const skills = has("skills") ? yield* (yield* Repos.SkillsRepo).list() : emptyListed
  const contentsRepo = yield* Repos.ContentsRepo
  const contents = has("content") ? yield* contentsRepo.list() : emptyListed
  const sources = has("content") ? yield* contentsRepo.listSources() : []
  const rules = has("acl") ? yield* (yield* Repos.AccessRulesRepo).list() : emptyListed
  const db: DbState = { agents, skills, contents, sources, rules }
  return db
})

// ---------------------------------------------------------------------------------------------------------
// Planning (pure)

type DiskOp = { readonly op: "write"; readonly path: string; readonly text: string } | { readonly op: "remove"; readonly path: string }

type DbEffect = Effect.Effect<unknown, DatabaseError, Repos.Repos>

interface KindPlan {
  readonly result: LocalSyncResult
  readonly steps: ReadonlyArray<PlanStep>
  readonly db: ReadonlyArray<DbEffect>
  readonly disk: ReadonlyArray<DiskOp>
}

interface Ctx {
  readonly direction: LocalSyncDirection
  readonly dryRun: boolean
  readonly deleteOrphans: boolean
  readonly disk: DiskState
  readonly db: DbState
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
  readonly diskItems: (disk: DiskState) => ReadonlyArray<A>
  readonly listed: (db: DbState) => Repos.Listed<A>
  readonly isBlocked: (disk: DiskState) => (key: string) => boolean
  /** The files an item on disk is made of. */
  readonly diskPaths: (a: A, disk: DiskState) => ReadonlyArray<string>
  /** The files to write for an item from the database, given its current disk version. */
  readonly render: (a: A, onDisk: A | undefined, ctx: Ctx) => ReadonlyArray<{ readonly path: string; readonly text: string }>
  readonly upsert: (items: ReadonlyArray<A>) => DbEffect
  readonly remove: (items: ReadonlyArray<A>) => DbEffect
}

const planItems = <A extends object>(spec: ItemKind<A>, ctx: Ctx): KindPlan => {
  const { disk } = ctx
  const listed = spec.listed(ctx.db)
  const isBlocked = spec.isBlocked(disk)
  const diff = diffSides(ctx, spec.keyed, spec.diskItems(disk), listed, isBlocked)
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
      const bad = ctx.direction === "ToDatabase" ? Repos.unstorable(a) : undefined
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
  const errors = [...disk.errors[spec.kind], ...unstorable, ...(ctx.direction === "ToDisk" ? invalidRowErrors(spec.table, listed) : [])]
  return {
    result: new LocalSyncResult({ kind: spec.kind, direction: ctx.direction, dry_run: ctx.dryRun, synced, skipped, deleted, errors }),
    steps,
    db: [
      ...(toUpsert.length > 0 ? [spec.upsert(toUpsert)] : []),
      ...(toDelete.length > 0 ? [spec.remove(toDelete)] : [])
    ],
    disk: ops
  }
}

const present = (disk: DiskState, paths: ReadonlyArray<string>) => paths.filter((p) => disk.files.has(p))

/** The agent or skill config without its Markdown part, to tell which of the two files changed. */
const configPart = <A extends object>(a: A, markdownField: keyof A): string => canonicalJson({ ...a, [markdownField]: null })

const agentsKind: ItemKind<Agent> = {
  kind: "agents",
  table: "agents",
  keyed: AgentKeyed,
  diskItems: (d) => d.project.agents,
  listed: (db) => db.agents,
  isBlocked: (d) => (k) => d.blocked.agents.has(k),
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
  diskItems: (d) => d.project.skills,
  listed: (db) => db.skills,
  isBlocked: (d) => (k) => d.blocked.skills.has(k),
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
  ctx.disk.project.sources.get(source) ?? ctx.db.sources.find((s) => s.source === source)?.layout ?? "flat"

const contentKind: ItemKind<Content> = {
  kind: "content",
  table: "contents",
  keyed: ContentKeyed,
  diskItems: (d) => d.project.contents,
  listed: (db) => db.contents,
  isBlocked: (d) => (k) => d.blocked.content.has(k) || d.blockedSources.has(k.slice(0, k.indexOf("/"))),
  diskPaths: (c, d) => {
    const path = d.contentPaths.get(`${c.source}/${c.slug}`)
    return path === undefined ? [] : [path]
  },
  render: (c, _onDisk, ctx) => [
    {
      path: ctx.disk.contentPaths.get(`${c.source}/${c.slug}`) ?? contentPath(c.source, c.slug, layoutOf(ctx, c.source)),
      text: renderContent(c)
    }
  ],
  upsert: (items) => Effect.flatMap(Repos.ContentsRepo, (r) => r.upsert(items)),
  remove: (items) => Effect.flatMap(Repos.ContentsRepo, (r) => r.remove(items))
}

/** Content sources: the database remembers each source's layout; the disk gets a source.yaml where one was declared. */
const planSources = (ctx: Ctx): Pick<KindPlan, "steps" | "db" | "disk"> => {
  const { disk, db } = ctx
  const stored = new Map(db.sources.map((s) => [s.source, s]))
  const steps: Array<PlanStep> = []
  if (ctx.direction === "ToDatabase") {
    const wanted: Array<Repos.ContentSource> = []
    for (const [source, layout] of disk.project.sources) {
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
    disk: []
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
      disk: []
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
    disk: [{ op: "write", path: ACCESS_RULES_PATH, text: renderAccessRules(next) }]
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
    return {
      result: items.result,
      steps: [...sources.steps, ...items.steps],
      db: [...sources.db, ...items.db],
      disk: [...sources.disk, ...items.disk]
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

/** Disk vs database for the given kinds (all by default): Added is on disk only, Removed in the database only. */
export const diff = Effect.fn("LocalSync.diff")(function* (kinds?: ReadonlyArray<SyncKind>) {
  const chosen = kindsOf(kinds)
  const disk = yield* readDisk()
  const db = yield* inTransaction(readDb(chosen))
  const ctx: Ctx = { direction: "ToDatabase", dryRun: true, deleteOrphans: true, disk, db }
  const out: Array<KindDiff> = ALL_KINDS.filter((k) => chosen.includes(k)).map((kind) => {
    const d =
      kind === "agents"
        ? diffSides(ctx, AgentKeyed, disk.project.agents, db.agents, (k) => disk.blocked.agents.has(k))
        : kind === "skills"
          ? diffSides(ctx, SkillKeyed, disk.project.skills, db.skills, (k) => disk.blocked.skills.has(k))
          : kind === "content"
            ? diffSides(ctx, ContentKeyed, disk.project.contents, db.contents, contentKind.isBlocked(disk))
            : disk.blocked.acl.size > 0
              ? { items: [], counts: { added: 0, modified: 0, removed: 0, unchanged: 0 } }
              : diffSides(ctx, AccessRuleKeyed, disk.project.accessRules, db.rules, () => false)
    const listed = kind === "agents" ? db.agents : kind === "skills" ? db.skills : kind === "content" ? db.contents : db.rules
    return {
      kind,
      counts: d.counts,
      changes: (d.items as ReadonlyArray<{ key: string; status: DiffStatus }>)
        .filter((i) => i.status !== "Unchanged")
        .map((i) => ({ key: i.key, status: i.status })),
      errors: [...disk.errors[kind], ...invalidRowErrors(kind === "acl" ? "access_rules" : kind, listed)]
    }
  })
  const report: LocalDiffReport = { kinds: out }
  return report
})

/**
 * One local sync: reads both sides, plans (pure), then applies the plan unless it is a dry run. The database
 * side is one transaction; files are written atomically. Malformed files are reported in the results and
 * skipped; the rest still syncs.
 */
export const sync = Effect.fn("LocalSync.sync")(function* (options: LocalSyncOptions) {
  const kinds = kindsOf(options.kinds)
  const dryRun = options.dryRun ?? false
  const base = { direction: options.direction, dryRun, deleteOrphans: options.deleteOrphans ?? false }
  const disk = yield* readDisk()
  let plans: ReadonlyArray<KindPlan>
  if (options.direction === "ToDatabase") {
    plans = yield* inTransaction(
      Effect.gen(function* () {
        const db = yield* readDb(kinds)
        const planned = plan({ ...base, disk, db }, kinds)
        if (!dryRun) for (const p of planned) for (const e of p.db) yield* e
        return planned
      })
    )
  } else {
    const db = yield* inTransaction(readDb(kinds))
    plans = plan({ ...base, disk, db }, kinds)
    if (!dryRun) {
      const ws = yield* Workspace
      const ops = plans.flatMap((p) => p.disk)
      yield* Effect.forEach(ops.filter((o) => o.op === "write"), (o) => ws.writeFile(o.path, o.text), { concurrency: 32, discard: true })
      yield* Effect.forEach(ops.filter((o) => o.op === "remove"), (o) => ws.removeFile(o.path), { concurrency: 32, discard: true })
    }
  }
  const report: LocalSyncReport = {
    direction: options.direction,
    dry_run: dryRun,
    results: plans.map((p) => p.result),
    plan: plans.flatMap((p) => p.steps)
  }
  return report
})

export type LocalSyncRequirements = Workspace | Repos.Repos | SqlClient.SqlClient
export type LocalSyncFailure = IoError | DatabaseError

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
