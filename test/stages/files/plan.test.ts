import { FastCheck } from "effect"
import { describe, expect, it } from "vitest"
import { fileAndFolder } from "../../../src/domain/caps.js"
import { FileEntry, fileVersion } from "../../../src/domain/model.js"
import { diffFiles, planFiles, type SyncBase, visitDiff } from "../../../src/stages/files/plan.js"

const hex = (c: string) => c.repeat(64)
const paths = [
  "agents/a/config.yaml",
  "agents/b/config.yaml",
  "skills/s/SKILL.md",
  "content/blog/x.md",
  "config/app.yaml"
]
/**
 * A small tree: some of the paths, each with one of three contents, plain, executable (`a+x`) or a symbolic link
 * whose target has those bytes (`a+l`): a version that differs only by `+x` is a mode-only change (a chmod), one
 * that differs only by `+l` a file made a link of the same bytes (or back), which every law must treat as a change
 * like any other.
 */
const tree = FastCheck.dictionary(
  FastCheck.constantFrom(...paths),
  FastCheck.constantFrom("a", "b", "c", "a+x", "b+x", "a+l", "c+l"),
  {
    maxKeys: 5
  }
)
const entryOf = (path: string, version: string) =>
  version.endsWith("+x")
    ? new FileEntry({ path, size: 1, sha256: hex(version[0]!), executable: true })
    : version.endsWith("+l")
      ? new FileEntry({ path, size: 1, sha256: hex(version[0]!), link: true })
      : new FileEntry({ path, size: 1, sha256: hex(version) })
const entries = (t: Record<string, string>) => Object.entries(t).map(([path, c]) => entryOf(path, c))
const baseOf = (t: Record<string, string>): SyncBase => ({
  revision: "r",
  files: new Map(Object.entries(t).map(([p, c]) => [p, fileVersion(entryOf(p, c))]))
})
const asRecord = (es: Iterable<FileEntry>) => Object.fromEntries([...es].map((e) => [e.path, fileVersion(e)]))

/**
 * Trees over paths that can be a file (or a link) on one side and a folder on the other; each tree one a disk can
 * hold.
 */
const shaped = FastCheck.dictionary(
  FastCheck.constantFrom("web/t", "web/t/x", "web/t/y", "config/a", "config/a/b/c"),
  FastCheck.constantFrom("a", "b", "a+l"),
  {
    maxKeys: 5
  }
).filter((t) => fileAndFolder(Object.keys(t)) === undefined)

