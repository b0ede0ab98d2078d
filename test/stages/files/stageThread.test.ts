// A large pull's small files are written by the staged writer's thread: the pulled tree round-trips bytes, modes and
// links whichever thread wrote a file; the thread's failure is the pull's, naming its file; an interrupted pull
// leaves the tree byte for byte as it was, no staging folder and no descriptor open.
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Stream } from "effect"
import fc from "fast-check"
import { FileEntry } from "../../../src/domain/model.js"
import { ApiError } from "../../../src/errors.js"
import { makeStageWriter, StagedWriteFailed } from "../../../src/services/FileStateStage.js"
import { Transient } from "../../../src/services/SyncApi.js"
import { apply, type Download } from "../../../src/stages/files/apply.js"
import { record, sha, tarGz } from "../../support/hostile.js"
import { openUnder, tempDirs, treeFiles } from "../../support/tree.js"

const tempDir = tempDirs("stage-thread")
const isTransient = (e: unknown): e is Transient => e instanceof Transient

interface Made {
  readonly path: string
  readonly bytes: Buffer
  readonly executable: boolean
  /** A symbolic link whose target is `bytes`. */
  readonly link: boolean
}

/** Files in a few folders, some executable, some empty, some links (their bytes made from the specs in the property). */
const specsArb = fc.array(
  fc.record({
    folder: fc.constantFrom("a", "a/b", "c", "d/e/f", ""),
    size: fc.oneof(fc.constant(0), fc.nat(300), fc.nat(70_000)),
    seed: fc.nat(255),
    executable: fc.boolean(),
    link: fc.nat(30).map((n) => n === 0)
  }),
  // Past the files the writer keeps on its own thread (1,000, and those that come while its thread starts: which of
  // the rest the thread writes depends on when it is online; stageThreadPool.test.ts holds the thread's own writes).
  { minLength: 1_050, maxLength: 1_400 }
)

interface Spec {
  readonly folder: string
  readonly size: number
  readonly seed: number
  readonly executable: boolean
  readonly link: boolean
}

const tree = (specs: ReadonlyArray<Spec>): ReadonlyArray<Made> =>
  specs.map((s, i) => {
    const path = s.folder === "" ? `f${i}` : `${s.folder}/f${i}`
    if (s.link) {
      const up = s.folder === "" ? "" : "../".repeat(s.folder.split("/").length)
      return { path, bytes: Buffer.from(`${up}f0-target`), executable: false, link: true }
    }
    const bytes = Buffer.alloc(s.size)
    for (let b = 0; b < bytes.length; b++) bytes[b] = (s.seed + b * 31 + i) & 0xff
    return { path, bytes, executable: s.executable, link: false }
  })

const entryOf = (m: Made) =>
  new FileEntry({
    path: m.path,
    size: m.bytes.length,
    sha256: sha(m.bytes),
    ...(m.executable ? { executable: true } : {}),
    ...(m.link ? { link: true } : {})
  })

const recordOf = (m: Made) =>
  m.link
    ? record({ path: m.path, type: "SymbolicLink", linkpath: m.bytes.toString(), size: 0 })
    : record({ path: m.path, mode: m.executable ? 0o755 : 0o644 }, m.bytes)

/** The archive in pieces of 64 KiB, as a socket hands it over. */
const pieces = (archive: Buffer) => {
  const out: Array<Uint8Array> = []
  for (let at = 0; at < archive.length; at += 65_536) out.push(archive.subarray(at, at + 65_536))
  return out
}

const downloadOf =
  (archive: Buffer): Download =>
  (_missing, consume) =>
    consume(Stream.fromIterable(pieces(archive))).pipe(
      Effect.catchIf(isTransient, (t) => Effect.fail(new ApiError({ status: 0, reason: t.reason })))
    )

const emptyProject = () => {
  const root = tempDir("project")
  const services = nodePath.join(root, "services")
  fs.mkdirSync(services, { recursive: true })
  return { root, services }
}

