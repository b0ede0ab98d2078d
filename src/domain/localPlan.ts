/** The plan of a local sync as data: per kind, the database and disk operations that make one side equal the other. Pure. */
import { stringify } from "yaml"
import { AccessRuleKeyed, diffKeyed, type Keyed } from "./diff.js"
import {
  ACCESS_RULES_PATH,
  agentPaths,
  contentPath,
  renderAccessRules,
  renderAgent,
  renderSkill,
  skillPaths,
  sourceConfigPath
} from "./formats.js"
import { accessRuleHash } from "./hash.js"
import {
  type AttachmentFile,
  agentIdent,
  attachmentIdent,
  type ContentRow,
  contentIdent,
  type DbSide,
  type DiskSide,
  type ItemFileRow,
  isTrusted,
  skillIdent
} from "./localSides.js"
import {
  type AccessRule,
  type Agent,
  type Content,
  ContentSource,
  type DiffStatus,
  type LocalSyncDirection,
  LocalSyncError,
  LocalSyncResult,
  type Skill,
  SyncKind
} from "./model.js"
import type { ContentFile } from "./project.js"
import { type Listed, unstorable } from "./stored.js"

export const ALL_KINDS: ReadonlyArray<SyncKind> = SyncKind.literals

/** A role rule with its place in the file. */
export interface PlacedRule {
  readonly rule: AccessRule
  readonly position: number
}

/** A content item to store, with the SHA-256 of the file it is (or is written as). */
export interface ContentWrite {
  readonly item: Content
  readonly fileSha: string
}

/** A database operation of a plan. */
export type DbOp =
  | { readonly _tag: "UpsertAgents"; readonly items: ReadonlyArray<Agent> }
  | { readonly _tag: "DeleteAgents"; readonly ids: ReadonlyArray<string> }
  | { readonly _tag: "UpsertSkills"; readonly items: ReadonlyArray<Skill> }
  | { readonly _tag: "DeleteSkills"; readonly ids: ReadonlyArray<string> }
  | { readonly _tag: "UpsertContents"; readonly items: ReadonlyArray<ContentWrite> }
  | {
      readonly _tag: "DeleteContents"
      readonly keys: ReadonlyArray<{ readonly source: string; readonly slug: string }>
    }
  /** After a sync to disk: rows now match these files; only where the row still has `expectedHash`. */
  | { readonly _tag: "RecordContents"; readonly items: ReadonlyArray<ContentWrite & { readonly expectedHash: string }> }
  | { readonly _tag: "UpsertSources"; readonly sources: ReadonlyArray<ContentSource> }
  | { readonly _tag: "UpsertRules"; readonly rules: ReadonlyArray<PlacedRule> }
  | { readonly _tag: "DeleteRules"; readonly rules: ReadonlyArray<AccessRule> }
  | { readonly _tag: "UpsertFiles"; readonly files: ReadonlyArray<AttachmentFile> }
  | { readonly _tag: "DeleteFiles"; readonly paths: ReadonlyArray<string> }

/** A disk operation of a plan; paths are relative to services/. */
export type DiskOp =
  | { readonly _tag: "WriteText"; readonly path: string; readonly text: string }
  /** A file stored by digest: its bytes are fetched when the plan is applied. */
  | { readonly _tag: "WriteBlob"; readonly path: string; readonly sha: string; readonly mode: number }
  | { readonly _tag: "Remove"; readonly path: string }

/** One line of the plan as shown to a user. */
export interface PlanStep {
  readonly kind: SyncKind
  readonly action: "upsert" | "delete" | "write" | "remove"
  /** The item (`id`, `source/slug`, `entity_type:entity_id:access`), `source:<name>` or `file:<path>`. */
  readonly key: string
  /** The item's status in the direction of the sync (Added: only on the side synced from). */
  readonly status: DiffStatus
  readonly paths: ReadonlyArray<string>
}

export interface KindPlan {
  readonly kind: SyncKind
  readonly result: LocalSyncResult
  readonly steps: ReadonlyArray<PlanStep>
  readonly db: ReadonlyArray<DbOp>
  readonly disk: ReadonlyArray<DiskOp>
  /** Bookkeeping beside the file writes: which file each row now matches. Not a change. */
  readonly after: ReadonlyArray<DbOp>
}

