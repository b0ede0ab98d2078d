// A pull's swap moves a folder the tree does not have in whole (one rename for all of its files) and the rest file by
// file; a run killed after such a rename is finished by the next; a staged file whose write fails leaves nothing of it,
// and the pull fails with the disk's error.
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Stream } from "effect"
import { FileEntry } from "../../../src/domain/model.js"
import { ApiError } from "../../../src/errors.js"
import { stateOf } from "../../../src/services/FileState.js"
import { makeStageWriter } from "../../../src/services/FileStateStage.js"
import { Transient } from "../../../src/services/SyncApi.js"
import { apply, type Download, recoverPull } from "../../../src/stages/files/apply.js"
import { record, sha, tarGz } from "../../support/hostile.js"
import { tempDirs, treeFiles } from "../../support/tree.js"

const tempDir = tempDirs("swap-folders")

const project = (files: Record<string, string>) => {
  const root = tempDir("project")
  const services = nodePath.join(root, "services")
  fs.mkdirSync(services, { recursive: true })
  for (const [path, text] of Object.entries(files)) {
    fs.mkdirSync(nodePath.dirname(nodePath.join(services, path)), { recursive: true })
    fs.writeFileSync(nodePath.join(services, path), text)
  }
  return { root, services }
}

const entry = (path: string, text: string, executable = false) =>
  new FileEntry({ path, size: Buffer.byteLength(text), sha256: sha(text), ...(executable ? { executable } : {}) })

const stagingFolders = (root: string) =>
  fs.readdirSync(nodePath.join(root, ".agentsync")).filter((n) => n.startsWith("staging-"))

