// The racy rule against a coarse clock: a file whose mtime is at or after its listing's stamp is vouched for by
// neither the hash cache nor a settled mark, so a rewrite of the same size in the same tick is never lost. The
// file system's clock is simulated: the state's clock and every file's mtime (set with utimes) are truncated to a
// tick of 1 ms, 1 s or 2 s (FAT), and time moves only when the test says so.
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, FastCheck as fc, Stream } from "effect"
import { makeMembership } from "../../../src/domain/membership.js"
import { FileState, make as makeFileState } from "../../../src/services/FileState.js"
import { walkTree } from "../../../src/services/state.js"
import { make as makeWorkspace, Workspaces } from "../../../src/services/Workspace.js"
import { fileRecord } from "../../../src/stages/files/archive.js"
import { keepHashes, listAndStamp } from "../../../src/stages/files/bundle.js"
import { racyListing } from "../../../src/stages/files/settled.js"
import { listingDigest } from "../../../src/stages/files/settledCheck.js"
import { streamBundle } from "../../../src/stages/files/streamBundle.js"
import { sha } from "../../support/hostile.js"
import { tempDirs } from "../../support/tree.js"

const tempDir = tempDirs("racystream")

const FILES = ["config/a.yaml", "config/b.yaml", "agents/x/c.md"] as const

type Op =
  | { readonly kind: "tick"; readonly ms: number }
  | { readonly kind: "write"; readonly file: number; readonly sameSize: boolean; readonly seed: number }
  /** A run of the local manifest; `during`: a file rewritten (same size) between the listing and the hashing. */
  | { readonly kind: "run"; readonly during: number | undefined; readonly seed: number }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant("tick" as const), ms: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 2500 })) }),
  fc.record({
    kind: fc.constant("write" as const),
    file: fc.nat(FILES.length - 1),
    sameSize: fc.boolean(),
    seed: fc.nat(35)
  }),
  fc.record({
    kind: fc.constant("run" as const),
    during: fc.option(fc.nat(FILES.length - 1), { nil: undefined }),
    seed: fc.nat(35)
  })
)

/** The cache entries kept on disk, by path. */
const keptCache = (projectRoot: string): Map<string, readonly [number, number, string]> => {
  const full = nodePath.join(projectRoot, ".agentsync", "hash-cache.json")
  if (!fs.existsSync(full)) return new Map()
  const c = JSON.parse(fs.readFileSync(full, "utf8")) as {
    paths: Array<string>
    sizes: Array<number>
    mtimes: Array<number>
    sha256: Array<string>
  }
  return new Map(c.paths.map((p, i) => [p, [c.sizes[i] ?? -1, c.mtimes[i] ?? -1, c.sha256[i] ?? ""]]))
}

describe("keepHashes: the racy rule in the streamed first upload", () => {
  it.effect.prop(
    "never vouches for a stale file: a cache entry or a mark whose size and mtime still match holds the bytes",
    [fc.constantFrom(1, 1000, 2000), fc.array(opArb, { minLength: 1, maxLength: 30 })],
    ([tick, ops]) =>
      Effect.gen(function* () {
        const projectRoot = tempDir("law")
        const root = nodePath.join(projectRoot, "services")
        fs.mkdirSync(nodePath.join(projectRoot, ".agentsync"))
        // Simulated time, well in the past of the process clock (whose stamp would vouch for every file).
        let now = Date.now() - 86_400_000
        const coarse = (t: number) => Math.floor(t / tick) * tick
        const full = (i: number) => nodePath.join(root, FILES[i] ?? FILES[0])
        const write = (i: number, sameSize: boolean, seed: number) => {
          const before = fs.existsSync(full(i)) ? fs.readFileSync(full(i), "utf8") : "start"
          const letter = "abcdefghijklmnopqrstuvwxyz0123456789"[seed] ?? "z"
          const text = sameSize ? `${letter}${before.slice(1)}` : `${before}${letter}`
          fs.mkdirSync(nodePath.dirname(full(i)), { recursive: true })
          fs.writeFileSync(full(i), text)
          const at = new Date(coarse(now))
          fs.utimesSync(full(i), at, at)
        }
        for (let i = 0; i < FILES.length; i++) write(i, false, i)
        let during: (() => void) | undefined
        const real = makeWorkspace(root)
        const workspace = {
          ...real,
          readInto: ((reads) =>
            Effect.suspend(() => {
              during?.()
              during = undefined
              return real.readInto(reads)
            })) satisfies typeof real.readInto
        }
        // The stamp as the file system gives it: the mtime of a file stamped now, read back (utimes goes through
        // seconds as a double: a millisecond value reads back as the file's mtimes do, not always exactly).
        const scratch = nodePath.join(projectRoot, "scratch")
        const stamp = () => {
          fs.writeFileSync(scratch, "x")
          const at = new Date(coarse(now))
          fs.utimesSync(scratch, at, at)
          return fs.statSync(scratch).mtimeMs
        }
        const state = { ...makeFileState(projectRoot), clock: () => Effect.sync(stamp) }
        const run = Effect.gen(function* () {
          const listed = yield* listAndStamp(workspace, state)
          const s = streamBundle({
            servicesPath: root,
            files: listed.files,
            prelude: [],
            trailer: () => fileRecord("t", Buffer.from("{}"))
          })
          yield* Stream.runDrain(s.stream)
          yield* keepHashes({ servicesPath: root, projectRoot }, listed.files, listed.at, s.entries)
          const entries = s.entries.filter((e) => e !== undefined)
          expect(entries.length).toBe(listed.files.length)
          return { listed: listed.files, listedAt: listed.at, entries }
        }).pipe(
          Effect.provideService(Workspaces, { at: () => workspace }),
          Effect.provideService(FileState, { at: () => state })
        )
        // What a settled mark would record: the listing's fingerprint and the bytes it stood for.
        let mark: { readonly digest: string; readonly shas: ReadonlyMap<string, string> } | undefined
        const bytes = (path: string) => sha(fs.readFileSync(nodePath.join(root, path)))
        const check = () => {
          const listed = walkTree(root, makeMembership(""))
          const byPath = new Map(listed.map((f) => [f.path, f]))
          for (const [path, [size, mtime, hash]] of keptCache(projectRoot)) {
            const f = byPath.get(path)
            if (f !== undefined && f.size === size && f.mtimeMs === mtime) expect(hash, path).toBe(bytes(path))
          }
          if (mark !== undefined && listingDigest(listed) === mark.digest)
            for (const f of listed) expect(mark.shas.get(f.path), f.path).toBe(bytes(f.path))
        }
        for (const op of ops) {
          if (op.kind === "tick") now += op.ms
          else if (op.kind === "write") write(op.file, op.sameSize, op.seed)
          else {
            const i = op.during
            if (i !== undefined) during = () => write(i, true, op.seed)
            const local = yield* run
            during = undefined
            mark = racyListing(local.listed, local.listedAt)
              ? undefined
              : {
                  digest: listingDigest(local.listed),
                  shas: new Map(local.entries.map((e) => [e.path, e.sha256]))
                }
          }
          check()
        }
      }),
    { fastCheck: { numRuns: 60 } }
  )
})