export interface PlanOptions {
  readonly direction: LocalSyncDirection
  readonly dryRun: boolean
  readonly deleteOrphans: boolean
}

/** An item of one side reduced to what a plan needs: key, identity, and the item where there is one. */
interface Unit<A> {
  readonly key: string
  readonly ident: string
  readonly item: A
  readonly paths: ReadonlyArray<string>
}

const UnitKeyed: Keyed<Unit<unknown>> = { key: (u) => u.key, hash: (u) => u.ident }

/** A kind's plan being built. */
class Builder {
  readonly steps: Array<PlanStep> = []
  readonly db: Array<DbOp> = []
  readonly disk: Array<DiskOp> = []
  readonly after: Array<DbOp> = []
  readonly errors: Array<LocalSyncError> = []
  synced = 0
  skipped = 0
  deleted = 0
  constructor(
    readonly kind: SyncKind,
    readonly options: PlanOptions
  ) {}
  done(errors: ReadonlyArray<LocalSyncError>): KindPlan {
    const o = this.options
    return {
      kind: this.kind,
      result: new LocalSyncResult({
        kind: this.kind,
        direction: o.direction,
        dry_run: o.dryRun,
        synced: this.synced,
        skipped: this.skipped,
        deleted: this.deleted,
        errors: [...errors, ...this.errors]
      }),
      steps: this.steps,
      db: this.db.filter(nonEmpty),
      disk: this.disk,
      after: this.after.filter(nonEmpty)
    }
  }
}

const nonEmpty = (op: DbOp): boolean => {
  switch (op._tag) {
    case "UpsertAgents":
    case "UpsertSkills":
    case "UpsertContents":
    case "RecordContents":
      return op.items.length > 0
    case "DeleteAgents":
    case "DeleteSkills":
      return op.ids.length > 0
    case "DeleteContents":
      return op.keys.length > 0
    case "UpsertSources":
      return op.sources.length > 0
    case "UpsertRules":
      return op.rules.length > 0
    case "DeleteRules":
      return op.rules.length > 0
    case "UpsertFiles":
      return op.files.length > 0
    case "DeleteFiles":
      return op.paths.length > 0
  }
}

/**
 * Diffs the units of both sides in the direction of the sync (source first) and calls back for each change;
 * blocked keys are left out of both sides, so a file that does not parse never turns into a deletion.
 */
const walk = <D, B>(
  b: Builder,
  disk: ReadonlyArray<Unit<D>>,
  db: ReadonlyArray<Unit<B>>,
  blocked: (key: string) => boolean,
  on: {
    readonly toDb: (u: Unit<D>, status: "Added" | "Modified") => void
    readonly toDisk: (u: Unit<B>, onDisk: Unit<D> | undefined, status: "Added" | "Modified") => void
    readonly deleteRow: (u: Unit<B>) => void
    readonly removeFile: (u: Unit<D>) => void
  }
) => {
  const d = disk.filter((u) => !blocked(u.key))
  const r = db.filter((u) => !blocked(u.key))
  const toDb = b.options.direction === "ToDatabase"
  const diff = toDb
    ? diffKeyed(UnitKeyed, d as ReadonlyArray<Unit<unknown>>, r)
    : diffKeyed(UnitKeyed, r as ReadonlyArray<Unit<unknown>>, d)
  for (const i of diff.items) {
    if (i.status === "Unchanged") b.skipped++
    else if (i.status === "Added" || i.status === "Modified") {
      if (toDb) on.toDb(i.source as Unit<D>, i.status)
      else on.toDisk(i.source as Unit<B>, i.target as Unit<D> | undefined, i.status)
    } else if (!b.options.deleteOrphans) b.skipped++
    else {
      b.deleted++
      if (toDb) on.deleteRow(i.target as Unit<B>)
      else on.removeFile(i.target as Unit<D>)
    }
  }
}