describe("the swap of a pull, folder by folder", () => {
  it.effect("new folders go in whole, existing ones file by file, a file in the way to the backup", () =>
    Effect.gen(function* () {
      const { root, services } = project({
        "a/old.md": "old\n",
        "a/same.md": "kept\n",
        x: "a file where a folder goes\n"
      })
      const pulled: Record<string, string> = {
        "a/old.md": "replaced\n",
        "a/new.md": "new in an old folder\n",
        "b/c/d.md": "deep\n",
        "b/c/run.sh": "#!/bin/sh\n",
        "b/f.md": "new folder\n",
        "x/y.md": "below what was a file\n",
        // More than the small-file limit: written as it arrives, moved in with its folder.
        "big/blob.bin": "z".repeat(1024 * 1024 + 1)
      }
      const write = Object.entries(pulled).map(([path, text]) => entry(path, text, path.endsWith(".sh")))
      const archive = tarGz(
        ...write.map((e) => record({ path: e.path, mode: e.executable ? 0o755 : 0o644 }, Buffer.from(pulled[e.path]!)))
      )
      const download: Download = (_missing, consume) =>
        consume(Stream.make(archive)).pipe(
          Effect.catchIf(
            (e): e is Transient => e instanceof Transient,
            (t) => Effect.fail(new ApiError({ status: 0, reason: t.reason }))
          )
        )
      const result = yield* apply({ projectRoot: root, servicesPath: services, download, write, delete: [] })
      expect(treeFiles(services)).toEqual({ ...pulled, "a/same.md": "kept\n" })
      expect(fs.statSync(nodePath.join(services, "b/c/run.sh")).mode & 0o111).not.toBe(0)
      expect(fs.statSync(nodePath.join(services, "b/f.md")).mode & 0o111).toBe(0)
      // What the pull replaced is in its backup, and no staging folder is left.
      expect(treeFiles(result.backup ?? "")).toMatchObject({ "a/old.md": "old\n", x: "a file where a folder goes\n" })
      expect(stagingFolders(root)).toEqual([])
    })
  )

  it.scoped("a run killed after a folder went in whole is finished by the next", () =>
    Effect.gen(function* () {
      const { root, services } = project({ "a/old.md": "old\n" })
      const state = yield* stateOf(root)
      const staging = yield* state.staging("killed")
      const files: Record<string, string> = { "a/old.md": "new\n", "n/1.md": "one\n", "n/m/2.md": "two\n" }
      for (const [path, text] of Object.entries(files)) {
        fs.mkdirSync(nodePath.dirname(nodePath.join(staging, path)), { recursive: true })
        fs.writeFileSync(nodePath.join(staging, path), text)
      }
      const journal = {
        staging,
        backup: nodePath.join(state.backups, "killed"),
        servicesPath: services,
        write: Object.keys(files),
        delete: []
      }
      // The run got as far as its journal, the backup and the rename of the new folder `n`, then died.
      yield* state.write("pull-journal.json", JSON.stringify(journal))
      yield* state.keep(journal)
      fs.renameSync(nodePath.join(staging, "n"), nodePath.join(services, "n"))
      expect(yield* recoverPull(root)).toBe(true)
      expect(treeFiles(services)).toEqual(files)
      expect(treeFiles(journal.backup)).toEqual({ "a/old.md": "old\n" })
      expect(fs.existsSync(staging)).toBe(false)
      expect(fs.existsSync(state.path("pull-journal.json"))).toBe(false)
    })
  )

  it("a small file whose write fails throws at its commit, leaves what was there, and the next file is written", () => {
    const staging = tempDir("staging")
    const writer = makeStageWriter(staging)
    // Something already at its path: never followed or reused, so the write fails.
    fs.writeFileSync(nodePath.join(staging, "taken.md"), "there first\n")
    const sink = writer.open(entry("taken.md", "mine\n"))
    sink.write(Buffer.from("mine\n"))
    expect(() => sink.commit()).toThrow(/EEXIST/)
    const ok = writer.open(entry("fine.md", "fine\n"))
    ok.write(Buffer.from("fi"))
    ok.write(Buffer.from("ne\n"))
    ok.commit()
    expect(fs.readFileSync(nodePath.join(staging, "taken.md"), "utf8")).toBe("there first\n")
    expect(fs.readFileSync(nodePath.join(staging, "fine.md"), "utf8")).toBe("fine\n")
  })

  it.effect("a large file open when the attempt is abandoned is closed and removed; committed files stay", () =>
    Effect.gen(function* () {
      const staging = tempDir("staging")
      const writer = makeStageWriter(staging)
      const big = Buffer.alloc(1024 * 1024 + 1, "x")
      const large = writer.open(new FileEntry({ path: "d/big.bin", size: big.length, sha256: sha(big) }))
      large.write(big.subarray(0, 1000))
      const small = writer.open(entry("d/small.md", "small\n"))
      small.write(Buffer.from("small\n"))
      small.commit()
      yield* writer.abandon
      yield* writer.abandon
      expect(treeFiles(staging)).toEqual({ "d/small.md": "small\n" })
    })
  )

  it.effect("a pull whose staged write fails ends with the disk's IoError, the tree and .agentsync as they were", () =>
    Effect.gen(function* () {
      const { root, services } = project({ "a/old.md": "old\n" })
      // A folder where the staged file must go: its creation fails (EISDIR/EEXIST), as a full disk would.
      const state = yield* stateOf(root)
      const body = "new\n"
      const blocker = (staging: string) => fs.mkdirSync(nodePath.join(staging, "a/new.md"), { recursive: true })
      const download: Download = (_missing, consume) =>
        Effect.suspend(() => {
          const [staging] = stagingFolders(root)
          if (staging !== undefined) blocker(nodePath.join(root, ".agentsync", staging))
          return consume(Stream.make(tarGz(record({ path: "a/new.md" }, Buffer.from(body))))).pipe(
            Effect.catchIf(
              (e) => e instanceof Transient,
              (t) => Effect.fail(new ApiError({ status: 0, reason: t.reason }))
            )
          )
        })
      const exit = yield* Effect.exit(
        apply({ projectRoot: root, servicesPath: services, download, write: [entry("a/new.md", body)], delete: [] })
      )
      expect(Exit.isFailure(exit)).toBe(true)
      const error = Exit.isFailure(exit) ? String(exit.cause) : ""
      expect(error).toContain("IoError")
      expect(error).toContain("cannot write the staged file")
      expect(error).not.toContain("TarballUnsafe")
      expect(treeFiles(services)).toEqual({ "a/old.md": "old\n" })
      expect(stagingFolders(root)).toEqual([])
      expect(fs.existsSync(state.path("pull-journal.json"))).toBe(false)
    })
  )
})
