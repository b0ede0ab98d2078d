// A run from the settled mark's listing (stages/files/delta.ts) plans what the full run plans: on generated trees
// that agreed with the head at a mark, and generated edits since (contents, touches, chmods, deletions, new files,
// a file made a folder, links, the ignore rules), the delta's plan, local manifest and next base are the full
// run's, but for the items of unchanged files, which act on nothing; and the mark's listing reads back as written.
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { Effect, FastCheck as fc } from "effect"
import { describe, expect, it } from "vitest"
import { fileAndFolder } from "../../../src/domain/caps.js"
import { type FileEntry, fileEntry, fileVersion, linkEntry } from "../../../src/domain/model.js"
import { visibleEntries } from "../../../src/programs/files/prepare.js"
import type { WorkspaceFile } from "../../../src/services/state.js"
import { DELTA_FILES, deltaOf, planDelta, SortedVersions } from "../../../src/stages/files/delta.js"
import { baseTextFor, planFiles, readBase, type SyncBase } from "../../../src/stages/files/plan.js"
import { listingDigest, listingImage, listingText, parseListing } from "../../../src/stages/files/settledCheck.js"
import { listingArb } from "../../support/listing.js"

/** A file on disk: its bytes (one letter, repeated), execute bit, a link's target instead, and mtime. */
interface Disk {
  readonly bytes: string
  readonly exec: boolean
  readonly link?: string
  readonly mtime: number
}
type Tree = Record<string, Disk>

const POOL = [
  "agents/a",
  "agents/a/x",
  "agents/b",
  "skills/s",
  "skills/s/SKILL.md",
  "web/t/x",
  "web/t/y",
  "web/t",
  "web/u"
]

const diskArb: fc.Arbitrary<Disk> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({ bytes: fc.constantFrom("a", "bb", "ccc"), exec: fc.boolean(), mtime: fc.nat(5) })
  },
  {
    weight: 1,
    arbitrary: fc.record({
      bytes: fc.constant(""),
      exec: fc.constant(false),
      link: fc.constantFrom("x", "../b"),
      mtime: fc.nat(5)
    })
  }
)
const treeArb: fc.Arbitrary<Tree> = fc
  .dictionary(fc.constantFrom(...POOL), diskArb, { maxKeys: 7 })
  .filter((t) => fileAndFolder(Object.keys(t)) === undefined)

const sha = (d: Disk) => (d.link ?? d.bytes).charCodeAt(0).toString(16).padStart(2, "0").repeat(32)
const size = (d: Disk) => (d.link ?? d.bytes).length
const entryOf = (path: string, d: Disk): FileEntry =>
  d.link !== undefined ? linkEntry(path, size(d), sha(d)) : fileEntry(path, size(d), sha(d), d.exec)
const listingOf = (t: Tree, includes: (p: string) => boolean): Array<WorkspaceFile> =>
  Object.keys(t)
    .filter(includes)
    .sort()
    .map((path) => {
      const d = t[path] as Disk
      return d.link !== undefined
        ? { path, size: size(d), mtimeMs: d.mtime, mode: 0o777, link: d.link }
        : { path, size: size(d), mtimeMs: d.mtime, mode: d.exec ? 0o755 : 0o644 }
    })
const entriesOf = (t: Tree, includes: (p: string) => boolean) =>
  Object.keys(t)
    .filter(includes)
    .sort()
    .map((p) => entryOf(p, t[p] as Disk))

/** An edit since the mark: any change of bytes or link moves the mtime (as the file system does), a touch alone too. */
const editArb = fc.record({
  path: fc.constantFrom(...POOL),
  what: fc.constantFrom("bytes", "touch", "chmod", "delete", "put"),
  disk: diskArb
})
const edited = (t: Tree, edits: ReadonlyArray<typeof editArb extends fc.Arbitrary<infer E> ? E : never>): Tree => {
  const out: Tree = { ...t }
  for (const e of edits) {
    const d = out[e.path]
    if (e.what === "delete") delete out[e.path]
    else if (e.what === "put") out[e.path] = { ...e.disk, mtime: 10 + e.disk.mtime }
    else if (d === undefined) continue
    else if (e.what === "bytes") out[e.path] = { ...d, bytes: e.disk.bytes, mtime: d.mtime + 20 }
    else if (e.what === "touch") out[e.path] = { ...d, mtime: d.mtime + 20 }
    else out[e.path] = { ...d, exec: !d.exec }
  }
  return fileAndFolder(Object.keys(out)) === undefined ? out : t
}
const ignoredArb = fc.subarray(POOL, { maxLength: 2 })
const byPath = ([a]: [string, string], [b]: [string, string]) => (a < b ? -1 : 1)
const withoutUnchanged = (items: ReadonlyArray<{ readonly status: string; readonly action: string }>) =>
  items.filter((i) => !(i.status === "Unchanged" && i.action === "none"))