const invalidRowErrors = (table: string, invalid: ReadonlyArray<{ readonly key: string; readonly reason: string }>) =>
  invalid.map(
    (r) =>
      new LocalSyncError({
        item: `database ${table} ${r.key}`,
        message: `row ${r.key} of ${table} does not decode (${r.reason}); left alone`
      })
  )

/** A value PostgreSQL cannot store: reported, skipped. */
const storable = (b: Builder, key: string, value: unknown): boolean => {
  const bad = unstorable(value)
  if (bad === undefined) return true
  b.errors.push(new LocalSyncError({ item: `${b.kind} ${key}`, message: `${b.kind} ${key}: ${bad}; skipped` }))
  return false
}

// ---------------------------------------------------------------------------------------------------------
// Agents and skills: few items, compared by what their files say

const planAgentsOrSkills = <A extends Agent | Skill>(
  kind: "agents" | "skills",
  o: PlanOptions,
  disk: DiskSide,
  db: DbSide,
  onDisk: ReadonlyArray<A>,
  listed: Listed<A>,
  spec: {
    readonly ident: (a: A) => string
    readonly paths: (a: A) => ReadonlyArray<string>
    readonly render: (a: A) => ReadonlyArray<{ readonly path: string; readonly text: string }>
    readonly upsert: (items: ReadonlyArray<A>) => DbOp
    readonly remove: (ids: ReadonlyArray<string>) => DbOp
  }
): KindPlan => {
  const b = new Builder(kind, o)
  const unit = (a: A): Unit<A> => ({
    key: a.id,
    ident: spec.ident(a),
    item: a,
    paths: spec.paths(a).filter((p) => disk.files.has(p))
  })
  const upserts: Array<A> = []
  const deletes: Array<string> = []
  walk(
    b,
    onDisk.map(unit),
    listed.items.map((s) => unit(s.item)),
    (k) => disk.blocked[kind].has(k),
    {
      toDb: (u, status) => {
        if (!storable(b, u.key, u.item)) return
        b.synced++
        upserts.push(u.item)
        b.steps.push({ kind, action: "upsert", key: u.key, status, paths: u.paths })
      },
      toDisk: (u, there, status) => {
        b.synced++
        const files = spec.render(u.item)
        const old = new Map(there === undefined ? [] : spec.render(there.item).map((f) => [f.path, f.text]))
        const writes = files.filter((f) => old.get(f.path) !== f.text)
        for (const f of writes) b.disk.push({ _tag: "WriteText", path: f.path, text: f.text })
        // Written in another form than the disk has: the old form's files go.
        const removes = (there?.paths ?? []).filter((p) => !files.some((f) => f.path === p))
        for (const p of removes) b.disk.push({ _tag: "Remove", path: p })
        b.steps.push({ kind, action: "write", key: u.key, status, paths: [...writes.map((f) => f.path), ...removes] })
      },
      deleteRow: (u) => {
        deletes.push(u.key)
        b.steps.push({ kind, action: "delete", key: u.key, status: "Removed", paths: [] })
      },
      removeFile: (u) => {
        for (const p of u.paths) b.disk.push({ _tag: "Remove", path: p })
        b.steps.push({ kind, action: "remove", key: u.key, status: "Removed", paths: u.paths })
      }
    }
  )
  b.db.push(spec.upsert(upserts), spec.remove(deletes))
  planAttachments(b, disk, db, kind)
  return b.done([...disk.errors[kind], ...(o.direction === "ToDisk" ? invalidRowErrors(kind, listed.invalid) : [])])
}

// ---------------------------------------------------------------------------------------------------------
// Files beside items: content-addressed, compared by digest and mode

