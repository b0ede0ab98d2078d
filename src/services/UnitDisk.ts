/** The UnitDisk port: skill units on disk (tool homes, local sources, cache clones) read as digests with modes and links, written atomically, backed up, and the leftovers of interrupted writes. */

import { randomBytes } from "node:crypto"
import * as fsSync from "node:fs"
import * as fs from "node:fs/promises"
import * as nodePath from "node:path"
import { Context, Effect, Layer } from "effect"
import { sha256 } from "../domain/hash.js"
import { digestOf, kindOf, linkStaysInside, type UnitFiles } from "../domain/skills/model.js"
import { type IoError, ioError as io, isMissing } from "../errors.js"
import { removeFileAndPrune } from "./prune.js"
import { writeFileAtomic } from "./Workspace.js"

/** Every temp file and staging folder agentsync writes starts with this. */
export const TEMP_PREFIX = ".agentsync-tmp-"

/** Never part of a unit: editor swap files, OS metadata, a nested repository. */
const isLitter = (name: string) =>
  name === ".DS_Store" || name === ".git" || name.endsWith(".swp") || name.endsWith("~")

/** A unit as found on disk. */
export interface UnitSnapshot {
  /** Digests by path relative to the unit root; `undefined` when the unit is absent (or left alone). */
  readonly files: UnitFiles | undefined
  /** Links inside the unit that lead out of it: not part of the unit, never written over or removed. */
  readonly outside: ReadonlyArray<{ readonly rel: string; readonly target: string }>
  /** The unit root is itself a link (to `linked`): the whole unit is left alone. */
  readonly linked: string | undefined
  /** Temp files and staging folders of interrupted writes found in the unit (absolute paths). */
  readonly temps: ReadonlyArray<string>
}

const absent: UnitSnapshot = { files: undefined, outside: [], linked: undefined, temps: [] }

/** The digest of a regular file: its bytes and its executable bit. */
const fileDigestSync = (abs: string): string => {
  const fd = fsSync.openSync(abs, "r")
  try {
    const st = fsSync.fstatSync(fd)
    const buf = Buffer.allocUnsafe(st.size)
    let at = 0
    while (at < st.size) {
      const n = fsSync.readSync(fd, buf, at, st.size - at, null)
      if (n === 0) break
      at += n
    }
    return digestOf(sha256(buf.subarray(0, at)), (st.mode & 0o100) !== 0 ? "exec" : "file")
  } finally {
    fsSync.closeSync(fd)
  }
}

/** What stands at a path, without following a link. */
export type EntryKind = "dir" | "file" | "link" | "other" | "absent"

const kindAt = (abs: string): EntryKind => {
  let st: fsSync.Stats | undefined
  try {
    st = fsSync.lstatSync(abs)
  } catch (e) {
    if (isMissing(e)) return "absent"
    throw e
  }
  return st.isSymbolicLink() ? "link" : st.isDirectory() ? "dir" : st.isFile() ? "file" : "other"
}

/** What stands in a folder, by name, from one listing (an absent folder lists nothing). */
const listKindsSync = (dir: string): ReadonlyMap<string, EntryKind> => {
  const out = new Map<string, EntryKind>()
  let entries: Array<fsSync.Dirent>
  try {
    entries = fsSync.readdirSync(dir, { withFileTypes: true })
  } catch (e) {
    if (isMissing(e)) return out
    throw e
  }
  for (const d of entries)
    out.set(d.name, d.isSymbolicLink() ? "link" : d.isDirectory() ? "dir" : d.isFile() ? "file" : "other")
  return out
}

/**
 * Reads a unit on disk, synchronously (thousands of small files hash several times faster without the thread pool
 * round trips): a folder unit is every file and link under `abs`, a file unit the file itself. `kind`, when the
 * caller listed the parent folder already, saves a `stat` per unit.
 */
