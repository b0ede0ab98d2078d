/** Building a kind's plan: the builder that gathers steps and operations, the diff walk, and the files beside items. */
import { diffKeyed, type Keyed } from "../diff.js"
import { type AttachmentFile, attachmentIdent, type DbSide, type DiskSide, type ItemFileRow } from "../localSides.js"
import { gitMode, type ItemMode, keptMode, LocalSyncError, LocalSyncResult, type SyncKind } from "../model.js"
import { unstorable } from "../stored.js"
import type { DbOp, DiskOp, KindPlan, PlanOptions, PlanStep } from "./ops.js"

/**
 * An item of one side reduced to what a plan needs: key, identity (what its files say), the kept mode of its file
 * (`keptMode`), and the item where there is one. Two units are the same when identity and mode are.
 */
export interface Unit<A> {
  readonly key: string
  readonly ident: string
  readonly mode: ItemMode
  readonly item: A
  readonly paths: ReadonlyArray<string>
}

const UnitKeyed: Keyed<Unit<unknown>> = { key: (u) => u.key, hash: (u) => `${u.ident}\0${u.mode}` }

/** Whether a change of a unit is its mode alone: the other side holds the same bytes with another mode. */
export const modeOnly = (source: Unit<unknown>, target: Unit<unknown> | undefined): boolean =>
  target !== undefined && target.ident === source.ident && target.mode !== source.mode

/** A step's mode change in git's words, from the side written to (old) to the side synced from (new); else none. */
export const modeWords = (
  source: Unit<unknown>,
  target: Unit<unknown> | undefined
): Pick<PlanStep, "old_mode" | "new_mode"> =>
  target === undefined || target.mode === source.mode
    ? {}
    : { old_mode: gitMode(target.mode), new_mode: gitMode(source.mode) }

/**
 * A unit synced to the database, as one step naming any mode change in git's words: a chmod alone (`chmodAlone`,
 * by default when the bytes are the same) goes to `modes`, the mode column and never the fields, so the row keeps
 * its hashes and the file is not even parsed; any other change to `store`, which says whether it took the item.
 */
export const toDatabase = <D, B>(
  b: Builder,
  u: Unit<D>,
  there: Unit<B> | undefined,
  status: "Added" | "Modified",
  modes: Array<{ readonly key: string; readonly mode: ItemMode }>,
  store: () => boolean,
  chmodAlone = modeOnly(u, there)
) => {
  if (chmodAlone) modes.push({ key: u.key, mode: u.mode })
  else if (!store()) return
  b.synced++
  b.steps.push({ kind: b.kind, action: "upsert", key: u.key, status, paths: u.paths, ...modeWords(u, there) })
}

/** A kind's plan being built. */
export class Builder {
  readonly steps: Array<PlanStep> = []
  readonly db: Array<DbOp> = []
  readonly disk: Array<DiskOp> = []
  readonly after: Array<DbOp> = []
  readonly errors: Array<LocalSyncError> = []
  readonly unrecorded: Array<string> = []
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
      after: this.after.filter(nonEmpty),
      unrecorded: this.unrecorded
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
    case "DeleteRules":
      return op.rules.length > 0
    case "UpsertFiles":
      return op.files.length > 0
    case "SetModes":
      return op.modes.length > 0
    case "DeleteFiles":
      return op.paths.length > 0
  }
}

/**
 * Diffs the units of both sides in the direction of the sync (source first) and calls back for each change;
 * blocked keys are left out of both sides, so a file that does not parse never turns into a deletion.
 */