const planAttachments = (b: Builder, disk: DiskSide, db: DbSide, kind: "agents" | "skills" | "content") => {
  const diskUnits = disk.attachments
    .filter((a) => a.kind === kind)
    .map(
      (a): Unit<AttachmentFile> => ({
        key: `file:${a.path}`,
        ident: attachmentIdent(a.sha, a.mode),
        item: a,
        paths: [a.path]
      })
    )
  const dbUnits = db.attachments
    .filter((r) => r.kind === kind)
    .map(
      (r): Unit<ItemFileRow> => ({
        key: `file:${r.path}`,
        ident: attachmentIdent(r.sha256, r.mode),
        item: r,
        paths: [r.path]
      })
    )
  const upserts: Array<AttachmentFile> = []
  const deletes: Array<string> = []
  walk(b, diskUnits, dbUnits, (k) => disk.blocked[kind].has(k), {
    toDb: (u, status) => {
      b.synced++
      upserts.push(u.item)
      b.steps.push({ kind, action: "upsert", key: u.key, status, paths: u.paths })
    },
    toDisk: (u, _there, status) => {
      b.synced++
      b.disk.push({ _tag: "WriteBlob", path: u.item.path, sha: u.item.sha256, mode: u.item.mode })
      b.steps.push({ kind, action: "write", key: u.key, status, paths: u.paths })
    },
    deleteRow: (u) => {
      deletes.push(u.item.path)
      b.steps.push({ kind, action: "delete", key: u.key, status: "Removed", paths: [] })
    },
    removeFile: (u) => {
      b.disk.push({ _tag: "Remove", path: u.item.path })
      b.steps.push({ kind, action: "remove", key: u.key, status: "Removed", paths: u.paths })
    }
  })
  b.db.push({ _tag: "UpsertFiles", files: upserts }, { _tag: "DeleteFiles", paths: deletes })
}

// ---------------------------------------------------------------------------------------------------------
// Content: many items, compared by where their file is and its digest

const planContent = (o: PlanOptions, disk: DiskSide, db: DbSide): KindPlan => {
  const b = new Builder("content", o)
  planSources(b, disk, db)
  const diskUnits = disk.contents.map(
    (f): Unit<ContentFile> => ({ key: f.key, ident: contentIdent(f.path, f.sha), item: f, paths: [contentPath(f)] })
  )
  const dbUnits = db.contents.map(
    (r): Unit<ContentRow> => ({ key: r.key, ident: r.ident, item: r, paths: [contentPath(r)] })
  )
  const blocked = new Set([...disk.blocked.content, ...db.contentInvalid.map((r) => r.key)])
  const upserts: Array<ContentWrite> = []
  const deletes: Array<{ source: string; slug: string }> = []
  const onDisk = new Map(disk.contents.map((f) => [f.key, f]))
  walk(b, diskUnits, dbUnits, (k) => blocked.has(k) || disk.blockedSources.has(k.slice(0, k.indexOf("/"))), {
    toDb: (u, status) => {
      const item = u.item.item
      if (item === undefined) throw new Error(`content ${u.key} was planned for the database without being read`)
      if (!storable(b, u.key, item)) return
      b.synced++
      upserts.push({ item, fileSha: u.item.sha })
      b.steps.push({ kind: "content", action: "upsert", key: u.key, status, paths: u.paths })
    },
    toDisk: (u, there, status) => {
      const row = u.item
      if (row.item === undefined || row.text === undefined)
        throw new Error(`content ${u.key} was planned for writing without being read`)
      b.synced++
      const write = contentPath(row.item)
      b.disk.push({ _tag: "WriteText", path: write, text: row.text })
      const moved = there !== undefined && there.paths[0] !== write ? there.paths : []
      for (const p of moved) b.disk.push({ _tag: "Remove", path: p })
      b.steps.push({ kind: "content", action: "write", key: u.key, status, paths: [write, ...moved] })
    },
    deleteRow: (u) => {
      deletes.push({ source: u.item.source, slug: u.item.slug })
      b.steps.push({ kind: "content", action: "delete", key: u.key, status: "Removed", paths: [] })
    },
    removeFile: (u) => {
      b.disk.push({ _tag: "Remove", path: u.paths[0]! })
      b.steps.push({ kind: "content", action: "remove", key: u.key, status: "Removed", paths: u.paths })
    }
  })
  b.db.push({ _tag: "UpsertContents", items: upserts }, { _tag: "DeleteContents", keys: deletes })
  // Rows that were rendered (edited by hand, or never written by this version) learn the file they now match,
  // when it is written now or already on disk; the next run then trusts them without rendering.
  const written = new Set(b.disk.flatMap((op) => (op._tag === "WriteText" ? [op.path] : [])))
  const record: Array<ContentWrite & { expectedHash: string }> = []
  for (const r of db.contents) {
    if (r.item === undefined || r.text === undefined || blocked.has(r.key)) continue
    if (isTrusted(r.meta)) continue
    const file = onDisk.get(r.key)
    if (written.has(contentPath(r.item)) || (file !== undefined && contentIdent(file.path, file.sha) === r.ident)) {
      record.push({
        item: r.item,
        fileSha: r.ident.slice(r.ident.lastIndexOf("\0") + 1),
        expectedHash: r.meta.version_hash
      })
    }
  }
  b.after.push({ _tag: "RecordContents", items: record })
  planAttachments(b, disk, db, "content")
  const errors = [
    ...disk.errors.content,
    ...(o.direction === "ToDisk" ? invalidRowErrors("contents", db.contentInvalid) : [])
  ]
  return b.done(errors)
}