describe("deltaOf and planDelta", () => {
  it("plan, local manifest and next base equal the full run's on trees that agreed at the mark", () => {
    let compared = 0
    fc.assert(
      fc.property(
        treeArb,
        fc.array(editArb, { maxLength: 4 }),
        ignoredArb,
        ignoredArb,
        fc.dictionary(fc.constantFrom(...POOL), diskArb, { maxKeys: 2 }),
        fc.constantFrom("push" as const, "pull" as const),
        fc.boolean(),
        fc.boolean(),
        (before, edits, ignoredThen, ignoredNow, hidden, direction, carry, force) => {
          const then = (p: string) => !ignoredThen.includes(p)
          const now = (p: string) => !ignoredNow.includes(p)
          // At the mark: the head held the listed tree and files the local rules left out (kept remotely only).
          const headTree: Tree = { ...before }
          for (const [p, d] of Object.entries(hidden)) if (!then(p)) headTree[p] = d
          for (const p of Object.keys(headTree)) if (!then(p) && hidden[p] === undefined) delete headTree[p]
          if (fileAndFolder(Object.keys(headTree)) !== undefined) return
          const head = Object.keys(headTree)
            .sort()
            .map((p) => entryOf(p, headTree[p] as Disk))
          const marked = listingOf(before, then)
          const base: SyncBase = {
            revision: "r",
            files: new Map(marked.map((f) => [f.path, fileVersion(entryOf(f.path, before[f.path] as Disk))]))
          }
          const after = edited(before, edits)
          const listed = listingOf(after, now)
          const options = { delete: carry, force }
          // The full run.
          const local = entriesOf(after, now)
          const visible = visibleEntries(head, { includes: now }, [], listed)
          const full = planFiles(direction, local, visible, base, options)
          // The delta, from the mark's listing as kept.
          const kept = parseListing(listingText(listingImage(marked)), listingDigest(marked))
          expect(kept).toBeDefined()
          if (kept === undefined) return
          const delta = deltaOf(kept, listed, head, now)
          if (delta === undefined) return
          compared++
          const changed = delta.changed.map((f) => entryOf(f.path, after[f.path] as Disk))
          const fast = planDelta(direction, delta, changed, base, options)
          expect([...delta.unchanged, ...changed].sort((a, b) => (a.path < b.path ? -1 : 1))).toEqual(local)
          expect(fast.items).toEqual(withoutUnchanged(full.items))
          expect(fast.counts).toEqual(full.counts)
          expect(fast.conflicts).toEqual(full.conflicts)
          expect([...fast.nextBase("n").files].sort(byPath)).toEqual([...full.nextBase("n").files].sort(byPath))
          // Read as a map, path for path (and at a path it lacks), and kept as the same text, in path order.
          const next = fast.nextBase("n").files
          const fullNext = full.nextBase("n").files
          expect(next.size).toBe(fullNext.size)
          for (const p of [...POOL, ...fullNext.keys()]) {
            expect(next.get(p)).toBe(fullNext.get(p))
            expect(next.has(p)).toBe(fullNext.has(p))
          }
          expect(baseTextFor("t", next)("n").join("")).toBe(
            baseTextFor("t", new Map([...fullNext].sort(byPath)))("n").join("")
          )
        }
      ),
      { numRuns: 3000 }
    )
    // Most generated runs are ones the delta answers (the rest hold a link among the changes, or such).
    expect(compared).toBeGreaterThan(1000)
  })

  it("reads its lists as the Map of the same entries does", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.string({ maxLength: 4 }), { maxLength: 12 }),
        fc.array(fc.string({ maxLength: 4 }), { maxLength: 6 }),
        (unsorted, asked) => {
          const paths = [...unsorted].sort((a, b) => (a < b ? -1 : 1))
          const versions = paths.map((p, i) => `${p}:${i}`)
          const map = new Map(paths.map((p, i) => [p, versions[i] ?? ""]))
          const sorted = new SortedVersions(paths, versions)
          expect(sorted.size).toBe(map.size)
          expect([...sorted]).toEqual([...map])
          expect([...sorted.entries()]).toEqual([...map.entries()])
          expect([...sorted.keys()]).toEqual([...map.keys()])
          expect([...sorted.values()]).toEqual([...map.values()])
          const seen: Array<[string, string]> = []
          sorted.forEach((v, k, m) => {
            expect(m).toBe(sorted)
            seen.push([k, v])
          })
          expect(seen).toEqual([...map])
          for (const p of [...paths, ...asked]) {
            expect(sorted.get(p)).toBe(map.get(p))
            expect(sorted.has(p)).toBe(map.has(p))
          }
        }
      )
    )
  })

  it("a base read back holds the entries of the Map of its lists, in path order or not, duplicates too", () => {
    const root = fs.mkdtempSync(nodePath.join(os.tmpdir(), "agentsync-read-base-"))
    try {
      fs.mkdirSync(nodePath.join(root, ".agentsync"))
      fc.assert(
        fc.property(
          fc.array(fc.tuple(fc.string({ maxLength: 4 }), fc.string({ maxLength: 3 })), { maxLength: 12 }),
          fc.boolean(),
          fc.array(fc.string({ maxLength: 4 }), { maxLength: 6 }),
          (pairs, sort, asked) => {
            const lists = sort ? [...pairs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)) : pairs
            const paths = lists.map(([p]) => p)
            const versions = lists.map(([, v]) => v)
            fs.writeFileSync(
              nodePath.join(root, ".agentsync", "files-base.json"),
              JSON.stringify({ version: 2, tenant: "t", revision: "r", paths, versions })
            )
            const base = Effect.runSync(readBase(root, "t"))
            const map = new Map(lists)
            expect([base.revision, base.files.size, [...base.files]]).toEqual(["r", map.size, [...map]])
            for (const p of [...paths, ...asked]) expect(base.files.get(p)).toBe(map.get(p))
          }
        )
      )
    } finally {
      fs.rmSync(root, { recursive: true, force: true })
    }
  })

  it("leaves to the full run a head entry it cannot place, and a link among the changes", () => {
    const f = (path: string, mtimeMs = 1): WorkspaceFile => ({ path, size: 1, mtimeMs, mode: 0o644 })
    const e = (path: string) => fileEntry(path, 1, "61".repeat(32), false)
    const marked = [f("agents/a"), f("agents/b")]
    const kept = parseListing(listingText(listingImage(marked)), listingDigest(marked))
    if (kept === undefined) throw new Error("the listing did not read back")
    const all = () => true
    expect(deltaOf(kept, marked, [e("agents/a"), e("agents/b")], all)?.changed).toEqual([])
    // Unchanged locally, absent from the head: the mark's agreement does not hold.
    expect(deltaOf(kept, marked, [e("agents/a")], all)).toBeUndefined()
    // A head file the listing never had, which the rules take: the full plan would carry it.
    expect(deltaOf(kept, marked, [e("agents/a"), e("agents/b"), e("agents/c")], all)).toBeUndefined()
    expect(deltaOf(kept, marked, [e("agents/a"), e("agents/b"), e("agents/c")], (p) => p !== "agents/c")).toBeDefined()
    const linked = [f("agents/a"), { ...f("agents/b", 2), mode: 0o777, link: "a" }]
    expect(deltaOf(kept, linked, [e("agents/a"), e("agents/b")], all)).toBeUndefined()
    // More changed paths than DELTA_FILES: the full run's.
    const many = (n: number, at: number) =>
      Array.from({ length: n }, (_, k) => f(`agents/${String(k).padStart(5, "0")}`, at))
    const before = many(DELTA_FILES + 1, 1)
    const keptMany = parseListing(listingText(listingImage(before)), listingDigest(before))
    if (keptMany === undefined) throw new Error("the listing did not read back")
    const heads = before.map((x) => e(x.path))
    expect(
      deltaOf(keptMany, [...many(DELTA_FILES, 2), ...before.slice(DELTA_FILES)], heads, all)?.changed
    ).toHaveLength(DELTA_FILES)
    expect(deltaOf(keptMany, many(DELTA_FILES + 1, 2), heads, all)).toBeUndefined()
  })
})

describe("the mark's listing as kept", () => {
  it("reads back as written, under its digest only", () => {
    fc.assert(
      fc.property(listingArb, fc.nat(), (listing, cut) => {
        const text = listingText(listingImage(listing))
        const kept = parseListing(text, listingDigest(listing))
        expect(kept?.paths).toEqual(listing.map((f) => f.path))
        listing.forEach((f, k) => {
          expect(kept?.numbers[3 * k]).toBe(f.size)
          expect(kept?.numbers[3 * k + 1]).toBe(f.mtimeMs)
          expect(kept?.links.get(k)).toBe(f.link)
        })
        // Another mark's digest, or a text cut short, is no listing.
        expect(parseListing(text, "0".repeat(64))).toBeUndefined()
        const short = text.slice(0, cut % text.length)
        if (short !== text) expect(parseListing(short, listingDigest(listing))).toBeUndefined()
      })
    )
  })
})
