/** The UnitDisk port: skill units on disk (tool homes, local sources, cache clones) read as digests with modes and links, written atomically, backed up, and the leftovers of interrupted writes; its live implementation over the synchronous readers and the writes beside it. */

import * as fsSync from "node:fs"
import * as fs from "node:fs/promises"
import * as nodePath from "node:path"
import { Context, Effect, Layer } from "effect"
import { sha256 } from "../domain/hash.js"
import { digestOf, kindOf } from "../domain/skills/model.js"
import { InvalidInput, type IoError, ioError as io } from "../errors.js"
import { UnreadableName } from "./nameBytes.js"
import {
  type EntryKind,
  fileDigestSync,
  type Listing,
  listKindsSync,
  listTreeSync,
  scanHomeSync,
  snapshotUnitSync,
  TEMP_PREFIX,
  type UnitSnapshot
} from "./UnitDiskRead.js"
import { rel2abs, type UnitWrite, writeUnit } from "./UnitDiskWrite.js"
import { writeFileAtomic } from "./Workspace.js"

export { type EntryKind, type Listing, TEMP_PREFIX, type UnitSnapshot } from "./UnitDiskRead.js"
export type { UnitWrite } from "./UnitDiskWrite.js"

/** What a file of a `local:` source is: its digest, and a link's target. */
export interface Entry {
  readonly digest: string
  /** The target, when the path is a symbolic link (its digest is of the target). */
  readonly link: string | undefined
}

/** A walk's failure: a name that is not UTF-8 is the input's fault, named by its folder; anything else, the disk's. */
const walkError =
  (path: string, what: string) =>
  (e: unknown): IoError | InvalidInput =>
    e instanceof UnreadableName
      ? new InvalidInput({ file: e.folder, reason: `the name "${e.shown}" is not UTF-8: ${e.reason}` })
      : io(path, what)(e)