/** Content sources: the database remembers each source's layout; the disk gets a source.yaml where one was declared. */
const planSources = (b: Builder, disk: DiskSide, db: DbSide) => {
  const stored = new Map(db.sources.map((s) => [s.source, s]))
  if (b.options.direction === "ToDatabase") {
    const wanted: Array<ContentSource> = []
    for (const [source, layout] of disk.sources) {
      if (disk.blockedSources.has(source)) continue
      const config = disk.sourceConfigs.get(source)
      const s = new ContentSource({
        source,
        layout,
        declared: config !== undefined,
        description: config?.description ?? null,
        original: config?.original ?? null
      })
      const old = stored.get(source)
      if (
        old !== undefined &&
        old.layout === s.layout &&
        old.declared === s.declared &&
        old.description === s.description &&
        old.original === s.original
      )
        continue
      wanted.push(s)
      b.steps.push({
        kind: "content",
        action: "upsert",
        key: `source:${source}`,
        status: old === undefined ? "Added" : "Modified",
        paths: config === undefined ? [] : [sourceConfigPath(source)]
      })
    }
    b.db.push({ _tag: "UpsertSources", sources: wanted })
    return
  }
  for (const s of db.sources) {
    const path = sourceConfigPath(s.source)
    if (!s.declared || disk.files.has(path) || disk.blockedSources.has(s.source)) continue
    const text =
      s.original ?? stringify({ layout: s.layout, ...(s.description === null ? {} : { description: s.description }) })
    b.disk.push({ _tag: "WriteText", path, text })
    b.steps.push({ kind: "content", action: "write", key: `source:${s.source}`, status: "Added", paths: [path] })
  }
}

// ---------------------------------------------------------------------------------------------------------
// Access rules

const entityOf = (r: Pick<AccessRule, "entity_type" | "entity_id">) => `${r.entity_type}:${r.entity_id}`

/**
 * Role rules. To the database: the file's rules replace the stored ones of every entity the file names
 * (a stored rule of such an entity that the file no longer has is deleted); rules of entities the file does
 * not name go only with --delete-orphans; user rules are never touched. To disk, the same in reverse.
 */
export const diffRules = (o: Pick<PlanOptions, "direction">, disk: DiskSide, db: DbSide) => {
  const hashes = new WeakMap<AccessRule, string>()
  for (const s of db.rules.items) hashes.set(s.item, s.hash)
  const keyed: Keyed<AccessRule> = { key: AccessRuleKeyed.key, hash: (r) => hashes.get(r) ?? accessRuleHash(r) }
  const fromDb = db.rules.items.map((s) => s.item)
  if (disk.blocked.acl.size > 0) return diffKeyed(keyed, [], [])
  return o.direction === "ToDatabase"
    ? diffKeyed(keyed, disk.project.accessRules, fromDb)
    : diffKeyed(keyed, fromDb, disk.project.accessRules)
}

