// The racy rule's law over a simulated coarse clock, for any run that lists, hashes and keeps a hash cache: a cache
// entry or a settled mark whose size and mtime still match always holds the file's bytes.
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { expect } from "@effect/vitest"
import { Effect, FastCheck as fc } from "effect"
import { makeMembership } from "../../src/domain/membership.js"
import { make as makeFileState } from "../../src/services/FileState.js"
import { type WorkspaceFile, walkTree } from "../../src/services/state.js"
import { racyListing } from "../../src/stages/files/settled.js"
import { listingDigest } from "../../src/stages/files/settledCheck.js"
import { sha } from "./hostile.js"

const FILES = ["config/a.yaml", "config/b.yaml", "agents/x/c.md"] as const

type Op =
  | { readonly kind: "tick"; readonly ms: number }
  | { readonly kind: "write"; readonly file: number; readonly sameSize: boolean; readonly seed: number }
  /** A run; `during`: a file rewritten (same size) between the listing and the reading. */
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

/** The clock's tick (1 ms, 1 s, or 2 s as FAT's) and the steps. */
export const racyArbs: [fc.Arbitrary<number>, fc.Arbitrary<Array<Op>>] = [
  fc.constantFrom(1, 1000, 2000),
  fc.array(opArb, { minLength: 1, maxLength: 30 })
]

/** What a run under test answers: its listing, the listing's stamp, and the hashes it took. */
export interface RacyRun {
  readonly listed: ReadonlyArray<WorkspaceFile>
  readonly listedAt: number
  readonly entries: ReadonlyArray<{ readonly path: string; readonly sha256: string }>
}

/** What a run is made from: where, the state with the simulated clock, and the hook to call just before it reads. */
export interface RacyContext {
  readonly root: string
  readonly projectRoot: string
  readonly state: ReturnType<typeof makeFileState>
  readonly beforeRead: () => void
}

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

/** The law, as a property body over `racyArbs`, for the run `runOf` makes. */
export const racyLaw =
  <E>(tempDir: (name: string) => string, runOf: (context: RacyContext) => Effect.Effect<RacyRun, E>) =>
  ([tick, ops]: readonly [number, ReadonlyArray<Op>]) =>
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
      const run = runOf({
        root,
        projectRoot,
        state,
        beforeRead: () => {
          during?.()
          during = undefined
        }
      })
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
    })