export const walk = <D, B>(
  b: Builder,
  disk: ReadonlyArray<Unit<D>>,
  db: ReadonlyArray<Unit<B>>,
  blocked: (key: string) => boolean,
  on: {
    readonly toDb: (u: Unit<D>, inDb: Unit<B> | undefined, status: "Added" | "Modified") => void
    readonly toDisk: (u: Unit<B>, onDisk: Unit<D> | undefined, status: "Added" | "Modified") => void
    readonly deleteRow: (u: Unit<B>) => void
    readonly removeFile: (u: Unit<D>) => void
  }
) => {
  const d = disk.filter((u) => !blocked(u.key))
  const r = db.filter((u) => !blocked(u.key))
  // The same walk either way, the source side first.
  const visit = <S, T>(
    source: ReadonlyArray<Unit<S>>,
    target: ReadonlyArray<Unit<T>>,
    change: (s: Unit<S>, t: Unit<T> | undefined, status: "Added" | "Modified") => void,
    drop: (t: Unit<T>) => void
  ) => {
    for (const i of diffKeyed(UnitKeyed, source, target).items) {
      if (i.status === "Unchanged") b.skipped++
      else if (i.status !== "Removed") change(i.source, i.target, i.status)
      else if (!b.options.deleteOrphans) b.skipped++
      else {
        b.deleted++
        drop(i.target)
      }
    }
  }
  if (b.options.direction === "ToDatabase") visit(d, r, on.toDb, on.deleteRow)
  else visit(r, d, on.toDisk, on.removeFile)
}

export const invalidRowErrors = (
  table: string,
  invalid: ReadonlyArray<{ readonly key: string; readonly reason: string }>
) =>
  invalid.map(
    (r) =>
      new LocalSyncError({
        item: `database ${table} ${r.key}`,
        message: `row ${r.key} of ${table} does not decode (${r.reason}); left alone`
      })
  )

/** A value PostgreSQL cannot store: reported, skipped. */
export const storable = (b: Builder, key: string, value: unknown): boolean => {
  const bad = unstorable(value)
  if (bad === undefined) return true
  b.errors.push(new LocalSyncError({ item: `${b.kind} ${key}`, message: `${b.kind} ${key}: ${bad}; skipped` }))
  return false
}

// Files beside items: content-addressed, compared by digest and exact permission bits (as stored, as written);
// the kept mode (`keptMode`) only words a change of the executable bit

export const planAttachments = (b: Builder, disk: DiskSide, db: DbSide, kind: "agents" | "skills" | "content") => {
  const diskUnits = disk.attachments
    .filter((a) => a.kind === kind)
    .map(
      (a): Unit<AttachmentFile> => ({
        key: `file:${a.path}`,
        ident: attachmentIdent(a.sha, a.mode),
        mode: keptMode(a.mode),
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
        mode: keptMode(r.mode),
        item: r,
        paths: [r.path]
      })
    )
  const upserts: Array<AttachmentFile> = []
  const deletes: Array<string> = []
  walk(b, diskUnits, dbUnits, (k) => disk.blocked[kind].has(k), {
    toDb: (u, there, status) => {
      b.synced++
      upserts.push(u.item)
      b.steps.push({ kind, action: "upsert", key: u.key, status, paths: u.paths, ...modeWords(u, there) })
    },
    toDisk: (u, there, status) => {
      b.synced++
      b.disk.push({ _tag: "WriteBlob", path: u.item.path, sha: u.item.sha256, mode: u.item.mode & 0o777 })
      b.steps.push({ kind, action: "write", key: u.key, status, paths: u.paths, ...modeWords(u, there) })
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
  // The item a file belongs to follows from the tree (a folder became a bundle, as `index.mdx` did): not a change.
  // Only the tree a sync to the database reads is final; a sync to disk may still add the bundle.
  const owners = new Map(dbUnits.map((u) => [u.key, u]))
  if (b.options.direction === "ToDatabase")
    for (const u of diskUnits) {
      const row = owners.get(u.key)
      if (
        row !== undefined &&
        row.ident === u.ident &&
        row.item.owner !== (u.item.owner ?? null) &&
        !disk.blocked[kind].has(u.key)
      )
        upserts.push(u.item)
    }
  b.db.push({ _tag: "UpsertFiles", files: upserts }, { _tag: "DeleteFiles", paths: deletes })
}
