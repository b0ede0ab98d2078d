import * as fs from "node:fs"
import * as nodePath from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, Stream } from "effect"
import { fileEntry, linkEntry } from "../../../src/domain/model.js"
import { IoError } from "../../../src/errors.js"
import { make, type WorkspaceShape, Workspaces } from "../../../src/services/Workspace.js"
import { readArchive } from "../../../src/stages/files/archive.js"
import { bundle } from "../../../src/stages/files/bundle.js"
import { sha } from "../../support/hostile.js"
import { tempDirs } from "../../support/tree.js"

const collect = <E>(s: Stream.Stream<Uint8Array, E>) =>
  Stream.runCollect(s).pipe(Effect.map((c) => Buffer.concat(Chunk.toReadonlyArray(c))))

/** Every entry of an archive: a file's bytes, a link's target, and which it is. */
const readAll = (archive: Uint8Array) => {
  const entries = new Map<string, { readonly bytes: string; readonly link: boolean }>()
  return readArchive(Stream.make(archive), {
    file: (path, _size, _executable, link) => {
      const chunks: Array<Uint8Array> = []
      return {
        write: (c) => void chunks.push(c),
        end: () => void entries.set(path, { bytes: Buffer.concat(chunks).toString(), link })
      }
    }
  }).pipe(Effect.as(entries))
}

const tempDir = tempDirs("bundle")

/** A Workspace with no disk behind it: its files and links are held in memory, and each read call is counted. */
const inMemory = (root: string, files: Record<string, string>, links: Record<string, string>) => {
  const calls = { readInto: 0, readLinks: 0, paths: [] as Array<string> }
  const unused = () => Effect.die("not used by the bundle stage")
  const workspace: WorkspaceShape = {
    ...make(root),
    readFile: unused,
    readFiles: unused,
    readLink: unused,
    readRawFiles: unused,
    readInto: (reads) =>
      Effect.sync(() => {
        calls.readInto++
        return reads.map((r) => {
          calls.paths.push(r.path)
          const bytes = Buffer.from(files[r.path] ?? "")
          bytes.copy(r.into, 0, 0, r.into.length)
          return bytes.length === r.into.length
        })
      }),
    readLinks: (paths) =>
      Effect.sync(() => {
        calls.readLinks++
        return paths.map((p) => links[p])
      })
  }
  return { calls, workspaces: { at: (r: string) => (nodePath.resolve(r) === root ? workspace : make(r)) } }
}

describe("bundle", () => {
  it.effect("reads the tree only through the Workspace in force: one call a batch, nothing from the disk", () =>
    Effect.gen(function* () {
      // The services folder does not exist: every byte must come through the port.
      const root = nodePath.join(tempDir("memory"), "services")
      const files: Record<string, string> = Object.fromEntries(
        Array.from({ length: 600 }, (_, i) => [
          `content/f${String(i).padStart(3, "0")}.md`,
          `file ${i}\n`.repeat(i % 16)
        ])
      )
      const links = { "content/zz-link.md": "f001.md" }
      const entries = [
        ...Object.entries(files).map(([p, t]) => fileEntry(p, Buffer.byteLength(t), sha(t), false)),
        linkEntry("content/zz-link.md", 7, sha("f001.md"))
      ]
      const { calls, workspaces } = inMemory(root, files, links)
      const archive = yield* collect(bundle({ servicesPath: root, files: entries })).pipe(
        Effect.provideService(Workspaces, workspaces)
      )
      const read = yield* readAll(archive)
      expect([...read.keys()]).toEqual(entries.map((e) => e.path))
      for (const [p, t] of Object.entries(files)) expect(read.get(p)).toEqual({ bytes: t, link: false })
      expect(read.get("content/zz-link.md")).toEqual({ bytes: "f001.md", link: true })
      expect(calls.paths).toEqual(Object.keys(files))
      // 600 small files travel in batches of at most 256: three calls, not one per file.
      expect(calls.readInto).toBe(3)
      expect(calls.readLinks).toBe(1)
    })
  )

  it.effect("an error of the Workspace's read surfaces as the IoError it gave, naming the file", () =>
    Effect.gen(function* () {
      const root = nodePath.join(tempDir("failing"), "services")
      const { workspaces } = inMemory(root, {}, {})
      const failing = {
        at: (r: string) => ({
          ...workspaces.at(r),
          readInto: () => Effect.fail(new IoError({ path: nodePath.join(root, "a.md"), reason: "cannot read" }))
        })
      }
      const result = yield* Effect.either(
        collect(bundle({ servicesPath: root, files: [fileEntry("a.md", 1, sha("a"), false)] })).pipe(
          Effect.provideService(Workspaces, failing)
        )
      )
      expect(Either.isLeft(result) && result.left).toEqual(
        new IoError({ path: nodePath.join(root, "a.md"), reason: "cannot read" })
      )
    })
  )

  it.effect("on the disk: a file gone since it was listed, a link made a file, a link retargeted, each named", () =>
    Effect.gen(function* () {
      const root = nodePath.join(tempDir("disk"), "services")
      fs.mkdirSync(root)
      fs.writeFileSync(nodePath.join(root, "a.md"), "a")
      fs.symlinkSync("a.md", nodePath.join(root, "l1"))
      fs.symlinkSync("a.md", nodePath.join(root, "l2"))
      const a = fileEntry("a.md", 1, sha("a"), false)
      const l1 = linkEntry("l1", 4, sha("a.md"))
      const l2 = linkEntry("l2", 4, sha("a.md"))
      const failure = (entries: ReadonlyArray<ReturnType<typeof fileEntry>>) =>
        Effect.flip(collect(bundle({ servicesPath: root, files: entries })))
      // As listed, it bundles.
      const read = yield* readAll(yield* collect(bundle({ servicesPath: root, files: [a, l1, l2] })))
      expect(read.get("l2")).toEqual({ bytes: "a.md", link: true })
      fs.rmSync(nodePath.join(root, "l1"))
      fs.writeFileSync(nodePath.join(root, "l1"), "a.md")
      expect(yield* failure([a, l1])).toMatchObject({
        _tag: "IoError",
        path: nodePath.join(root, "l1"),
        reason: "changed while bundling; run again"
      })
      fs.rmSync(nodePath.join(root, "l2"))
      fs.symlinkSync("b.md", nodePath.join(root, "l2"))
      expect(yield* failure([l2])).toMatchObject({
        path: nodePath.join(root, "l2"),
        reason: expect.stringMatching(/changed/)
      })
      fs.rmSync(nodePath.join(root, "a.md"))
      const gone = yield* failure([a])
      expect(gone).toMatchObject({ _tag: "IoError", path: nodePath.join(root, "a.md") })
      expect(gone.reason).toMatch(/^cannot read/)
    })
  )
})