describe("planFiles (three-way)", () => {
  it("a file that became a folder, or the reverse, is a delete plus a create: with or without --delete, the result is a tree a disk can hold", () => {
    FastCheck.assert(
      FastCheck.property(shaped, shaped, FastCheck.boolean(), (local, remote, carry) => {
        for (const direction of ["push", "pull"] as const) {
          const [from, to] = direction === "pull" ? [remote, local] : [local, remote]
          const plan = planFiles(direction, entries(local), entries(remote), baseOf(to), {
            delete: carry,
            force: false
          })
          expect(plan.conflicts).toEqual([])
          const result = new Map(entries(to).map((e) => [e.path, e]))
          for (const i of plan.items) {
            if (i.action === "write" || i.action === "upload")
              result.set(i.path, (direction === "pull" ? i.remote : i.local)!)
            if (i.action === "delete-local" || i.action === "delete-remote") result.delete(i.path)
          }
          expect(fileAndFolder([...result.keys()])).toBeUndefined()
          // Every file of the side synced from arrives; what stays besides is only what --delete would carry.
          for (const p of Object.keys(from))
            expect(result.get(p) && fileVersion(result.get(p)!)).toBe(fileVersion(entryOf(p, from[p]!)))
          if (carry) expect(asRecord(result.values())).toEqual(asRecord(entries(from)))
        }
      })
    )
  })

  it("into an empty side (a first upload, a download into an empty folder) every file is created as it is, with no conflict", () => {
    FastCheck.assert(
      FastCheck.property(FastCheck.oneof(shaped, tree), FastCheck.boolean(), (from, carry) => {
        const none: SyncBase = { revision: null, files: new Map() }
        for (const direction of ["push", "pull"] as const) {
          const [local, remote] = direction === "push" ? [entries(from), []] : [[], entries(from)]
          const plan = planFiles(direction, local, remote, none, { delete: carry, force: false })
          expect(plan.conflicts).toEqual([])
          expect(plan.items.map((i) => [i.path, i.status, i.action, i.note])).toEqual(
            entries(from)
              .map((e) => e.path)
              .sort()
              .map((p) => [p, "Added", direction === "push" ? "upload" : "write", undefined])
          )
          expect(Object.fromEntries(plan.nextBase("n").files)).toEqual(asRecord(entries(from)))
        }
      })
    )
  })

  it("with no recorded base, a side being written that holds a file where a folder comes (or the reverse) is a conflict unless forced, and forced it is deleted", () => {
    const none: SyncBase = { revision: null, files: new Map() }
    const file = entryOf("web/t", "a")
    const inFolder = entryOf("web/t/x", "b")
    // Each case: what is synced from, what the side being written holds.
    for (const [from, to] of [
      [inFolder, file],
      [file, inFolder]
    ] as const) {
      const folderComes = from === inFolder
      for (const direction of ["push", "pull"] as const) {
        const [local, remote] = direction === "push" ? [[from], [to]] : [[to], [from]]
        const side = direction === "push" ? "remotely" : "here"
        const create = direction === "push" ? "upload" : "write"
        const remove = direction === "push" ? "delete-remote" : "delete-local"
        const statuses = { [from.path]: "Added", [to.path]: "Removed" }
        const items = (plan: ReturnType<typeof planFiles>) =>
          plan.items.map((i) => [i.path, i.status, i.action, i.note])

        const held = planFiles(direction, local, remote, none, { delete: false, force: false })
        expect(held.conflicts).toEqual([from.path, to.path])
        expect(items(held)).toEqual(
          [
            [
              from.path,
              statuses[from.path],
              "conflict",
              `needs ${to.path} gone, which changed ${side} since the last sync; --force replaces it`
            ],
            [
              to.path,
              statuses[to.path],
              "conflict",
              `this file changed ${side} since the last sync; --force replaces it`
            ]
          ].sort(([a], [b]) => (a! < b! ? -1 : 1))
        )
        expect([...held.nextBase("n").files]).toEqual([])

        const forced = planFiles(direction, local, remote, none, { delete: false, force: true })
        expect(forced.conflicts).toEqual([])
        expect(items(forced)).toEqual(
          [
            [from.path, statuses[from.path], create, undefined],
            [
              to.path,
              statuses[to.path],
              remove,
              folderComes
                ? `a file ${side}, replaced by the folder holding ${from.path}`
                : `a folder ${side}, replaced by the file ${from.path}`
            ]
          ].sort(([a], [b]) => (a! < b! ? -1 : 1))
        )
        expect([...forced.nextBase("n").files]).toEqual([[from.path, fileVersion(from)]])
      }
    }
  })

  it("a push from an unchanged remote reproduces the local tree there, with no conflict", () => {
    FastCheck.assert(
      FastCheck.property(tree, tree, (local, remote) => {
        const plan = planFiles("push", entries(local), entries(remote), baseOf(remote), { delete: true, force: false })
        expect(plan.conflicts).toEqual([])
        const result = new Map(entries(remote).map((e) => [e.path, e]))
        for (const i of plan.items) {
          if (i.action === "upload") result.set(i.path, i.local!)
          if (i.action === "delete-remote") result.delete(i.path)
        }
        expect(asRecord(result.values())).toEqual(asRecord(entries(local)))
        expect([...plan.nextBase("n").files.entries()].sort()).toEqual(Object.entries(asRecord(entries(local))).sort())
      })
    )
  })

  it("a pull onto an unchanged local tree reproduces the remote tree, with no conflict", () => {
    FastCheck.assert(
      FastCheck.property(tree, tree, (local, remote) => {
        const plan = planFiles("pull", entries(local), entries(remote), baseOf(local), { delete: true, force: false })
        expect(plan.conflicts).toEqual([])
        const result = new Map(entries(local).map((e) => [e.path, e]))
        for (const i of plan.items) {
          if (i.action === "write") result.set(i.path, i.remote!)
          if (i.action === "delete-local") result.delete(i.path)
        }
        expect(asRecord(result.values())).toEqual(asRecord(entries(remote)))
      })
    )
  })

  it("never pushes a path that changed only remotely, and never pulls one that changed only locally", () => {
    FastCheck.assert(
      FastCheck.property(tree, tree, tree, FastCheck.boolean(), (local, remote, base, del) => {
        for (const direction of ["push", "pull"] as const) {
          const plan = planFiles(direction, entries(local), entries(remote), baseOf(base), {
            delete: del,
            force: false
          })
          for (const i of plan.items) {
            const mine = direction === "push" ? local[i.path] : remote[i.path]
            const theirs = direction === "push" ? remote[i.path] : local[i.path]
            const acts =
              i.action === "upload" ||
              i.action === "write" ||
              i.action === "delete-remote" ||
              i.action === "delete-local"
            if (acts) expect(mine).not.toBe(base[i.path])
            // Both changed (and differ) is a conflict, never a silent overwrite.
            if (mine !== theirs && mine !== base[i.path] && theirs !== base[i.path]) expect(i.action).toBe("conflict")
          }
        }
      })
    )
  })

  it("a mode-only change goes the way it was made; both sides making the same one agree; a base kept before modes travelled reads as plain files", () => {
    const script = "skills/s/SKILL.md"
    const plain = entries({ [script]: "a" })
    const executable = entries({ [script]: "a+x" })
    const before = baseOf({ [script]: "a" })
    // Recorded before modes travelled: the bare hash, and it is exactly a plain file's version.
    expect(before.files.get(script)).toBe(hex("a"))
    const push = planFiles("push", executable, plain, before, { delete: false, force: false })
    expect(push.items.map((i) => [i.status, i.action])).toEqual([["Modified", "upload"]])
    expect(push.nextBase("n").files.get(script)).toBe(`${hex("a")}+x`)
    const pull = planFiles("pull", plain, executable, before, { delete: false, force: false })
    expect(pull.items.map((i) => [i.status, i.action])).toEqual([["Modified", "write"]])
    // Changed locally only: a pull leaves it for a push.
    expect(planFiles("pull", executable, plain, before, { delete: false, force: false }).items[0]!.action).toBe("skip")
    // Both made it executable: nothing to do, nothing in conflict.
    const same = planFiles("pull", executable, executable, before, { delete: false, force: false })
    expect(same.items.map((i) => i.action)).toEqual(["none"])
    // One side's chmod against the other side's edit is a conflict, as two edits are.
    const edited = entries({ [script]: "b" })
    expect(planFiles("push", executable, edited, before, { delete: false, force: false }).conflicts).toEqual([script])
    expect(planFiles("pull", edited, executable, before, { delete: false, force: false }).conflicts).toEqual([script])
    // Plain files under a base kept before: nothing changed.
    const old = planFiles("push", plain, plain, before, { delete: false, force: false })
    expect(old.items.map((i) => i.action)).toEqual(["none"])
  })

  it("a file made a symbolic link of the same bytes (or back) is a change on its side; against an edit on the other, a conflict", () => {
    const p = "skills/s/AGENTS.md"
    const file = entries({ [p]: "a" })
    const link = entries({ [p]: "a+l" })
    const before = baseOf({ [p]: "a" })
    const push = planFiles("push", link, file, before, { delete: false, force: false })
    expect(push.items.map((i) => [i.status, i.action])).toEqual([["Modified", "upload"]])
    expect(push.nextBase("n").files.get(p)).toBe(`${hex("a")}+l`)
    // Back from a link to a file, pulled by the other side.
    const pull = planFiles("pull", link, file, baseOf({ [p]: "a+l" }), { delete: false, force: false })
    expect(pull.items.map((i) => [i.status, i.action])).toEqual([["Modified", "write"]])
    expect(planFiles("pull", file, link, before, { delete: false, force: false }).items[0]!.action).toBe("write")
    // A link is not an executable of the same bytes either.
    const executable = entries({ [p]: "a+x" })
    expect(
      planFiles("push", link, executable, baseOf({ [p]: "a+x" }), { delete: false, force: false }).items[0]!.action
    ).toBe("upload")
    const edited = entries({ [p]: "b" })
    expect(planFiles("push", link, edited, before, { delete: false, force: false }).conflicts).toEqual([p])
    expect(planFiles("pull", edited, link, before, { delete: false, force: false }).conflicts).toEqual([p])
  })

  it("carries deletions only with delete", () => {
    const plan = planFiles("push", [], entries({ "config/app.yaml": "a" }), baseOf({ "config/app.yaml": "a" }), {
      delete: false,
      force: false
    })
    expect(plan.items.map((i) => i.action)).toEqual(["skip"])
    expect(plan.nextBase("r").files.get("config/app.yaml")).toBe(hex("a"))
    const withDelete = planFiles("push", [], entries({ "config/app.yaml": "a" }), baseOf({ "config/app.yaml": "a" }), {
      delete: true,
      force: false
    })
    expect(withDelete.items.map((i) => i.action)).toEqual(["delete-remote"])
    expect(withDelete.nextBase("r").files.has("config/app.yaml")).toBe(false)
  })

  it("with no recorded base, differing contents conflict unless forced, and the forced side wins", () => {
    const local = entries({ "config/app.yaml": "a" })
    const remote = entries({ "config/app.yaml": "b" })
    const empty: SyncBase = { revision: null, files: new Map() }
    expect(planFiles("pull", local, remote, empty, { delete: false, force: false }).conflicts).toEqual([
      "config/app.yaml"
    ])
    const forced = planFiles("pull", local, remote, empty, { delete: false, force: true })
    expect(forced.items.map((i) => i.action)).toEqual(["write"])
  })
})

