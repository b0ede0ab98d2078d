/** The agents and skills part of a local-sync plan: few items, compared by what their files say. */
import { AGENTS, type FolderKind, itemPaths, modePath, renderItem, SKILLS } from "../formats/folderKinds.js"
import { type DbSide, type DiskSide, filesIdent } from "../localSides.js"
import type { Agent, ItemMode, Skill } from "../model.js"
import type { Listed } from "../stored.js"
import {
  Builder,
  invalidRowErrors,
  modeWords,
  planAttachments,
  storable,
  toDatabase,
  type Unit,
  walk
} from "./builder.js"
import type { DbOp, KindPlan, PlanOptions } from "./ops.js"

/** A folder kind's items on both sides and the database operations that store or drop them. */
interface ItemSides<A extends Agent | Skill> {
  readonly kind: FolderKind<A>
  readonly onDisk: (disk: DiskSide) => ReadonlyArray<A>
  readonly listed: (db: DbSide) => Listed<A>
  readonly upsert: (items: ReadonlyArray<A>) => DbOp
  readonly remove: (ids: ReadonlyArray<string>) => DbOp
}

const AGENT_SIDES: ItemSides<Agent> = {
  kind: AGENTS,
  onDisk: (disk) => disk.project.agents,
  listed: (db) => db.agents,
  upsert: (items) => ({ _tag: "UpsertAgents", items }),
  remove: (ids) => ({ _tag: "DeleteAgents", ids })
}

const SKILL_SIDES: ItemSides<Skill> = {
  kind: SKILLS,
  onDisk: (disk) => disk.project.skills,
  listed: (db) => db.skills,
  upsert: (items) => ({ _tag: "UpsertSkills", items }),
  remove: (ids) => ({ _tag: "DeleteSkills", ids })
}

export const planAgents = (o: PlanOptions, disk: DiskSide, db: DbSide) => planItems(AGENT_SIDES, o, disk, db)
export const planSkills = (o: PlanOptions, disk: DiskSide, db: DbSide) => planItems(SKILL_SIDES, o, disk, db)

const planItems = <A extends Agent | Skill>(
  sides: ItemSides<A>,
  o: PlanOptions,
  disk: DiskSide,
  db: DbSide
): KindPlan => {
  const k = sides.kind
  const kind = k.kind
  const listed = sides.listed(db)
  const b = new Builder(kind, o)
  const unit = (a: A): Unit<A> => ({
    key: a.id,
    ident: filesIdent(renderItem(k, a)),
    mode: a.mode,
    item: a,
    paths: itemPaths(k, a).filter((p) => disk.files.has(p))
  })
  const upserts: Array<A> = []
  const modes: Array<{ key: string; mode: ItemMode }> = []
  const deletes: Array<string> = []
  walk(
    b,
    sides.onDisk(disk).map(unit),
    listed.items.map((s) => unit(s.item)),
    (key) => disk.blocked[kind].has(key),
    {
      toDb: (u, there, status) =>
        toDatabase(b, u, there, status, modes, () => {
          if (!storable(b, u.key, u.item)) return false
          upserts.push(u.item)
          return true
        }),
      toDisk: (u, there, status) => {
        b.synced++
        const files = renderItem(k, u.item)
        const old = new Map(there === undefined ? [] : renderItem(k, there.item).map((f) => [f.path, f.text]))
        // The Markdown file carries the item's mode: written again, same bytes, when only its mode differs.
        const own = modePath(k, u.item)
        const writes = files.filter((f) => old.get(f.path) !== f.text || (f.path === own && there?.mode !== u.mode))
        for (const f of writes)
          b.disk.push({ _tag: "WriteText", path: f.path, text: f.text, ...(f.path === own ? { mode: u.mode } : {}) })
        // Written in another form than the disk has: the old form's files go.
        const removes = (there?.paths ?? []).filter((p) => !files.some((f) => f.path === p))
        for (const p of removes) b.disk.push({ _tag: "Remove", path: p })
        b.steps.push({
          kind,
          action: "write",
          key: u.key,
          status,
          paths: [...writes.map((f) => f.path), ...removes],
          ...modeWords(u, there)
        })
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
  b.db.push(sides.upsert(upserts), { _tag: "SetModes", kind, modes }, sides.remove(deletes))
  planAttachments(b, disk, db, kind)
  return b.done([...disk.errors[kind], ...(o.direction === "ToDisk" ? invalidRowErrors(kind, listed.invalid) : [])])
}