describe("the staged writer's thread", () => {
  it.live("a pull of a generated tree round-trips bytes, executable bits and links", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(specsArb, async (specs) => {
          const files = tree(specs)
          const { root, services } = emptyProject()
          const archive = tarGz(...files.map(recordOf))
          await Effect.runPromise(
            apply({
              projectRoot: root,
              servicesPath: services,
              download: downloadOf(archive),
              write: files.map(entryOf),
              delete: []
            })
          )
          for (const m of files) {
            const full = nodePath.join(services, m.path)
            const st = fs.lstatSync(full)
            if (m.link) {
              expect(st.isSymbolicLink()).toBe(true)
              expect(fs.readlinkSync(full)).toBe(m.bytes.toString())
            } else {
              expect(st.isFile()).toBe(true)
              expect((st.mode & 0o100) !== 0).toBe(m.executable)
              expect(fs.readFileSync(full).equals(m.bytes)).toBe(true)
            }
          }
          let count = 0
          const walk = (d: string) => {
            for (const e of fs.readdirSync(d, { withFileTypes: true })) {
              if (e.isDirectory()) walk(nodePath.join(d, e.name))
              else count++
            }
          }
          walk(services)
          expect(count).toBe(files.length)
          expect(fs.readdirSync(nodePath.join(root, ".agentsync")).filter((n) => n.startsWith("staging-"))).toEqual([])
          expect(openUnder(root)).toEqual([])
        }),
        { numRuns: 4, endOnFailure: true }
      )
    )
  )

  it.effect(
    "a file the thread cannot write fails the drain with its path; the next commit throws it; nothing stays open",
    () =>
      Effect.gen(function* () {
        const staging = tempDir("staging")
        const writer = makeStageWriter(staging)
        const text = (i: number) => `file ${i}\n`
        // Something already at the path of a file the thread writes: never followed or reused, so its write fails.
        fs.mkdirSync(nodePath.join(staging, "d"), { recursive: true })
        fs.writeFileSync(nodePath.join(staging, "d/f1500.md"), "there first\n")
        const commit = (i: number) => {
          const sink = writer.open(new FileEntry({ path: `d/f${i}.md`, size: text(i).length, sha256: sha(text(i)) }))
          sink.write(Buffer.from(text(i)))
          sink.commit()
        }
        for (let i = 0; i <= 1_000; i++) commit(i)
        // The thread started at the writer's 1,001st file: the rest go to it once it is online.
        yield* writer.threadReady
        for (let i = 1_001; i < 2_000; i++) if (i !== 1_500) commit(i)
        commit(1_500)
        const drained = yield* Effect.exit(writer.drain)
        expect(Exit.isFailure(drained)).toBe(true)
        if (Exit.isFailure(drained) && drained.cause._tag === "Fail") {
          expect(drained.cause.error).toBeInstanceOf(StagedWriteFailed)
          expect(drained.cause.error.path).toBe("d/f1500.md")
          expect(String(drained.cause.error.cause)).toMatch(/EEXIST/)
        }
        expect(() => commit(2_000)).toThrow(StagedWriteFailed)
        yield* writer.abandon
        yield* writer.abandon
        expect(openUnder(staging)).toEqual([])
        expect(fs.readFileSync(nodePath.join(staging, "d/f1500.md"), "utf8")).toBe("there first\n")
        // The files before the failure are there, each whole.
        expect(fs.readFileSync(nodePath.join(staging, "d/f1499.md"), "utf8")).toBe(text(1_499))
        expect(fs.readFileSync(nodePath.join(staging, "d/f10.md"), "utf8")).toBe(text(10))
      })
  )

  it.live("a pull interrupted after thousands of files leaves the tree byte for byte as it was", () =>
    Effect.gen(function* () {
      const { root, services } = emptyProject()
      fs.mkdirSync(nodePath.join(services, "a"), { recursive: true })
      fs.writeFileSync(nodePath.join(services, "a/f1.md"), "old one\n")
      fs.writeFileSync(nodePath.join(services, "keep.md"), "kept\n")
      const before = treeFiles(services)
      const files: ReadonlyArray<Made> = Array.from({ length: 4_000 }, (_, i) => ({
        path: `${["a", "b/c", "d"][i % 3]}/f${i}.md`,
        bytes: Buffer.from(`new ${i}\n`.repeat(1 + (i % 7))),
        executable: i % 5 === 0,
        link: false
      }))
      const archive = tarGz(...files.map(recordOf))
      const reached = yield* Deferred.make<void>()
      const all = pieces(archive)
      const download: Download = (_missing, consume) =>
        consume(
          Stream.concat(
            // Most of the archive, well past the files written on the reading's own thread.
            Stream.fromIterable(all.slice(0, Math.floor(all.length * 0.8))),
            Stream.fromEffect(Effect.zipRight(Deferred.succeed(reached, undefined), Effect.never))
          )
        ).pipe(Effect.catchIf(isTransient, (t) => Effect.fail(new ApiError({ status: 0, reason: t.reason }))))
      const fiber = yield* Effect.fork(
        apply({ projectRoot: root, servicesPath: services, download, write: files.map(entryOf), delete: [] })
      )
      yield* Deferred.await(reached)
      yield* Fiber.interrupt(fiber)
      const state = nodePath.join(root, ".agentsync")
      expect(fs.readdirSync(state).filter((n) => n.startsWith("staging-"))).toEqual([])
      expect(openUnder(root)).toEqual([])
      expect(treeFiles(services)).toEqual(before)
      expect(fs.existsSync(nodePath.join(state, "pull-journal.json"))).toBe(false)
    })
  )
})