/**
 * Sides as manifests and listings come (sorted by path), over paths that sort around each other: a prefix and its
 * folder ("a" < "a-" < "a/" < "a0"), non-ASCII and a surrogate pair (UTF-16 order, as both sides sort).
 */
const sortedSide = FastCheck.uniqueArray(
  FastCheck.tuple(
    FastCheck.array(
      FastCheck.stringOf(FastCheck.constantFrom("a", "-", "0", "\u00e9", "\ud835\udcb3"), {
        minLength: 1,
        maxLength: 3
      }),
      { minLength: 1, maxLength: 3 }
    ).map((segments) => segments.join("/")),
    FastCheck.constantFrom("a", "b", "a+x", "a+l")
  ),
  { selector: ([path]) => path, maxLength: 12 }
).map((side) => side.map(([path, version]) => entryOf(path, version)).sort((x, y) => (x.path < y.path ? -1 : 1)))

const visited = (source: ReadonlyArray<FileEntry>, target: ReadonlyArray<FileEntry>) => {
  const items: Array<unknown> = []
  const counts = visitDiff(source, target, (key, status, s, t) => items.push({ key, status, s, t }))
  return { items, counts }
}
const listed = (source: ReadonlyArray<FileEntry>, target: ReadonlyArray<FileEntry>) => {
  const diff = diffFiles(source, target)
  return {
    items: diff.items.map((i) => ({ key: i.key, status: i.status, s: i.source, t: i.target })),
    counts: diff.counts
  }
}