export interface UnitDiskShape {
  readonly exists: (abs: string) => Effect.Effect<boolean>
  /** A unit as found on disk now: a folder unit is every file and link under `abs`, a file unit the file itself. */
  readonly snapshot: (abs: string, folder: boolean) => Effect.Effect<UnitSnapshot, IoError | InvalidInput>
  /**
   * Many units read in one synchronous pass (thousands of small files hash several times faster without the
   * thread pool round trips), each folder holding unit roots listed once (no `stat` per unit); `beside` are the
   * temp files and staging folders found in those folders.
   */
  readonly snapshots: (
    units: ReadonlyArray<{ readonly abs: string; readonly folder: boolean }>
  ) => Effect.Effect<
    { readonly units: ReadonlyArray<UnitSnapshot>; readonly beside: ReadonlyArray<string> },
    IoError | InvalidInput
  >
  /**
   * Files and links under `dir` of a tool home, `depth` segments deep at most, as paths relative to the home,
   * without entering the paths `skip` names (units already known); an absent folder lists nothing.
   */
  readonly scanHome: (
    home: string,
    dir: string,
    depth: number,
    skip: (rel: string) => boolean
  ) => Effect.Effect<Listing, IoError | InvalidInput>
  /** Every file and link under a folder (a `local:` source), as sorted POSIX paths. */
  readonly listTree: (root: string) => Effect.Effect<Listing, IoError | InvalidInput>
  /** The digests of files and links of a `local:` source, in one synchronous pass. */
  readonly entries: (paths: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<Entry>, IoError>
  /** The bytes a digest was taken of: a file's content, or a link's target. */
  readonly read: (abs: string, digest: string) => Effect.Effect<Uint8Array, IoError>
  readonly readBytes: (abs: string) => Effect.Effect<Uint8Array, IoError>
  /** Replaces a file atomically (temp file, flush, rename): the memos kept beside a cache clone. */
  readonly writeAtomic: (abs: string, bytes: Uint8Array | string) => Effect.Effect<void, IoError>
  /**
   * Makes the unit exactly `content`, each file atomically (temp file + rename). A folder unit that does not exist
   * yet is written whole into a staging folder beside it and renamed into place, so an interrupted run leaves no
   * part of it. Files not in `previous` (ignored, or links leading out) are never touched.
   */
  readonly write: (w: UnitWrite) => Effect.Effect<void, IoError>
  /** Copies a unit (file or folder, links as links, modes kept) to `dest`, for a backup. */
  readonly copy: (root: string, dest: string) => Effect.Effect<void, IoError>
  /** Moves a file or folder (a broken cache clone put aside, a new clone into place), making the folder above `to`. */
  readonly move: (from: string, to: string) => Effect.Effect<void, IoError>
  /** Makes `root` a folder holding exactly `files` (POSIX paths relative to it). */
  readonly replaceTree: (
    root: string,
    files: ReadonlyArray<{ readonly path: string; readonly bytes: Uint8Array }>
  ) => Effect.Effect<void, IoError>
  /** Removes files and folders, whole (absent is fine): temp files and staging folders of interrupted writes. */
  readonly remove: (paths: ReadonlyArray<string>) => Effect.Effect<void, IoError>
  /** The temp files and staging folders directly inside a folder (absent folder: none). */
  readonly tempsIn: (dir: string) => Effect.Effect<ReadonlyArray<string>>
}

/** The local disk, synchronous where many small files are read. */
export const make = (): UnitDiskShape => ({
  exists: Effect.fn("UnitDisk.exists")((abs: string) =>
    Effect.promise(() =>
      fs.access(abs).then(
        () => true,
        () => false
      )
    )
  ),
  snapshot: Effect.fn("UnitDisk.snapshot")((abs: string, folder: boolean) =>
    Effect.try({ try: () => snapshotUnitSync(abs, folder), catch: walkError(abs, "cannot read") })
  ),
  snapshots: Effect.fn("UnitDisk.snapshots")((units) => {
    let at = ""
    return Effect.try({
      try: () => {
        const listings = new Map<string, ReadonlyMap<string, EntryKind>>()
        const out = units.map(({ abs, folder }) => {
          const dir = nodePath.dirname(abs)
          let kinds = listings.get(dir)
          if (kinds === undefined) {
            at = dir
            kinds = listKindsSync(dir)
            listings.set(dir, kinds)
          }
          at = abs
          return snapshotUnitSync(abs, folder, kinds.get(nodePath.basename(abs)) ?? "absent")
        })
        const beside: Array<string> = []
        for (const [dir, kinds] of listings)
          for (const name of kinds.keys()) if (name.startsWith(TEMP_PREFIX)) beside.push(nodePath.join(dir, name))
        return { units: out, beside }
      },
      catch: (cause) => walkError(at, "cannot read")(cause)
    })
  }),
  scanHome: Effect.fn("UnitDisk.scanHome")((home: string, dir: string, depth: number, skip: (rel: string) => boolean) =>
    Effect.try({
      try: () => scanHomeSync(home, dir, depth, skip),
      catch: walkError(nodePath.join(home, dir), "cannot list")
    })
  ),
  listTree: Effect.fn("UnitDisk.listTree")((root: string) =>
    Effect.try({ try: () => listTreeSync(root), catch: walkError(root, "cannot list") })
  ),
  entries: Effect.fn("UnitDisk.entries")((paths: ReadonlyArray<string>) => {
    let at = ""
    return Effect.try({
      try: () =>
        paths.map((abs): Entry => {
          at = abs
          if (!fsSync.lstatSync(abs).isSymbolicLink()) return { digest: fileDigestSync(abs), link: undefined }
          const target = fsSync.readlinkSync(abs)
          return { digest: digestOf(sha256(target), "link"), link: target }
        }),
      catch: (cause) => io(at, "cannot read")(cause)
    })
  }),
  read: Effect.fn("UnitDisk.read")((abs: string, digest: string) =>
    kindOf(digest) === "link"
      ? Effect.try({ try: () => new TextEncoder().encode(fsSync.readlinkSync(abs)), catch: io(abs, "cannot read") })
      : Effect.tryPromise({ try: () => fs.readFile(abs), catch: io(abs, "cannot read") })
  ),
  readBytes: Effect.fn("UnitDisk.readBytes")((abs: string) =>
    Effect.tryPromise({ try: () => fs.readFile(abs), catch: io(abs, "cannot read") })
  ),
  writeAtomic: Effect.fn("UnitDisk.writeAtomic")(writeFileAtomic),
  write: Effect.fn("UnitDisk.write")(writeUnit),
  copy: Effect.fn("UnitDisk.copy")((root: string, dest: string) =>
    Effect.tryPromise({
      try: async () => {
        await fs.mkdir(nodePath.dirname(dest), { recursive: true })
        await fs.cp(root, dest, { recursive: true, verbatimSymlinks: true, errorOnExist: false, force: true })
      },
      catch: io(root, "cannot back up")
    })
  ),
  move: Effect.fn("UnitDisk.move")((from: string, to: string) =>
    Effect.tryPromise({
      try: async () => {
        await fs.mkdir(nodePath.dirname(to), { recursive: true })
        await fs.rename(from, to)
      },
      catch: io(from, `cannot move to ${to}`)
    })
  ),
  replaceTree: Effect.fn("UnitDisk.replaceTree")((root, files) =>
    Effect.tryPromise({
      try: async () => {
        await fs.rm(root, { recursive: true, force: true })
        await fs.mkdir(root, { recursive: true })
        for (const f of files) {
          const abs = rel2abs(root, f.path)
          await fs.mkdir(nodePath.dirname(abs), { recursive: true })
          await fs.writeFile(abs, f.bytes)
        }
      },
      catch: io(root, "cannot write")
    })
  ),
  remove: Effect.fn("UnitDisk.remove")((paths: ReadonlyArray<string>) =>
    Effect.forEach(
      paths,
      (p) =>
        Effect.tryPromise({ try: () => fs.rm(p, { recursive: true, force: true }), catch: io(p, "cannot remove") }),
      { discard: true }
    )
  ),
  tempsIn: Effect.fn("UnitDisk.tempsIn")((dir: string) =>
    Effect.sync(() => {
      try {
        return fsSync
          .readdirSync(dir)
          .filter((n) => n.startsWith(TEMP_PREFIX))
          .map((n) => nodePath.join(dir, n))
      } catch {
        return []
      }
    })
  )
})

/**
 * Skill units on disk; by default the local disk, so library callers need not provide it (a test may provide
 * another, e.g. one whose writes fail).
 */
export class UnitDisk extends Context.Reference<UnitDisk>()("agentsync/UnitDisk", { defaultValue: make }) {}

export const layer: Layer.Layer<UnitDisk> = Layer.sync(UnitDisk, make)
