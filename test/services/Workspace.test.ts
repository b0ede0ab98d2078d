import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve as resolvePath } from "node:path"
import { it } from "@effect/vitest"
import { Effect, Either } from "effect"
import fc from "fast-check"
import { afterAll, describe, expect } from "vitest"
import { inside, layer, leftOut, make, Workspace, Workspaces, writeFilesAtomic } from "../../src/services/Workspace.js"
import { bytePath, latin1 } from "../support/rawNames.js"

const root = mkdtempSync(join(tmpdir(), "agentsync-workspace-"))
afterAll(() => rmSync(root, { recursive: true, force: true }))

/** Every file under a folder, relative, sorted. */
const tree = (dir: string, rel = ""): Array<string> =>
  readdirSync(join(dir, rel), { withFileTypes: true })
    .flatMap((d) =>
      d.isDirectory() ? tree(dir, rel === "" ? d.name : `${rel}/${d.name}`) : [rel === "" ? d.name : `${rel}/${d.name}`]
    )
    .sort()

describe("Workspace.writeFiles", () => {
  it.effect("writes many files in new folders, replacing existing ones, and leaves no temp file", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(root, "many-"))
      const ws = make(dir)
      yield* ws.writeFiles([{ path: "content/a/x.md", bytes: "old" }])
      // More files than one slice, strings and bytes, an existing file replaced.
      const files = Array.from({ length: 600 }, (_, i) => ({
        path: `content/s${i % 7}/${i % 2 === 0 ? `p${i}.md` : `p${i}/index.md`}`,
        bytes: i % 3 === 0 ? new TextEncoder().encode(`bytes ${i} ✓`) : `text ${i} ✓`
      }))
      yield* ws.writeFiles([...files, { path: "content/a/x.md", bytes: "new" }])
      expect(tree(dir)).toEqual([...files.map((f) => f.path), "content/a/x.md"].sort())
      for (const f of files) {
        expect(readFileSync(join(dir, f.path), "utf8")).toBe(
          typeof f.bytes === "string" ? f.bytes : new TextDecoder().decode(f.bytes)
        )
      }
      expect(readFileSync(join(dir, "content/a/x.md"), "utf8")).toBe("new")
    })
  )

  it.effect(
    "a failure names the file, keeps the old bytes of what it did not write, and cleans up its temp files",
    () =>
      Effect.gen(function* () {
        const dir = mkdtempSync(join(root, "fail-"))
        const ws = make(dir)
        yield* ws.writeFiles([{ path: "a/keep.md", bytes: "old" }])
        // A file where a folder is needed: the write of `blocked/x.md` cannot happen.
        writeFileSync(join(dir, "blocked"), "a file, not a folder")
        const result = yield* Effect.either(
          ws.writeFiles([
            { path: "a/keep.md", bytes: "new" },
            { path: "blocked/x.md", bytes: "never" }
          ])
        )
        expect(Either.isLeft(result)).toBe(true)
        if (Either.isLeft(result)) {
          expect(result.left._tag).toBe("IoError")
          expect(result.left.path).toBe(join(dir, "blocked/x.md"))
        }
        expect(readFileSync(join(dir, "a/keep.md"), "utf8")).toBe("old")
        expect(tree(dir)).toEqual(["a/keep.md", "blocked"])
      })
  )

  it.effect(
    "a failure in a later slice, while an earlier one is flushing, keeps what was committed and leaves no temp file",
    () =>
      Effect.gen(function* () {
        const dir = mkdtempSync(join(root, "slices-"))
        writeFileSync(join(dir, "blocked"), "a file, not a folder")
        mkdirSync(join(dir, "a"))
        mkdirSync(join(dir, "b"))
        const files = ["a/1.md", "a/2.md", "b/3.md", "b/4.md", "blocked/5.md", "c/6.md", "c/7.md"].map((p) => ({
          full: join(dir, p),
          bytes: p
        }))
        const result = yield* Effect.either(writeFilesAtomic(files, 2))
        expect(Either.isLeft(result) && result.left.path).toBe(join(dir, "blocked/5.md"))
        // Slice 1 was committed before slice 3 was created; slice 2 was flushing and is discarded with it.
        expect(tree(dir)).toEqual(["a/1.md", "a/2.md", "blocked"])
        const ok = yield* Effect.either(
          writeFilesAtomic(
            files.filter((f) => !f.full.includes("blocked")),
            2
          )
        )
        expect(Either.isRight(ok)).toBe(true)
        expect(tree(dir)).toEqual(["a/1.md", "a/2.md", "b/3.md", "b/4.md", "blocked", "c/6.md", "c/7.md"])
      })
  )

  it.effect("a folder that did not exist appears whole, with one rename, or not at all", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(root, "staged-"))
      const fresh = Array.from({ length: 40 }, (_, i) => ({
        full: join(dir, "content", `s${i % 3}`, `p${i}`, "index.md"),
        bytes: `page ${i}`
      }))
      // Written in slices of 8 into a staging copy of content/, renamed into place at the end.
      yield* writeFilesAtomic(fresh, 8)
      expect(tree(dir)).toEqual(fresh.map((f) => f.full.slice(dir.length + 1)).sort())
      for (const f of fresh) expect(readFileSync(f.full, "utf8")).toBe(f.bytes)
      // A new folder beside an existing one; the run fails on its last file: the new folder never appears.
      writeFileSync(join(dir, "blocked"), "a file, not a folder")
      const more = [
        { full: join(dir, "content", "s0", "p0", "index.md"), bytes: "replaced" },
        { full: join(dir, "content", "s9", "new", "index.md"), bytes: "new" },
        { full: join(dir, "blocked", "x.md"), bytes: "never" }
      ]
      const failed = yield* Effect.either(writeFilesAtomic(more, 8))
      expect(Either.isLeft(failed) && failed.left.path).toBe(join(dir, "blocked", "x.md"))
      expect(tree(dir)).toEqual([...fresh.map((f) => f.full.slice(dir.length + 1)), "blocked"].sort())
      expect(readFileSync(fresh[0]!.full, "utf8")).toBe("page 0")
    })
  )

  it.effect("refuses a path that escapes the tree before writing anything", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(root, "escape-"))
      const ws = make(dir)
      const result = yield* Effect.either(
        ws.writeFiles([
          { path: "ok.md", bytes: "x" },
          { path: "../out.md", bytes: "x" }
        ])
      )
      expect(Either.isLeft(result)).toBe(true)
      expect(tree(dir)).toEqual([])
    })
  )
})