const planAcl = (o: PlanOptions, disk: DiskSide, db: DbSide): KindPlan => {
  const b = new Builder("acl", o)
  const errors = [
    ...disk.errors.acl,
    ...(o.direction === "ToDisk" ? invalidRowErrors("access_rules", db.rules.invalid) : [])
  ]
  const diff = diffRules(o, disk, db)
  const fromDb = db.rules.items.map((s) => s.item)
  const sourceEntities = new Set((o.direction === "ToDatabase" ? disk.project.accessRules : fromDb).map(entityOf))
  const changed = new Set<string>()
  const dropped = new Set<string>()
  for (const item of diff.items) {
    if (item.status === "Unchanged") b.skipped++
    else if (item.status === "Added" || item.status === "Modified") changed.add(item.key)
    else if (sourceEntities.has(entityOf(item.target!)) || o.deleteOrphans) dropped.add(item.key)
    else b.skipped++
  }
  const statusOf = new Map(diff.items.map((i) => [i.key, i.status]))
  const paths = [ACCESS_RULES_PATH]
  if (o.direction === "ToDatabase") {
    // Deletes run first, then upserts: the steps are listed in that order.
    const deletes = fromDb.filter((r) => dropped.has(AccessRuleKeyed.key(r)))
    for (const r of deletes)
      b.steps.push({ kind: "acl", action: "delete", key: AccessRuleKeyed.key(r), status: "Removed", paths: [] })
    const upserts: Array<PlacedRule> = []
    disk.project.accessRules.forEach((rule, position) => {
      const key = AccessRuleKeyed.key(rule)
      if (!changed.has(key) || !storable(b, key, rule)) return
      upserts.push({ rule, position })
      b.steps.push({ kind: "acl", action: "upsert", key, status: statusOf.get(key)!, paths })
    })
    b.db.push({ _tag: "DeleteRules", rules: deletes }, { _tag: "UpsertRules", rules: upserts })
    b.synced = upserts.length
    b.deleted = deletes.length
    return b.done(errors)
  }
  if (changed.size === 0 && dropped.size === 0) return b.done(errors)
  // The file keeps its order: changed rules in place, dropped ones out, new ones appended in database order.
  const byKey = new Map(fromDb.map((r) => [AccessRuleKeyed.key(r), r]))
  const next: Array<AccessRule> = []
  for (const rule of disk.project.accessRules) {
    const key = AccessRuleKeyed.key(rule)
    if (dropped.has(key)) {
      b.steps.push({ kind: "acl", action: "remove", key, status: "Removed", paths })
      continue
    }
    if (changed.has(key)) b.steps.push({ kind: "acl", action: "write", key, status: "Modified", paths })
    next.push(changed.has(key) ? byKey.get(key)! : rule)
  }
  for (const r of fromDb) {
    const key = AccessRuleKeyed.key(r)
    if (statusOf.get(key) !== "Added") continue
    next.push(r)
    b.steps.push({ kind: "acl", action: "write", key, status: "Added", paths })
  }
  b.disk.push({ _tag: "WriteText", path: ACCESS_RULES_PATH, text: renderAccessRules(next) })
  b.synced = changed.size
  b.deleted = dropped.size
  return b.done(errors)
}

// ---------------------------------------------------------------------------------------------------------

/** The whole plan of a run: per kind, what changes where. */
export const plan = (
  o: PlanOptions,
  disk: DiskSide,
  db: DbSide,
  kinds: ReadonlyArray<SyncKind>
): ReadonlyArray<KindPlan> =>
  ALL_KINDS.filter((k) => kinds.includes(k)).map((kind): KindPlan => {
    switch (kind) {
      case "agents":
        return planAgentsOrSkills("agents", o, disk, db, disk.project.agents, db.agents, {
          ident: agentIdent,
          paths: agentPaths,
          render: renderAgent,
          upsert: (items) => ({ _tag: "UpsertAgents", items }),
          remove: (ids) => ({ _tag: "DeleteAgents", ids })
        })
      case "skills":
        return planAgentsOrSkills("skills", o, disk, db, disk.project.skills, db.skills, {
          ident: skillIdent,
          paths: skillPaths,
          render: renderSkill,
          upsert: (items) => ({ _tag: "UpsertSkills", items }),
          remove: (ids) => ({ _tag: "DeleteSkills", ids })
        })
      case "content":
        return planContent(o, disk, db)
      default:
        return planAcl(o, disk, db)
    }
  })
