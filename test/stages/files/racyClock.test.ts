// The racy rule against a coarse clock: a file whose mtime is at or after its listing's stamp is vouched for by
// neither the hash cache nor a settled mark, so a rewrite of the same size in the same tick is never lost. The
// file system's clock is simulated (test/support/racyLaw.ts): the state's clock and every file's mtime are truncated
// to a tick of 1 ms, 1 s or 2 s (FAT), and time moves only when the test says so. Both ways of hashing a tree are held
// to it: the local manifest (hashed before a plan), and a first upload's stream (hashed while sent).
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { makeMembership } from "../../../src/domain/membership.js"
import { FileState, make as makeFileState } from "../../../src/services/FileState.js"
import { listingClock, RACY_MS, walkTree } from "../../../src/services/state.js"
import { make as makeWorkspace, Workspaces } from "../../../src/services/Workspace.js"
import { fileRecord } from "../../../src/stages/files/archive.js"
import { keepHashes, listAndStamp, localManifest } from "../../../src/stages/files/bundle.js"
import { racyListing } from "../../../src/stages/files/settled.js"
import { streamBundle } from "../../../src/stages/files/streamBundle.js"
import { sha } from "../../support/hostile.js"
import { racyArbs, racyLaw } from "../../support/racyLaw.js"
import { tempDirs } from "../../support/tree.js"

const tempDir = tempDirs("racy")

describe("the racy rule (listing stamped by the file system's clock)", () => {
  it.effect.prop(
    "never vouches for a stale file: a cache entry or a mark whose size and mtime still match holds the bytes",
    racyArbs,
    racyLaw(tempDir, ({ root, projectRoot, state, beforeRead }) => {
      const real = makeWorkspace(root)
      const workspace = {
        ...real,
        hashFiles: ((files, onHashed) =>
          Effect.suspend(() => {
            beforeRead()
            return real.hashFiles(files, onHashed)
          })) satisfies typeof real.hashFiles
      }
      return localManifest({ servicesPath: root, projectRoot, writeCache: true }).pipe(
        Effect.provideService(Workspaces, { at: () => workspace }),
        Effect.provideService(FileState, { at: () => state })
      )
    }),
    { fastCheck: { numRuns: 60 } }
  )

  it.effect.prop(
    "holds for a first upload's stream too: the hash cache kept from the hashes taken while sending",
    racyArbs,
    racyLaw(tempDir, ({ root, projectRoot, state, beforeRead }) => {
      const real = makeWorkspace(root)
      const workspace = {
        ...real,
        readInto: ((reads) =>
          Effect.suspend(() => {
            beforeRead()
            return real.readInto(reads)
          })) satisfies typeof real.readInto
      }
      return Effect.gen(function* () {
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
    }),
    { fastCheck: { numRuns: 60 } }
  )

  it.effect("a file written in the stamp's tick, then again with the same size, is hashed again", () =>
    Effect.gen(function* () {
      const projectRoot = tempDir("tick")
      const root = nodePath.join(projectRoot, "services")
      fs.mkdirSync(nodePath.join(projectRoot, ".agentsync"))
      fs.mkdirSync(nodePath.join(root, "config"), { recursive: true })
      const file = nodePath.join(root, "config/a.yaml")
      // A FAT clock: two-second ticks.
      const tick = new Date(Math.floor((Date.now() - 3_600_000) / 2000) * 2000)
      const put = (text: string) => {
        fs.writeFileSync(file, text)
        fs.utimesSync(file, tick, tick)
      }
      put("a: 1\n")
      // The stamp in the file's tick, as the file system reads it back.
      const stamp = fs.statSync(file).mtimeMs
      const state = { ...makeFileState(projectRoot), clock: () => Effect.succeed(stamp) }
      const run = localManifest({ servicesPath: root, projectRoot, writeCache: true }).pipe(
        Effect.provideService(FileState, { at: () => state })
      )
      const first = yield* run
      expect(racyListing(first.listed, first.listedAt)).toBe(true)
      put("a: 2\n")
      const second = yield* run
      expect(second.hashed).toBe(1)
      expect(second.entries[0]?.sha256).toBe(sha("a: 2\n"))
    })
  )
})

describe("listingClock", () => {
  it("reads the file system's clock: at or after a file written before it, at or before one written after", () => {
    const projectRoot = tempDir("clock")
    const root = nodePath.join(projectRoot, "services")
    fs.mkdirSync(nodePath.join(projectRoot, ".agentsync"))
    fs.mkdirSync(nodePath.join(root, "config"), { recursive: true })
    fs.writeFileSync(nodePath.join(root, "config/before.yaml"), "b\n")
    const listing = walkTree(root, makeMembership(""))
    const stamp = listingClock(projectRoot, listing)
    fs.writeFileSync(nodePath.join(root, "config/after.yaml"), "a\n")
    const [before, after] = ["before", "after"].map((n) => fs.statSync(nodePath.join(root, `config/${n}.yaml`)))
    expect(before?.mtimeMs).toBeLessThanOrEqual(stamp)
    expect(after?.mtimeMs).toBeGreaterThanOrEqual(stamp)
    expect(stamp).toBeGreaterThan(Date.now() - RACY_MS)
  })

  it("falls back to the process clock less the racy margin, and creates nothing, when it cannot read the tree's", () => {
    const projectRoot = tempDir("noclock")
    const root = nodePath.join(projectRoot, "services")
    fs.mkdirSync(nodePath.join(root, "config"), { recursive: true })
    fs.writeFileSync(nodePath.join(root, "config/a.yaml"), "a\n")
    const listed = walkTree(root, makeMembership(""))
    // No state folder: not created.
    expect(listingClock(projectRoot, listed)).toBeLessThanOrEqual(Date.now() - RACY_MS)
    expect(fs.existsSync(nodePath.join(projectRoot, ".agentsync"))).toBe(false)
    // A listing `walkTree` did not make (its device unknown).
    fs.mkdirSync(nodePath.join(projectRoot, ".agentsync"))
    expect(listingClock(projectRoot, [...listed])).toBeLessThanOrEqual(Date.now() - RACY_MS)
    expect(listingClock(projectRoot, listed)).toBeGreaterThan(Date.now() - RACY_MS)
  })
})
