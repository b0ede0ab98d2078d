// The local-sync plan as data: applied to an in-memory tree and database, planning again finds nothing to do.
import { it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { describe, expect } from "vitest"
import { agentHash, contentHash, sha256, skillHash } from "../../src/domain/hash.js"
import { ALL_KINDS, type DbOp, type DiskOp, type KindPlan, plan } from "../../src/domain/localPlan.js"
import {
  type ContentMeta,
  contentRows,
  type DbSide,
  diskSide,
  type ItemFileRow,
  isStoredPage,
  isTrusted,
  metaKey,
  rowsToFetch,
  storedPages
} from "../../src/domain/localSides.js"
import {
  type Agent,
  type Content,
  ContentSource,
  gitMode,
  isExecutableMode,
  keptMode,
  type LocalSyncDirection,
  type Skill,
  withMode
} from "../../src/domain/model.js"
import { pathRole, type RawFile } from "../../src/domain/project.js"

/** A database as the repositories hold it, in memory. */
interface Db {
  agents: Map<string, Agent>
  skills: Map<string, Skill>
  contents: Map<string, { item: Content; meta: ContentMeta }>
  files: Map<string, ItemFileRow>
  blobs: Map<string, Uint8Array>
  sources: Map<string, ContentSource>
}

const emptyDb = (): Db => ({
  agents: new Map(),
  skills: new Map(),
  contents: new Map(),
  files: new Map(),
  blobs: new Map(),
  sources: new Map()
})

type Tree = Map<string, { bytes: Uint8Array; mode: number }>

const enc = (s: string) => new TextEncoder().encode(s)

/** Both sides as local sync reads them (the same pure functions the program calls). */
const read = (tree: Tree, db: Db, toDisk: boolean) => {
  const raw: Array<RawFile> = [...tree].map(([path, f]) => ({ path, bytes: f.bytes, mode: f.mode }))
  const meta = [...db.contents.values()].map((r) => r.meta)
  const byKey = new Map(meta.map((m) => [metaKey(m), m]))
  const disk = diskSide(raw, "", (f) => {
    const m = byKey.get(f.key)
    return m !== undefined && isTrusted(m) && m.path === f.path && m.file_sha256 === f.sha
  })
  const need = new Set(rowsToFetch(meta, disk, toDisk).map(metaKey))
  const fetched = new Map(
    [...db.contents].filter(([k]) => need.has(k)).map(([k, r]) => [k, { item: r.item, hash: contentHash(r.item) }])
  )
  const side: DbSide = {
    agents: { items: [...db.agents.values()].map((item) => ({ item, hash: agentHash(item) })), invalid: [] },
    skills: { items: [...db.skills.values()].map((item) => ({ item, hash: skillHash(item) })), invalid: [] },
    rules: { items: [], invalid: [] },
    contents: contentRows(meta, fetched, []),
    contentInvalid: [],
    sources: [...db.sources.values()],
    attachments: [...db.files.values()].filter((r) => !isStoredPage(r)),
    storedPages: storedPages([...db.files.values()].filter(isStoredPage), db.blobs)
  }
  return { disk, db: side }
}

/** Applies a plan the way the repositories and the workspace do. */
const apply = (plans: ReadonlyArray<KindPlan>, tree: Tree, db: Db, files: ReadonlyMap<string, Uint8Array>) => {
  const onDb = (op: DbOp) => {
    switch (op._tag) {
      case "UpsertAgents":
        for (const a of op.items) db.agents.set(a.id, a)
        return
      case "DeleteAgents":
        for (const id of op.ids) db.agents.delete(id)
        return
      case "UpsertSkills":
        for (const s of op.items) db.skills.set(s.id, s)
        return
      case "DeleteSkills":
        for (const id of op.ids) db.skills.delete(id)
        return
      case "UpsertContents":
      case "RecordContents":
        for (const w of op.items) {
          const key = `${w.item.source}/${w.item.slug}`
          const was = db.contents.get(key)
          if ("expectedHash" in w && was?.meta.version_hash !== w.expectedHash) continue
          // Recording leaves the row's mode as it is (as the RECORD statement does).
          const mode = op._tag === "RecordContents" && was !== undefined ? was.meta.mode : w.item.mode
          db.contents.set(key, {
            item: withMode(w.item, mode),
            meta: {
              source: w.item.source,
              slug: w.item.slug,
              path: w.item.path,
              version_hash: contentHash(w.item),
              file_sha256: w.fileSha,
              mode
            }
          })
        }
        return
      case "DeleteContents":
        for (const k of op.keys) db.contents.delete(`${k.source}/${k.slug}`)
        return
      case "UpsertSources":
        for (const s of op.sources) db.sources.set(s.source, s)
        return
      case "UpsertFiles":
        for (const f of op.files) {
          db.blobs.set(f.sha, f.bytes)
          db.files.set(f.path, {
            path: f.path,
            kind: f.kind,
            owner: f.owner ?? null,
            sha256: f.sha,
            mode: f.mode,
            size: f.size
          })
        }
        return
      case "DeleteFiles":
        for (const p of op.paths) db.files.delete(p)
        return
      case "SetModes":
        for (const { key, mode } of op.modes) {
          if (op.kind === "agents") db.agents.set(key, withMode(db.agents.get(key)!, mode))
          else if (op.kind === "skills") db.skills.set(key, withMode(db.skills.get(key)!, mode))
          else {
            const r = db.contents.get(key)!
            db.contents.set(key, { item: withMode(r.item, mode), meta: { ...r.meta, mode } })
          }
        }
        return
      case "UpsertRules":
      case "DeleteRules":
        return
    }
  }
  const onDisk = (op: DiskOp) => {
    if (op._tag === "WriteText") tree.set(op.path, { bytes: enc(op.text), mode: op.mode ?? 0o644 })
    else if (op._tag === "WriteBlob")
      tree.set(op.path, { bytes: db.blobs.get(op.sha) ?? files.get(op.sha)!, mode: op.mode })
    else tree.delete(op.path)
  }
  for (const p of plans) p.db.forEach(onDb)
  for (const p of plans) p.disk.forEach(onDisk)
  for (const p of plans) p.after.forEach(onDb)
}

const changesOf = (plans: ReadonlyArray<KindPlan>) =>
  plans.flatMap((p) => [
    ...p.steps.map((s) => `${s.action} ${s.key}`),
    ...p.db.map((o) => o._tag),
    ...p.disk.map((o) => `${o._tag} ${o.path}`),
    ...p.after.map((o) => o._tag)
  ])

// ---------------------------------------------------------------------------------------------------------
// Generated trees

const word = fc.stringMatching(/^[a-z][a-z0-9]{0,5}$/)
const line = fc.oneof(word, fc.constantFrom("# Title", "", "text", "- item"))
const body = fc.array(line, { maxLength: 3 }).map((ls) => ls.join("\n"))
const frontMatter = fc.oneof(
  fc
    .tuple(word, fc.integer({ min: 0, max: 99 }), fc.boolean())
    .map(([t, w, d]) => `---\ntitle: ${t}\nweight: ${w} # order\ndraft: ${d}\n---\n\n`),
  fc
    .tuple(word, fc.integer({ min: 0, max: 99 }))
    .map(([t, w]) => `+++\ntitle = "${t}"\nweight = ${w}\n\n[extra]\nx = 1\n+++\n`),
  word.map((t) => `{\n  "title": "${t}",\n  "n": [1, 2]\n}\n\n`),
  fc.constant("")
)
/** The lines an MDX page may start its body with: imports, exports, an expression, JSX. */
const mdxLines = fc
  .array(
    fc.constantFrom("import Tabs from '@theme/Tabs'", "export const x = 1", "{/* a note */}", "<Tabs>", "</Tabs>"),
    {
      maxLength: 3
    }
  )
  .map((ls) => ls.map((l) => `${l}\n`).join(""))
const contentFile = fc
  .tuple(
    fc.constantFrom("blog", "docs"),
    fc.constantFrom("a.md", "b.markdown", "c/index.md", "d/_index.md", "e/f.md", "G@2x.md", "h.mdx", "c/index.mdx"),
    frontMatter,
    body,
    mdxLines
  )
  .map(([source, path, head, b, mdx]) => [source, path, head, path.endsWith(".mdx") ? mdx + b : b] as const)
/** An item file's mode: executable or not, with bits a sync does not keep (group, others) now and then. */
const itemMode = fc.constantFrom(0o644, 0o644, 0o755, 0o600, 0o775)
const attachment = fc.tuple(
  fc.constantFrom(
    "content/blog/c/img.png",
    "content/docs/d/x.svg",
    "skills/pdf/scripts/run.sh",
    "content/blog/raw.bin"
  ),
  fc.constantFrom("A", "B"),
  // Files beside items keep every permission bit, not only the executable one.
  fc.constantFrom(0o644, 0o755, 0o600, 0o664)
)
const agentFile = fc
  .tuple(fc.constantFrom("ops", "review"), word, body)
  .map(
    ([id, d, b]) => [`agents/${id}.md`, `---\nname: ${id}\ndescription: ${d}\ntools: Read, Grep\n---\n\n${b}`] as const
  )
const agentFolder = fc.tuple(fc.constantFrom("support"), word, body).map(
  ([id, d, b]) =>
    [
      [`agents/${id}/config.yaml`, `id: ${id}\nname: ${id}\ndescription: ${d} # why\nsettings:\n  z: 1\n  a: [1, 2]\n`],
      [`agents/${id}/system_prompt.md`, b]
    ] as const
)
const skillFile = fc
  .tuple(fc.constantFrom("pdf", "xlsx"), word, body)
  .map(
    ([id, d, b]) => [`skills/${id}/SKILL.md`, `---\nname: ${id}\ndescription: ${d}\nlicense: MIT\n---\n\n${b}`] as const
  )

const treeArb = fc
  .record({
    contents: fc.array(fc.tuple(contentFile, itemMode), { maxLength: 6 }),
    attachments: fc.array(attachment, { maxLength: 3 }),
    agents: fc.array(fc.tuple(agentFile, itemMode), { maxLength: 2 }),
    folders: fc.array(fc.tuple(agentFolder, itemMode), { maxLength: 1 }),
    skills: fc.array(fc.tuple(skillFile, itemMode), { maxLength: 2 })
  })
  .map((g) => {
    const tree: Tree = new Map()
    // One file per slug: a later file of the same slug is left out, as parsing would report it.
    const slugs = new Set<string>()
    for (const [[source, path, head, b], mode] of g.contents) {
      const slug = path.replace(/\.(md|markdown|mdx)$/, "").replace(/\/_?index$/, "")
      if (slugs.has(`${source}/${slug}`)) continue
      slugs.add(`${source}/${slug}`)
      tree.set(`content/${source}/${path}`, { bytes: enc(head + b), mode })
    }
    for (const [path, bytes, mode] of g.attachments) tree.set(path, { bytes: enc(bytes), mode })
    for (const [[path, text], mode] of g.agents) tree.set(path, { bytes: enc(text), mode })
    // config.yaml's mode is not kept (only the Markdown file's): the law holds for a 0644 one, as it is written.
    for (const [[[cPath, cText], [bPath, bText]], mode] of g.folders) {
      tree.set(cPath, { bytes: enc(cText), mode: 0o644 })
      tree.set(bPath, { bytes: enc(bText), mode })
    }
    for (const [[path, text], mode] of g.skills) tree.set(path, { bytes: enc(text), mode })
    // A skill's files need the skill: a folder without SKILL.md is reported, which is not this property.
    if (tree.has("skills/pdf/scripts/run.sh") && !tree.has("skills/pdf/SKILL.md"))
      tree.set("skills/pdf/SKILL.md", { bytes: enc("# PDF\n"), mode: 0o644 })
    return tree
  })

/** A database filled from a tree by a sync to the database. */
const syncedDb = (tree: Tree): Db => {
  const db = emptyDb()
  const { disk, db: side } = read(tree, db, false)
  apply(
    plan({ direction: "ToDatabase", dryRun: false, deleteOrphans: false }, disk, side, ALL_KINDS),
    new Map(tree),
    db,
    new Map()
  )
  return db
}

/**
 * A database filled from a tree by a sync, then edited by hand: a title changed (its hash and file hash cleared),
 * and the mode of a page and of an agent flipped (`UPDATE … SET mode`: the hashes stay, as the triggers leave them).
 */
const dbArb = fc.tuple(treeArb, fc.boolean(), fc.boolean()).map(([tree, edit, chmod]) => {
  const db = syncedDb(tree)
  const flip = (mode: number) => (mode === 0o755 ? 0o644 : 0o755)
  const last = [...db.contents.values()].at(-1)
  const agent = [...db.agents.values()][0]
  if (chmod && last !== undefined) {
    const mode = flip(last.meta.mode)
    db.contents.set(metaKey(last.meta), { item: withMode(last.item, mode), meta: { ...last.meta, mode } })
  }
  if (chmod && agent !== undefined) db.agents.set(agent.id, withMode(agent, flip(agent.mode)))
  const first = [...db.contents.values()][0]
  if (edit && first !== undefined) {
    const item = { ...first.item, title: `${first.item.title} (edited)` } as Content
    db.contents.set(metaKey(first.meta), {
      item: Object.assign(Object.create(Object.getPrototypeOf(first.item)), item),
      meta: { ...first.meta, version_hash: "", file_sha256: null }
    })
  }
  return db
})

/** The database an earlier version left for a tree: its MDX pages stored as files beside items, not as rows. */
const storedAsFiles = (tree: Tree): Db => {
  const db = syncedDb(tree)
  const pages = new Set<string>()
  for (const [key, r] of db.contents) {
    if (!r.item.path.endsWith(".mdx")) continue
    pages.add(key)
    db.contents.delete(key)
    const path = `content/${r.item.source}/${r.item.path}`
    const { bytes, mode } = tree.get(path)!
    db.blobs.set(sha256(bytes), bytes)
    // Stored with its mode as it was (every permission bit, as files beside items were then).
    db.files.set(path, { path, kind: "content", owner: null, sha256: sha256(bytes), mode, size: bytes.length })
  }
  // A file in a folder whose index.mdx was not an item then belonged to no bundle.
  for (const [path, f] of db.files)
    if (f.owner !== null && f.kind === "content" && pages.has(f.owner)) db.files.set(path, { ...f, owner: null })
  return db
}

describe("local plan", () => {
  const settles =
    (direction: LocalSyncDirection) =>
    ([tree, db, orphans]: readonly [Tree, Db, boolean]) => {
      const o = { direction, dryRun: false, deleteOrphans: orphans }
      const blobs = new Map([...tree.values()].map((f) => [sha256(f.bytes), f.bytes]))
      const first = read(tree, db, direction === "ToDisk")
      apply(plan(o, first.disk, first.db, ALL_KINDS), tree, db, blobs)
      const again = read(tree, db, direction === "ToDisk")
      const next = plan(o, again.disk, again.db, ALL_KINDS)
      expect(changesOf(next)).toStrictEqual([])
      for (const p of next) expect(p.result.errors).toStrictEqual([])
      // Every row now knows the file it is, so the next run reads neither the file nor the row.
      for (const r of db.contents.values()) {
        const file = tree.get(`content/${r.item.source}/${r.item.path}`)
        if (file === undefined) continue
        expect(isTrusted(r.meta)).toBe(true)
        expect(r.meta.file_sha256).toBe(sha256(file.bytes))
      }
      // And the other direction agrees there is nothing to do (orphans aside).
      const back = plan(
        { ...o, direction: direction === "ToDisk" ? "ToDatabase" : "ToDisk", deleteOrphans: false },
        again.disk,
        read(tree, db, true).db,
        ALL_KINDS
      )
      // (A source's remembered layout is bookkeeping of the database, not a change of content.)
      expect(
        changesOf(back).filter((c) => !c.startsWith("Record") && !c.includes("source:") && c !== "UpsertSources")
      ).toStrictEqual([])
    }

  it.prop(
    "to the database: apply, then plan again: nothing to do",
    [treeArb, dbArb, fc.constant(true)],
    settles("ToDatabase"),
    { fastCheck: { numRuns: 150 } }
  )
  it.prop("to disk: apply, then plan again: nothing to do", [treeArb, dbArb, fc.constant(true)], settles("ToDisk"), {
    fastCheck: { numRuns: 150 }
  })

  it.prop(
    "MDX pages an earlier version stored as files beside items become rows in one run, either way, changing no file",
    [treeArb, fc.constantFrom<LocalSyncDirection>("ToDatabase", "ToDisk"), fc.boolean()],
    ([tree, direction, orphans]) => {
      const db = storedAsFiles(tree)
      const pages = [...db.files.values()].filter(isStoredPage).map((r) => r.path)
      const o = { direction, dryRun: false, deleteOrphans: orphans }
      const first = read(tree, db, direction === "ToDisk")
      const planned = plan(o, first.disk, first.db, ALL_KINDS)
      // Nothing to show: the pages are the items they were, and the tree is not touched.
      expect(planned.flatMap((p) => p.steps)).toStrictEqual([])
      expect(planned.flatMap((p) => p.disk)).toStrictEqual([])
      for (const p of planned) expect(p.result.errors).toStrictEqual([])
      apply(planned, tree, db, new Map())
      for (const path of pages) {
        expect(db.files.has(path)).toBe(false)
        const [, source, ...rest] = path.split("/")
        const row = [...db.contents.values()].find((r) => r.item.source === source && r.item.path === rest.join("/"))
        expect(row?.meta.file_sha256).toBe(sha256(tree.get(path)!.bytes))
      }
      // A file of an index.mdx bundle now belongs to it: the next sync to the database (which reads the final
      // tree) says so, silently.
      if (direction === "ToDisk") {
        const settle = read(tree, db, false)
        const owners = plan({ ...o, direction: "ToDatabase" }, settle.disk, settle.db, ALL_KINDS)
        expect(changesOf(owners).filter((c) => c !== "UpsertFiles")).toStrictEqual([])
        apply(owners, tree, db, new Map())
      }
      for (const a of first.disk.attachments) expect(db.files.get(a.path)?.owner).toBe(a.owner ?? null)
      for (const d of ["ToDatabase", "ToDisk"] as const) {
        const again = read(tree, db, d === "ToDisk")
        expect(changesOf(plan({ ...o, direction: d }, again.disk, again.db, ALL_KINDS))).toStrictEqual([])
      }
    },
    { fastCheck: { numRuns: 150 } }
  )

  it.prop(
    "a chmod alone of an item's file is a mode change only: the mode column to the database, the same bytes to disk",
    [treeArb, fc.nat()],
    ([tree, pick]) => {
      const own = [...tree.keys()].filter((p) => ["content", "file", "body"].includes(pathRole(p)?.role ?? ""))
      fc.pre(own.length > 0)
      const path = own[pick % own.length]!
      const db = syncedDb(tree)
      const file = tree.get(path)!
      const chmodded: Tree = new Map(tree)
      chmodded.set(path, { ...file, mode: isExecutableMode(file.mode) ? 0o644 : 0o755 })
      const [was, now] = [gitMode(file.mode), gitMode(chmodded.get(path)!.mode)]
      const o = { dryRun: false, deleteOrphans: true }
      // To the database: one step naming both modes, and no operation but the mode's.
      const up = read(chmodded, db, false)
      const toDb = plan({ ...o, direction: "ToDatabase" }, up.disk, up.db, ALL_KINDS)
      const steps = toDb.flatMap((p) => p.steps)
      // (An upsert's step lists the item's files, a folder form's config.yaml too.)
      expect(steps.map((s) => [s.paths.includes(path), s.old_mode, s.new_mode])).toStrictEqual([[true, was, now]])
      expect(toDb.flatMap((p) => p.db)).toStrictEqual([
        {
          _tag: "SetModes",
          kind: steps[0]!.kind,
          modes: [{ key: steps[0]!.key, mode: keptMode(chmodded.get(path)!.mode) }]
        }
      ])
      expect(toDb.flatMap((p) => [...p.disk, ...p.after])).toStrictEqual([])
      // To disk: the file written again with the database's mode and its own bytes, nothing else.
      const down = read(chmodded, db, true)
      const toDisk = plan({ ...o, direction: "ToDisk" }, down.disk, down.db, ALL_KINDS)
      expect(toDisk.flatMap((p) => p.steps).map((s) => [s.paths, s.old_mode, s.new_mode])).toStrictEqual([
        [[path], now, was]
      ])
      expect(toDisk.flatMap((p) => [...p.db, ...p.after])).toStrictEqual([])
      expect(toDisk.flatMap((p) => p.disk)).toStrictEqual([
        { _tag: "WriteText", path, text: new TextDecoder().decode(file.bytes), mode: keptMode(file.mode) }
      ])
    },
    { fastCheck: { numRuns: 150 } }
  )

  it.prop(
    "a chmod of a page whose row does not know its file's hash: the run that records the row keeps the new mode",
    [treeArb, fc.nat()],
    ([tree, pick]) => {
      const pages = [...tree.keys()].filter((p) => pathRole(p)?.role === "content")
      fc.pre(pages.length > 0)
      const path = pages[pick % pages.length]!
      const db = syncedDb(tree)
      // Rows from before file hashes were recorded (or a hand edit reverted): each page matches, its hash unknown.
      for (const [k, r] of db.contents) db.contents.set(k, { ...r, meta: { ...r.meta, file_sha256: null } })
      const file = tree.get(path)!
      const mode = isExecutableMode(file.mode) ? 0o644 : 0o755
      const chmodded: Tree = new Map(tree)
      chmodded.set(path, { ...file, mode })
      const o = { direction: "ToDatabase", dryRun: false, deleteOrphans: true } as const
      const up = read(chmodded, db, false)
      apply(plan(o, up.disk, up.db, ALL_KINDS), chmodded, db, new Map())
      const row = [...db.contents.values()].find((r) => `content/${r.item.source}/${r.item.path}` === path)
      expect([row?.meta.mode, row?.item.mode]).toStrictEqual([mode, mode])
      const again = read(chmodded, db, false)
      expect(changesOf(plan(o, again.disk, again.db, ALL_KINDS))).toStrictEqual([])
    },
    { fastCheck: { numRuns: 150 } }
  )

  it("a plan is data: a dry run and a real run plan the same operations", () => {
    const tree: Tree = new Map([["content/blog/a.md", { bytes: enc('+++\ntitle = "A"\n+++\nbody'), mode: 0o644 }]])
    const db = emptyDb()
    const { disk, db: side } = read(tree, db, false)
    const dry = plan({ direction: "ToDatabase", dryRun: true, deleteOrphans: false }, disk, side, ALL_KINDS)
    const real = plan({ direction: "ToDatabase", dryRun: false, deleteOrphans: false }, disk, side, ALL_KINDS)
    expect(changesOf(dry)).toStrictEqual(changesOf(real))
    expect(changesOf(real)).toContain("upsert blog/a")
    expect(new ContentSource({ source: "blog", layout: "flat", declared: false, description: null }).layout).toBe(
      "flat"
    )
  })
})