describe("Workspace.readInto and readLinks", () => {
  it.effect("fill each buffer exactly, tell a file that is shorter or longer, and read links without following", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(root, "read-"))
      const large = Buffer.alloc(5 * 1024 * 1024, "x")
      writeFileSync(join(dir, "a.md"), "abc")
      writeFileSync(join(dir, "large.bin"), large)
      symlinkSync("a.md", join(dir, "link"))
      symlinkSync("nowhere", join(dir, "dangling"))
      const ws = make(dir)
      const slots = [Buffer.alloc(3), Buffer.alloc(2), Buffer.alloc(4), Buffer.alloc(large.length)]
      // Small files in one synchronous pass; a large one through the thread pool in the same call.
      const whole = yield* ws.readInto([
        { path: "a.md", into: slots[0]! },
        { path: "a.md", into: slots[1]! },
        { path: "a.md", into: slots[2]! },
        { path: "large.bin", into: slots[3]! }
      ])
      expect(whole).toEqual([true, false, false, true])
      expect(slots[0]!.toString()).toBe("abc")
      expect(slots[3]!.equals(large)).toBe(true)
      expect(yield* ws.readInto([{ path: "large.bin", into: Buffer.alloc(large.length - 1) }])).toEqual([false])
      expect(yield* ws.readLinks(["link", "dangling", "a.md", "gone"])).toEqual([
        "a.md",
        "nowhere",
        undefined,
        undefined
      ])
    })
  )

  it.effect("name the file they cannot read, and refuse a path that escapes the tree", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(root, "read-fail-"))
      const ws = make(dir)
      const gone = yield* Effect.flip(ws.readInto([{ path: "gone.md", into: Buffer.alloc(1) }]))
      expect(gone.path).toBe(join(dir, "gone.md"))
      expect(gone.reason).toMatch(/^cannot read: ENOENT|^cannot read: no such file/)
      const large = yield* Effect.flip(ws.readInto([{ path: "gone.bin", into: Buffer.alloc(5 * 1024 * 1024) }]))
      expect(large.path).toBe(join(dir, "gone.bin"))
      for (const e of [
        yield* Effect.flip(ws.readInto([{ path: "../out.md", into: Buffer.alloc(1) }])),
        yield* Effect.flip(ws.readLinks(["../out"]))
      ])
        expect(e).toMatchObject({ _tag: "IoError", reason: "path escapes the services tree" })
      writeFileSync(join(dir, "file"), "x")
      const notADir = yield* Effect.flip(ws.readLinks(["file/under"]))
      expect(notADir.path).toBe(join(dir, "file/under"))
    })
  )

  it.effect(
    "listTop lists the top of the tree (a link to a folder is not one); leftOut names what file sync leaves there",
    () =>
      Effect.gen(function* () {
        const dir = mkdtempSync(join(root, "top-"))
        mkdirSync(join(dir, "agents/a"), { recursive: true })
        mkdirSync(join(dir, "prompts"))
        writeFileSync(join(dir, "notes.md"), "x")
        writeFileSync(join(dir, ".DS_Store"), "x")
        symlinkSync("prompts", join(dir, "linked"))
        writeFileSync(join(dir, ".agentsyncignore"), "notes.md\n")
        const ws = make(dir)
        const top = [...(yield* ws.listTop())].sort((a, b) => (a.name < b.name ? -1 : 1))
        expect(top).toEqual([
          { name: ".DS_Store", folder: false },
          { name: ".agentsyncignore", folder: false },
          { name: "agents", folder: true },
          { name: "linked", folder: false },
          { name: "notes.md", folder: false },
          { name: "prompts", folder: true }
        ])
        expect(yield* leftOut(ws)).toEqual(["linked", "prompts/"])
        // No tree: nothing at its top; a file where the tree should be: an IoError naming it.
        expect(yield* make(join(dir, "missing")).listTop()).toEqual([])
        const notATree = yield* Effect.flip(make(join(dir, "notes.md")).listTop())
        expect(notATree.path).toBe(join(dir, "notes.md"))
      })
  )

  it.effect("listTop names a name that is not UTF-8 by its bytes, so left_out says which one it is", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(root, "top-bytes-"))
      mkdirSync(join(dir, "agents"))
      mkdirSync(bytePath(dir, latin1("brouillé")))
      writeFileSync(bytePath(dir, latin1("café.md")), "x")
      expect(yield* leftOut(make(dir))).toEqual(["brouill\\xe9/", "caf\\xe9.md"])
    })
  )

  // A folder's name is UTF-8 (the walk entered it), yet may hold a control character: shown raw, ESC [31m would
  // recolour the terminal. The warning and the refusal show each name of the path as the bad name itself is shown.
  it.effect(
    "readProject's warning and listFiles' refusal show a name not UTF-8 under a folder named with a control character alike, escaped",
    () =>
      Effect.gen(function* () {
        const dir = mkdtempSync(join(root, "control-"))
        mkdirSync(join(dir, "config", "\x1b[31mred"), { recursive: true })
        writeFileSync(bytePath(join(dir, "config", "\x1b[31mred"), latin1("bé")), "x")
        const ws = make(dir)
        const warned = (yield* ws.readProject()).notUtf8
        expect(warned).toEqual([join(dir, "config/\\x1b[31mred/b\\xe9")])
        const refused = yield* Effect.flip(ws.listFiles())
        // The refusal names the folder the warning's path is under, and the same name.
        expect(
          refused._tag === "InvalidInput" &&
            `${refused.file}/${/^the name "(.*?)" is not UTF-8: /.exec(refused.reason)?.[1]}`
        ).toBe(warned[0])
      })
  )

  it.effect("the layer's Workspace is the one the Workspaces in force gives", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(root, "layer-"))
      const given = { ...make(dir), root: "given" }
      const ws = yield* Effect.provide(Workspace, layer(dir)).pipe(
        Effect.provideService(Workspaces, { at: () => given })
      )
      expect(ws.root).toBe("given")
      expect((yield* Effect.provide(Workspace, layer(dir))).root).toBe(dir)
    })
  )
})

describe("inside", () => {
  // What `inside` answered before its plain-path shortcut: resolved, then checked.
  const resolved = (root: string, path: string) => {
    const full = resolvePath(root, path)
    return full === root || full.startsWith(`${root}/`) ? full : undefined
  }
  it("answers as resolving and checking does, for any path over `a`, `.` and `/`, under the root and under `/`", () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom("a", "b", ".", "/", ".."), { maxLength: 10 }).map((parts) => parts.join("")),
        fc.constantFrom("/srv/tree", "/"),
        (path, under) => {
          expect(inside(under, path)).toBe(resolved(under, path))
        }
      ),
      { numRuns: 5000 }
    )
  })
})