const snapshotUnitSync = (abs: string, folder: boolean, kind: EntryKind = kindAt(abs)): UnitSnapshot => {
  if (kind === "absent") return absent
  if (kind === "link") return { ...absent, linked: fsSync.readlinkSync(abs) }
  if (!folder) return kind === "file" ? { ...absent, files: { "": fileDigestSync(abs) } } : absent
  if (kind !== "dir") return absent
  const files: Record<string, string> = {}
  const outside: Array<{ rel: string; target: string }> = []
  const temps: Array<string> = []
  let found = false
  const walk = (dir: string, rel: string): void => {
    for (const d of fsSync.readdirSync(dir, { withFileTypes: true })) {
      const full = nodePath.join(dir, d.name)
      if (d.name.startsWith(TEMP_PREFIX)) {
        temps.push(full)
        continue
      }
      if (isLitter(d.name)) continue
      const r = rel === "" ? d.name : `${rel}/${d.name}`
      if (d.isSymbolicLink()) {
        const target = fsSync.readlinkSync(full)
        if (linkStaysInside(r, target)) {
          files[r] = digestOf(sha256(target), "link")
          found = true
        } else outside.push({ rel: r, target })
      } else if (d.isDirectory()) walk(full, r)
      else if (d.isFile()) {
        files[r] = fileDigestSync(full)
        found = true
      }
    }
  }
  walk(abs, "")
  return { files: found ? files : undefined, outside, linked: undefined, temps }
}

/** Every file and link under a folder (a `local:` source), as sorted POSIX paths, and the temp files found there. */
const listTreeSync = (root: string): Listing => {
  const paths: Array<string> = []
  const temps: Array<string> = []
  const walk = (dir: string, rel: string): void => {
    for (const d of fsSync.readdirSync(dir, { withFileTypes: true })) {
      if (d.name.startsWith(TEMP_PREFIX)) temps.push(nodePath.join(dir, d.name))
      if (isLitter(d.name) || d.name.startsWith(TEMP_PREFIX)) continue
      const r = rel === "" ? d.name : `${rel}/${d.name}`
      if (d.isDirectory()) walk(nodePath.join(dir, d.name), r)
      else if (d.isFile() || d.isSymbolicLink()) paths.push(r)
    }
  }
  walk(root, "")
  return { paths: paths.sort(), temps }
}

/**
 * Lists files and links under `dir` of a tool home, `depth` segments deep at most, as paths relative to the home,
 * without entering the paths `skip` names (units already known); temp files found on the way are returned too.
 */
const scanHomeSync = (home: string, dir: string, depth: number, skip: (rel: string) => boolean): Listing => {
  const paths: Array<string> = []
  const temps: Array<string> = []
  const walk = (abs: string, rel: string, left: number): void => {
    let entries: Array<fsSync.Dirent>
    try {
      entries = fsSync.readdirSync(abs, { withFileTypes: true })
    } catch (e) {
      if (isMissing(e)) return
      throw e
    }
    for (const d of entries) {
      if (d.name.startsWith(TEMP_PREFIX)) {
        temps.push(nodePath.join(abs, d.name))
        continue
      }
      if (isLitter(d.name)) continue
      const r = rel === "" ? d.name : `${rel}/${d.name}`
      if (skip(r)) continue
      if (d.isDirectory()) {
        if (left > 1) walk(nodePath.join(abs, d.name), r, left - 1)
      } else if (d.isFile() || d.isSymbolicLink()) paths.push(r)
    }
  }
  walk(dir === "" ? home : nodePath.join(home, dir), dir, depth)
  return { paths, temps }
}

// One random prefix per process and a counter; opened exclusively, so an existing name is never reused.
const tempPrefix = `${TEMP_PREFIX}${randomBytes(6).toString("hex")}-`
let tempCounter = 0
const tempBeside = (full: string) =>
  nodePath.join(nodePath.dirname(full), `${tempPrefix}${(tempCounter++).toString(36)}`)

/** Writes one file (mode from its digest: executable or not, within the umask, as git does) or link at `path`, flushed. */
const place = async (path: string, digest: string, bytes: Uint8Array) => {
  if (kindOf(digest) === "link") {
    await fs.symlink(new TextDecoder().decode(bytes), path)
    return
  }
  const handle = await fs.open(path, "wx", kindOf(digest) === "exec" ? 0o777 : 0o666)
  try {
    await handle.writeFile(bytes)
    await handle.sync()
  } finally {
    await handle.close()
  }
}

const rel2abs = (root: string, rel: string) => (rel === "" ? root : nodePath.join(root, ...rel.split("/")))

/** Removes a file and the folders it leaves empty, up to (and including) `stopAt` when it ends up empty. */
const removeFile = (abs: string, stopAt: string) => removeFileAndPrune(abs, stopAt, true)

export interface UnitWrite {
  /** The unit root: a folder, or the file of a single-file unit. */
  readonly root: string
  readonly folder: boolean
  /** What the plan saw there (only these files are replaced or removed). */
  readonly previous: UnitFiles | undefined
  /** What the unit becomes; `undefined` removes it. */
  readonly content: UnitFiles | undefined
  /** The bytes of each file of `content` (a link's target for a link). */
  readonly bytes: ReadonlyMap<string, Uint8Array>
  /** Folders left empty are removed up to here. */
  readonly stopAt: string
}