describe("visitDiff (the plan's two-way pass)", () => {
  it("visits sorted sides side by side exactly as diffFiles lists them: every path once, in order, the same status, entries and counts", () => {
    FastCheck.assert(
      FastCheck.property(sortedSide, sortedSide, (source, target) => {
        expect(visited(source, target)).toEqual(listed(source, target))
      }),
      { numRuns: 300 }
    )
  })

  it("sides out of order, or with a path twice, go through diffFiles (its last occurrence kept)", () => {
    FastCheck.assert(
      FastCheck.property(sortedSide, sortedSide, FastCheck.nat(), (source, target, k) => {
        const shuffled = [...source].reverse()
        const doubled = target.length === 0 ? target : [...target, target[k % target.length]!]
        expect(visited(shuffled, doubled)).toEqual(listed(shuffled, doubled))
      })
    )
  })

  // Paths that are a file on one side and a folder on another are left out: what replaces them reads the other
  // side in the order given (checked in the tests above), and the two-way pass is what differs here.
  it("a plan from sorted sides equals the plan from the same sides in another order (both directions, any options)", () => {
    FastCheck.assert(
      FastCheck.property(
        sortedSide,
        sortedSide,
        sortedSide,
        FastCheck.boolean(),
        FastCheck.boolean(),
        (local, remote, base, carry, force) => {
          if (fileAndFolder([...new Set([...local, ...remote, ...base].map((e) => e.path))]) !== undefined) return
          const b: SyncBase = { revision: "r", files: new Map(base.map((e) => [e.path, fileVersion(e)])) }
          for (const direction of ["push", "pull"] as const) {
            const options = { delete: carry, force }
            const walked = planFiles(direction, local, remote, b, options)
            const mapped = planFiles(direction, [...local].reverse(), [...remote].reverse(), b, options)
            expect(walked.items).toEqual(mapped.items)
            expect(walked.counts).toEqual(mapped.counts)
            expect(walked.conflicts).toEqual(mapped.conflicts)
            expect(walked.nextBase("n")).toEqual(mapped.nextBase("n"))
          }
        }
      ),
      { numRuns: 300 }
    )
  })
})
