import * as fs from "node:fs"
import * as nodePath from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, FastCheck as fc } from "effect"
import { fileEntry, linkEntry, linkTargetProblem } from "../../../src/domain/model.js"
import { FileState, make as makeFileState, type StateFile } from "../../../src/services/FileState.js"
import { type WorkspaceFile, type WorkspaceShape, Workspaces } from "../../../src/services/Workspace.js"
import type { Contents } from "../../../src/services/WorkspaceWrite.js"
import { localManifest } from "../../../src/stages/files/bundle.js"
import { sha } from "../../support/hostile.js"
import { tempDirs } from "../../support/tree.js"

const tempDir = tempDirs("manifest")

/** A tree held in memory: each file's bytes, executable bit and mtime; a link's target. */
type Tree = Record<string, { readonly bytes: string; readonly executable: boolean; readonly mtimeMs: number } | string>

/**
 * A Workspace and a FileState with no disk behind them: the tree is listed and hashed from memory (each path asked
 * to be hashed is recorded), the hash cache is kept in a map, and any other call dies.
 */
const inMemory = (root: string, projectRoot: string, tree: () => Tree) => {
  const hashedPaths: Array<Array<string>> = []
  const kept = new Map<StateFile, string>()
  const unused = () => Effect.die("not used by the local manifest")
  const listing = (): ReadonlyArray<WorkspaceFile> =>
    Object.entries(tree())
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([path, f]) =>
        typeof f === "string"
          ? { path, size: Buffer.byteLength(f), mtimeMs: 0, mode: 0o777, link: f }
          : { path, size: Buffer.byteLength(f.bytes), mtimeMs: f.mtimeMs, mode: f.executable ? 0o755 : 0o644 }
      )
  const workspace: WorkspaceShape = {
    root,
    listFiles: () => Effect.sync(listing),
    hashFiles: (files, onHashed) =>
      Effect.sync(() => {
        hashedPaths.push(files.map((f) => f.path))
        onHashed?.(files.length)
        return files.map((f) => {
          const file = tree()[f.path]
          if (typeof file !== "object") throw new Error(`not a file of the tree: ${f.path}`)
          return fileEntry(f.path, Buffer.byteLength(file.bytes), sha(file.bytes), false)
        })
      }),
    readFile: unused,
    readLink: unused,
    readFiles: unused,
    readInto: unused,
    readLinks: unused,
    writeFile: unused,
    writeFiles: unused,
    removeFile: unused,
    readRawFiles: unused,
    readProject: unused,
    membership: unused,
    listTop: unused,
    sweepLitter: unused,
    obstacles: unused
  }
  const state = {
    ...makeFileState(projectRoot),
    read: (name: StateFile) => Effect.sync(() => kept.get(name)),
    write: (name: StateFile, text: Contents) =>
      Effect.sync(() => {
        // `concat` spreads an array of pieces and takes a string or bytes as one piece.
        const pieces = ([] as Array<string | Uint8Array>).concat(text)
        kept.set(name, Buffer.concat(pieces.map((p) => (typeof p === "string" ? Buffer.from(p) : p))).toString())
      }),
    remove: unused,
    stat: unused
  }
  const only = <A>(asked: string, held: string, port: A) => {
    if (nodePath.resolve(asked) !== held) throw new Error(`not the tree of this test: ${asked}`)
    return port
  }
  const provide = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    effect.pipe(
      Effect.provideService(Workspaces, { at: (r) => only(r, root, workspace) }),
      Effect.provideService(FileState, { at: (p) => only(p, projectRoot, state) })
    )
  return { hashedPaths, kept, provide }
}

/**
 * What the manifest must say of the tree: each file's hash and bit, each carried link's target's hash, by path; the
 * links whose target leaves the tree, by path.
 */
const expected = (tree: Tree) => {
  const sorted = Object.entries(tree).sort(([a], [b]) => (a < b ? -1 : 1))
  const carried = sorted.filter(([path, f]) => typeof f !== "string" || linkTargetProblem(path, f) === undefined)
  return {
    entries: carried.map(([path, f]) =>
      typeof f === "string"
        ? linkEntry(path, Buffer.byteLength(f), sha(f))
        : fileEntry(path, Buffer.byteLength(f.bytes), sha(f.bytes), f.executable)
    ),
    notCarried: sorted.flatMap(([path, f]) =>
      typeof f === "string" && linkTargetProblem(path, f) !== undefined ? [path] : []
    )
  }
}

const pathArb = fc
  .array(fc.constantFrom("a", "b", "docs", "x.md", "y.sh"), { minLength: 1, maxLength: 3 })
  .map((parts) => parts.join("/"))
const fileArb = fc.oneof(
  fc.record({ bytes: fc.string({ maxLength: 40 }), executable: fc.boolean() }),
  fc.constantFrom("x.md", "../b/y.sh")
)

describe("bundle.localManifest", () => {
  it.effect.prop(
    "over a Workspace and FileState held in memory: the tree's entries, then from the cache, then one changed file",
    [fc.dictionary(pathArb, fileArb, { minKeys: 1, maxKeys: 12 }), fc.nat()],
    ([generated, pick]) =>
      Effect.gen(function* () {
        // Neither the services folder nor the project exists: every byte comes through the ports.
        const projectRoot = nodePath.join(tempDir("memory"), "project")
        const root = nodePath.join(projectRoot, "services")
        // A path that is also another's folder cannot be both: keep the leaves only.
        const all = Object.keys(generated)
        const old = Date.now() - 60_000
        let tree: Tree = Object.fromEntries(
          Object.entries(generated)
            .filter(([p]) => !all.some((q) => q.startsWith(`${p}/`)))
            .map(([p, f]) => [p, typeof f === "object" ? { ...f, mtimeMs: old } : f])
        )
        const paths = Object.keys(tree)
        const ports = inMemory(root, projectRoot, () => tree)
        const run = ports.provide(localManifest({ servicesPath: root, projectRoot, writeCache: true }))
        const files = paths.filter((p) => typeof tree[p] === "object").sort()

        const cold = yield* run
        expect(cold.entries).toEqual(expected(tree).entries)
        expect(cold.notCarried.map((l) => l.path)).toEqual(expected(tree).notCarried)
        expect(cold.hashed).toBe(files.length)
        expect(ports.hashedPaths).toEqual([files])
        expect(fs.existsSync(projectRoot)).toBe(false)

        // The cache the first run kept vouches for every file: nothing is hashed again.
        const warm = yield* run
        expect(warm.entries).toEqual(cold.entries)
        expect(warm.hashed).toBe(0)
        expect(ports.hashedPaths.at(-1)).toEqual([])

        // One file changed (new bytes, new mtime): it alone is hashed again.
        const changed = files[pick % Math.max(files.length, 1)]
        if (changed === undefined) return
        tree = { ...tree, [changed]: { bytes: `changed ${pick}`, executable: false, mtimeMs: old + 1 } }
        const again = yield* run
        expect(again.entries).toEqual(expected(tree).entries)
        expect(again.hashed).toBe(1)
        expect(ports.hashedPaths.at(-1)).toEqual([changed])
        expect(fs.existsSync(projectRoot)).toBe(false)
      }),
    { fastCheck: { numRuns: 25 } }
  )
})