/** Makes the unit exactly `w.content` (see `UnitDiskShape.write`). */
const writeUnit = (w: UnitWrite): Effect.Effect<void, IoError> =>
  Effect.tryPromise({
    try: async () => {
      const content = w.content ?? {}
      const previous = w.previous ?? {}
      if (
        w.folder &&
        w.previous === undefined &&
        w.content !== undefined &&
        !(await fs.lstat(w.root).then(
          () => true,
          () => false
        ))
      ) {
        await fs.mkdir(nodePath.dirname(w.root), { recursive: true })
        const staging = tempBeside(w.root)
        await fs.mkdir(staging)
        try {
          for (const [rel, digest] of Object.entries(content)) {
            const full = rel2abs(staging, rel)
            await fs.mkdir(nodePath.dirname(full), { recursive: true })
            await place(full, digest, w.bytes.get(rel)!)
          }
          await fs.rename(staging, w.root)
        } catch (e) {
          await fs.rm(staging, { recursive: true, force: true })
          throw e
        }
        return
      }
      for (const [rel, digest] of Object.entries(content)) {
        if (previous[rel] === digest) continue
        const full = rel2abs(w.root, rel)
        // A file of the old content where a folder is needed now goes first.
        const segs = rel.split("/")
        for (let i = 1; i < segs.length; i++) {
          const above = segs.slice(0, i).join("/")
          if (previous[above] !== undefined && content[above] === undefined)
            await fs.rm(rel2abs(w.root, above), { force: true })
        }
        await fs.mkdir(nodePath.dirname(full), { recursive: true })
        const tmp = tempBeside(full)
        try {
          await place(tmp, digest, w.bytes.get(rel)!)
          await fs.rename(tmp, full)
        } catch (e) {
          await fs.rm(tmp, { force: true })
          throw e
        }
      }
      for (const rel of Object.keys(previous))
        if (content[rel] === undefined) await removeFile(rel2abs(w.root, rel), w.stopAt)
    },
    catch: io(w.root, "cannot write")
  })

/** Paths found under a folder, and the temp files and staging folders of interrupted writes found on the way. */
export interface Listing {
  readonly paths: ReadonlyArray<string>
  readonly temps: ReadonlyArray<string>
}

/** What a file of a `local:` source is: its digest, and a link's target. */
export interface Entry {
  readonly digest: string
  /** The target, when the path is a symbolic link (its digest is of the target). */
  readonly link: string | undefined
}

export interface UnitDiskShape {
  readonly exists: (abs: string) => Effect.Effect<boolean>
  /** A unit as found on disk now: a folder unit is every file and link under `abs`, a file unit the file itself. */
  readonly snapshot: (abs: string, folder: boolean) => Effect.Effect<UnitSnapshot, IoError>
  /**
   * Many units read in one synchronous pass (thousands of small files hash several times faster without the
   * thread pool round trips), each folder holding unit roots listed once (no `stat` per unit); `beside` are the
   * temp files and staging folders found in those folders.
   */
  readonly snapshots: (
    units: ReadonlyArray<{ readonly abs: string; readonly folder: boolean }>
  ) => Effect.Effect<{ readonly units: ReadonlyArray<UnitSnapshot>; readonly beside: ReadonlyArray<string> }, IoError>
  /**
   * Files and links under `dir` of a tool home, `depth` segments deep at most, as paths relative to the home,
   * without entering the paths `skip` names (units already known); an absent folder lists nothing.
   */
  readonly scanHome: (
    home: string,
    dir: string,
    depth: number,
    skip: (rel: string) => boolean
  ) => Effect.Effect<Listing, IoError>
  /** Every file and link under a folder (a `local:` source), as sorted POSIX paths. */
  readonly listTree: (root: string) => Effect.Effect<Listing, IoError>
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
    Effect.try({ try: () => snapshotUnitSync(abs, folder), catch: io(abs, "cannot read") })
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
      catch: (cause) => io(at, "cannot read")(cause)
    })
  }),
  scanHome: Effect.fn("UnitDisk.scanHome")((home: string, dir: string, depth: number, skip: (rel: string) => boolean) =>
    Effect.try({ try: () => scanHomeSync(home, dir, depth, skip), catch: io(nodePath.join(home, dir), "cannot list") })
  ),
  listTree: Effect.fn("UnitDisk.listTree")((root: string) =>
    Effect.try({ try: () => listTreeSync(root), catch: io(root, "cannot list") })
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
