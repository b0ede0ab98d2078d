/** The Workspace port: the project's `services/` tree on disk, walked with the membership list, written atomically. */

import { randomBytes } from "node:crypto"
import * as fsSync from "node:fs"
import { readFileSync } from "node:fs"
import * as fs from "node:fs/promises"
import * as nodePath from "node:path"
import { Context, Effect, Layer } from "effect"
import { PROJECT_FILE } from "../config.js"
import { IGNORE_FILE, MEMBERSHIP, type Membership, makeMembership } from "../domain/membership.js"
import { ATTACHMENT_MAX_BYTES, isProjectFile, type Project, parseProject, type RawFile } from "../domain/project.js"
import { IoError, ioError as io, ioKindOf, isMissing, MissingConfig } from "../errors.js"
import { isAlive } from "./ProcessLock.js"
import { removeFileAndPrune } from "./prune.js"
import { type WorkspaceFile, walkTree } from "./state.js"
import { findObstacles } from "./WorkspaceObstacles.js"

export type { WorkspaceFile } from "./state.js"

export interface WorkspaceShape {
  /** Absolute path of the services tree. */
  readonly root: string
  /**
   * Every member file (membership list and `.agentsyncignore`), sorted by path; a symbolic link is listed with its
   * target (`link`) and never followed.
   */
  readonly listFiles: () => Effect.Effect<ReadonlyArray<WorkspaceFile>, IoError>
  readonly readFile: (path: string) => Effect.Effect<Uint8Array, IoError>
  /** A symbolic link's target text, as bytes (the link is never followed). */
  readonly readLink: (path: string) => Effect.Effect<Uint8Array, IoError>
  /** Reads many files, in order; far cheaper per file than `readFile` for a whole tree (see below). */
  readonly readFiles: (paths: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<Uint8Array>, IoError>
  /** Writes through a temp file in the same folder and a rename, so a reader sees the old or the new bytes. */
  readonly writeFile: (path: string, bytes: Uint8Array | string) => Effect.Effect<void, IoError>
  /**
   * Writes many files, each atomically as `writeFile` does (a reader sees old or new bytes; a crash leaves
   * whole files); far cheaper per file for thousands of them. Stops at the first failure.
   */
  readonly writeFiles: (files: ReadonlyArray<WriteSpec>) => Effect.Effect<void, IoError>
  /** Removes a file and the folders it leaves empty, up to the root. */
  readonly removeFile: (path: string) => Effect.Effect<void, IoError>
  /** Reads files as listed, with their modes; a file over ATTACHMENT_MAX_BYTES is not read (its size says why). */
  readonly readRawFiles: (files: ReadonlyArray<WorkspaceFile>) => Effect.Effect<ReadonlyArray<RawFile>, IoError>
  /** Reads and parses every item file of the tree. */
  readonly readProject: () => Effect.Effect<Project, IoError>
  /** The membership test in force (the ignore file is read once per call). */
  readonly membership: () => Effect.Effect<Membership, IoError>
  /** Removes the temp files and staged folders killed runs left in the tree (see `sweepLitter`). */
  readonly sweepLitter: () => Effect.Effect<number, IoError>
  /**
   * What stands in the way of writing `write` once `deleted` is gone: a file or a link where a folder must go, a
   * folder holding files that stay where a file must go; one line per obstacle (see `findObstacles`).
   */
  readonly obstacles: (
    write: ReadonlyArray<string>,
    deleted: ReadonlySet<string>
  ) => Effect.Effect<ReadonlyArray<string>, IoError>
}

/** A file to write: its path, its bytes, and its permission bits (default `0o644`). */
export interface WriteSpec {
  readonly path: string
  readonly bytes: Uint8Array | string
  readonly mode?: number
}

export class Workspace extends Context.Tag("agentsync/Workspace")<Workspace, WorkspaceShape>() {}

/** Resolves a relative tree path under root, refusing anything that escapes it. */
export const resolveInside = (root: string, path: string): Effect.Effect<string, IoError> => {
  const full = nodePath.resolve(root, path)
  return full === root || full.startsWith(root + nodePath.sep)
    ? Effect.succeed(full)
    : Effect.fail(new IoError({ path, reason: "path escapes the services tree" }))
}

// Temp names: one prefix per process (its id and a random part) and a counter (a random draw per file was a
// tenth of writing 10,000 files); they are opened exclusively, so a name that somehow exists is never followed
// or reused. The process id tells a later run whether the writer is gone (see sweepLitter).
const tempPrefix = `.agentsync-tmp-${process.pid}-${randomBytes(4).toString("hex")}-`
const TEMP = /^\.agentsync-tmp-(?:(\d+)-[0-9a-f]{8}-|[0-9a-f]{12}-)/
// A temp file of the older naming, without a process id, is litter once this old.
const OLD_TEMP_MS = 60 * 60_000

/**
 * Removes the temp files and staged folders (`.agentsync-tmp-…`) that a killed run left in `dir` (and its
 * subfolders, when `deep`): those whose process is gone. Returns how many it removed.
 */
export const sweepLitter = (dir: string, deep: boolean): Effect.Effect<number, IoError> =>
  Effect.try({
    try: () => {
      let removed = 0
      const walk = (d: string) => {
        let entries: Array<import("node:fs").Dirent>
        try {
          entries = fsSync.readdirSync(d, { withFileTypes: true })
        } catch (e) {
          if (isMissing(e)) return
          throw e
        }
        for (const e of entries) {
          const full = nodePath.join(d, e.name)
          const m = TEMP.exec(e.name)
          if (m !== null) {
            const pid = m[1] === undefined ? undefined : Number(m[1])
            const gone =
              pid === undefined
                ? Date.now() - fsSync.lstatSync(full).mtimeMs > OLD_TEMP_MS
                : pid !== process.pid && !isAlive(pid)
            if (gone) {
              fsSync.rmSync(full, { recursive: true, force: true })
              removed++
            }
          } else if (deep && e.isDirectory()) walk(full)
        }
      }
      walk(dir)
      return removed
    },
    catch: io(dir, "cannot remove what an interrupted run left")
  })
let tempCounter = 0
const tempName = (full: string) => nodePath.join(nodePath.dirname(full), `${tempPrefix}${(tempCounter++).toString(36)}`)

/** Atomic write of any absolute path: temp file beside it, fsync, rename. */
export const writeFileAtomic = (full: string, bytes: Uint8Array | string): Effect.Effect<void, IoError> =>
  Effect.tryPromise({
    try: async () => {
      await fs.mkdir(nodePath.dirname(full), { recursive: true })
      const tmp = tempName(full)
      const handle = await fs.open(tmp, "wx", 0o644)
      try {
        await handle.writeFile(bytes)
        await handle.sync()
      } finally {
        await handle.close()
      }
      try {
        await fs.rename(tmp, full)
      } catch (e) {
        await fs.rm(tmp, { force: true })
        throw e
      }
    },
    catch: io(full, "cannot write")
  })

interface TempFile {
  readonly fd: number
  /** Where it is being written: a temp file beside its target, or its place in a staging folder. */
  readonly tmp: string
  readonly full: string
  /** In a staging folder: made visible by the folder's rename, removed with the folder. */
  readonly staged: boolean
  closed: boolean
  renamed: boolean
}

/** Closes what is open and removes what was not renamed: no temp file or descriptor stays behind. */
const discard = (files: ReadonlyArray<TempFile>) => {
  for (const o of files) {
    if (o.renamed) continue
    if (!o.closed) {
      try {
        fsSync.closeSync(o.fd)
      } catch {
        // the descriptor is gone either way; the temp file is removed next
      }
    }
    if (!o.staged) fsSync.rmSync(o.tmp, { force: true })
  }
}

/** Flushes every file to disk; settles all before failing, so no descriptor is closed while its flush runs. */
const flushAll = async (files: ReadonlyArray<TempFile>): Promise<void> => {
  const flushed = await Promise.allSettled(
    files.map(
      (o) =>
        new Promise<void>((resolve, reject) =>
          fsSync.fdatasync(o.fd, (e) => (e === null ? resolve() : reject(io(o.full, "cannot write")(e))))
        )
    )
  )
  const failed = flushed.find((r) => r.status === "rejected")
  if (failed !== undefined) throw failed.reason
}

/** A folder that does not exist yet, built under a temporary name beside it and renamed into place whole. */
interface Staged {
  readonly top: string
  readonly dir: string
}

/**
 * Atomic writes of many absolute paths, in slices: each slice's files are created and written with
 * synchronous calls (one async call costs several thread-pool round trips), flushed to disk concurrently
 * while the next slice is created (the flushes run on the thread pool), then made visible. A file whose folder
 * exists goes through a temp file renamed over its target; files in folders that do not exist yet are written
 * into a staging copy of the topmost missing folder, renamed into place once every file is flushed (one
 * rename for a whole new subtree: a first sync into an empty folder makes one per source, not one per file).
 * A failure leaves no temp file or staging folder behind; files of earlier slices outside new folders stay.
 */
export const writeFilesAtomic = (
  files: ReadonlyArray<{ readonly full: string; readonly bytes: Uint8Array | string; readonly mode?: number }>,
  slice = 256
): Effect.Effect<void, IoError> =>
  Effect.gen(function* () {
    const dirs = new Set<string>()
    let current = files[0]?.full ?? ""
    const fail = (cause: unknown) => (cause instanceof IoError ? cause : io(current, "cannot write")(cause))
    // The topmost missing ancestor of each folder (undefined when the folder exists), found once per folder.
    const missing = new Map<string, string | undefined>()
    const missingTop = (dir: string): string | undefined => {
      if (missing.has(dir)) return missing.get(dir)
      const parent = nodePath.dirname(dir)
      const top = fsSync.existsSync(dir) || parent === dir ? undefined : (missingTop(parent) ?? dir)
      missing.set(dir, top)
      return top
    }
    const staged = new Map<string, Staged>()
    /** Where a file is created: in its staging folder, or as a temp file beside its target. */
    const placeOf = (full: string): { readonly path: string; readonly staged: boolean } => {
      const top = missingTop(nodePath.dirname(full))
      if (top === undefined) return { path: tempName(full), staged: false }
      let stage = staged.get(top)
      if (stage === undefined) {
        stage = { top, dir: tempName(top) }
        staged.set(top, stage)
      }
      return { path: stage.dir + full.slice(top.length), staged: true }
    }
    const removeStaged = () => {
      for (const stage of staged.values()) fsSync.rmSync(stage.dir, { recursive: true, force: true })
    }
    const create = (
      batch: ReadonlyArray<{ readonly full: string; readonly bytes: Uint8Array | string; readonly mode?: number }>,
      into: Array<TempFile>
    ) => {
      for (const f of batch) {
        current = f.full
        const place = placeOf(f.full)
        const dir = nodePath.dirname(place.path)
        if (!dirs.has(dir)) {
          fsSync.mkdirSync(dir, { recursive: true })
          dirs.add(dir)
        }
        const o: TempFile = {
          fd: fsSync.openSync(place.path, "wx", f.mode ?? 0o644),
          tmp: place.path,
          full: f.full,
          staged: place.staged,
          closed: false,
          renamed: false
        }
        into.push(o)
        // The mode as stored, whatever the umask: a script stays executable.
        if (f.mode !== undefined) fsSync.fchmodSync(o.fd, f.mode)
        fsSync.writeFileSync(o.fd, f.bytes)
      }
    }
    const commit = (done: ReadonlyArray<TempFile>) => {
      for (const o of done) {
        current = o.full
        fsSync.closeSync(o.fd)
        o.closed = true
      }
      for (const o of done) {
        if (o.staged) continue // visible with its folder
        current = o.full
        fsSync.renameSync(o.tmp, o.full)
        o.renamed = true
      }
    }
    /** The previous slice, written and being flushed. */
    let pending: { readonly files: Array<TempFile>; readonly flushed: Promise<void> } | undefined
    // On any failure: wait for the flush in flight (its descriptors must not close under it), then discard.
    const abandon = (mine: ReadonlyArray<TempFile>) =>
      Effect.promise(async () => {
        if (pending !== undefined) await pending.flushed.catch(() => undefined)
        discard(mine)
        if (pending !== undefined) discard(pending.files)
        removeStaged()
      })
    const finishPending = Effect.suspend(() => {
      const p = pending
      if (p === undefined) return Effect.void
      return Effect.tryPromise({ try: () => p.flushed, catch: fail }).pipe(
        Effect.flatMap(() => Effect.try({ try: () => commit(p.files), catch: fail })),
        Effect.tap(() =>
          Effect.sync(() => {
            pending = undefined
          })
        )
      )
    })
    for (let i = 0; i < files.length; i += slice) {
      const opened: Array<TempFile> = []
      yield* Effect.try({ try: () => create(files.slice(i, i + slice), opened), catch: fail }).pipe(
        Effect.onError(() => abandon(opened))
      )
      const flushed = flushAll(opened)
      // Keep the rejection handled until it is awaited.
      flushed.catch(() => undefined)
      yield* finishPending.pipe(
        Effect.onError(() =>
          Effect.promise(() => flushed.catch(() => undefined)).pipe(Effect.zipRight(abandon(opened)))
        )
      )
      pending = { files: opened, flushed }
    }
    yield* finishPending.pipe(Effect.onError(() => abandon([])))
    yield* Effect.try({
      try: () => {
        for (const stage of staged.values()) {
          current = stage.top
          fsSync.renameSync(stage.dir, stage.top)
          staged.delete(stage.top)
        }
      },
      catch: (cause) => {
        removeStaged()
        return io(current, "cannot create the folder")(cause)
      }
    })
  })

/**
 * A services path must exist and look like a project: it holds `agentsync.yaml`, `.agentsyncignore` or one of
 * the known folders, or it is the tree the project's `agentsync.yaml` names. Anything else (a typo, a missing
 * folder) would read as an empty tree, and an empty tree deletes everything on the other side: a usage error
 * naming the path instead.
 */
export const checkServicesPath = (config: {
  readonly servicesPath: string
  readonly projectRoot: string
  readonly project: { readonly services?: string | undefined }
}): Effect.Effect<void, MissingConfig> =>
  Effect.suspend(() => {
    const path = nodePath.resolve(config.servicesPath)
    const relative = nodePath.relative(process.cwd(), path)
    const shown = relative === "" ? "." : relative.startsWith("..") ? path : relative
    const is = (p: string, dir: boolean) => {
      const st = fsSync.statSync(p, { throwIfNoEntry: false })
      return st !== undefined && (dir ? st.isDirectory() : st.isFile())
    }
    if (!is(path, true)) {
      return Effect.fail(
        new MissingConfig({
          key: "services",
          reason: `${shown} does not exist or is not a folder; pass --services DIR (for a first pull, create it)`
        })
      )
    }
    const configured =
      is(nodePath.join(config.projectRoot, PROJECT_FILE), false) &&
      nodePath.resolve(config.projectRoot, config.project.services ?? "services") === path
    const looksLikeOne =
      configured ||
      is(nodePath.join(path, PROJECT_FILE), false) ||
      is(nodePath.join(path, IGNORE_FILE), false) ||
      MEMBERSHIP.some((m) => is(nodePath.join(path, m), true))
    return looksLikeOne
      ? Effect.void
      : Effect.fail(
          new MissingConfig({
            key: "services",
            reason: `${shown} does not look like a project: it holds none of ${MEMBERSHIP.map((m) => `${m}/`).join(", ")} and no ${PROJECT_FILE} names it`
          })
        )
  })

export const make = (root: string): WorkspaceShape => {
  const absRoot = nodePath.resolve(root)
  const membership = () =>
    Effect.tryPromise({
      try: () =>
        fs.readFile(nodePath.join(absRoot, IGNORE_FILE), "utf8").catch((e: unknown) => {
          if (ioKindOf(e) === "NotFound") return ""
          throw e
        }),
      catch: io(nodePath.join(absRoot, IGNORE_FILE), "cannot read")
    }).pipe(Effect.map(makeMembership))

  const listFiles = Effect.fn("Workspace.listFiles")(function* () {
    const member = yield* membership()
    return yield* Effect.try({ try: () => walkTree(absRoot, member), catch: io(absRoot, "cannot list") })
  })

  const readFile = Effect.fn("Workspace.readFile")(function* (path: string) {
    const full = yield* resolveInside(absRoot, path)
    return yield* Effect.tryPromise({ try: () => fs.readFile(full), catch: io(full, "cannot read") })
  })

  const readLink = Effect.fn("Workspace.readLink")(function* (path: string) {
    const full = yield* resolveInside(absRoot, path)
    return yield* Effect.tryPromise({
      try: () => fs.readlink(full, { encoding: "buffer" }),
      catch: io(full, "cannot read the link")
    })
  })

  // A tree is read in slices of synchronous reads: one async readFile costs several thread-pool round trips,
  // which dominate for thousands of small files already in the page cache.
  const readFiles = Effect.fn("Workspace.readFiles")(function* (paths: ReadonlyArray<string>) {
    const out: Array<Uint8Array> = []
    for (let i = 0; i < paths.length; i += 256) {
      const slice = paths.slice(i, i + 256)
      const full = yield* Effect.forEach(slice, (p) => resolveInside(absRoot, p))
      for (const f of full) out.push(yield* Effect.try({ try: () => readFileSync(f), catch: io(f, "cannot read") }))
      yield* Effect.yieldNow()
    }
    return out
  })

  const writeFile = Effect.fn("Workspace.writeFile")(function* (path: string, bytes: Uint8Array | string) {
    const full = yield* resolveInside(absRoot, path)
    yield* writeFileAtomic(full, bytes)
  })

  const writeFiles = Effect.fn("Workspace.writeFiles")(function* (files: ReadonlyArray<WriteSpec>) {
    const resolved = yield* Effect.forEach(files, (f) =>
      Effect.map(resolveInside(absRoot, f.path), (full) => ({
        full,
        bytes: f.bytes,
        ...(f.mode === undefined ? {} : { mode: f.mode })
      }))
    )
    yield* writeFilesAtomic(resolved)
  })

  const removeFile = Effect.fn("Workspace.removeFile")(function* (path: string) {
    const full = yield* resolveInside(absRoot, path)
    yield* Effect.tryPromise({
      try: () => removeFileAndPrune(full, absRoot),
      catch: io(full, "cannot remove")
    })
  })

  /** Reads listed files with their modes; a file over the attachment cap is not read (parseProject reports it). */
  const readRawFiles = Effect.fn("Workspace.readRawFiles")(function* (files: ReadonlyArray<WorkspaceFile>) {
    const small = files.filter((f) => f.size <= ATTACHMENT_MAX_BYTES)
    const bytes = yield* readFiles(small.map((f) => f.path))
    const read = new Map(small.map((f, i) => [f.path, bytes[i]!]))
    return files.map(
      (f): RawFile => ({ path: f.path, bytes: read.get(f.path) ?? new Uint8Array(0), mode: f.mode, size: f.size })
    )
  })

  const readProject = Effect.fn("Workspace.readProject")(function* () {
    const all = yield* listFiles()
    // Item files are read from regular files only: a link is left to file sync, never read through.
    const files = all.filter((f) => f.link === undefined && isProjectFile(f.path))
    const raw = yield* readRawFiles(files)
    const shown = nodePath.relative(process.cwd(), absRoot) || "."
    const project = parseProject(raw, { prefix: `${shown}/` })
    // Files outside the item folders were not read; they are listed as left to file sync all the same.
    const others = all.filter((f) => f.link !== undefined || !isProjectFile(f.path)).map((f) => f.path)
    return { ...project, unsynced: [...project.unsynced, ...others].sort() }
  })

  return {
    root: absRoot,
    listFiles,
    readFile,
    readLink,
    readFiles,
    readRawFiles,
    writeFile,
    writeFiles,
    removeFile,
    readProject,
    membership,
    sweepLitter: () => sweepLitter(absRoot, true),
    obstacles: Effect.fn("Workspace.obstacles")((write: ReadonlyArray<string>, deleted: ReadonlySet<string>) =>
      Effect.try({
        try: () => findObstacles(absRoot, write, deleted),
        catch: io(absRoot, "cannot look at what the pull would replace")
      })
    )
  }
}

export const layer = (root: string): Layer.Layer<Workspace> => Layer.sync(Workspace, () => make(root))
