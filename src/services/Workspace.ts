/** The Workspace port: the project's `services/` tree on disk, walked with the membership list, read in batches, written atomically. */

import { readFileSync } from "node:fs"
import * as fs from "node:fs/promises"
import * as nodePath from "node:path"
import { Array as Arr, Context, Effect, Layer } from "effect"
import { IGNORE_FILE, leftOutAtTop, type Membership, makeMembership, type TopEntry } from "../domain/membership.js"
import type { FileEntry } from "../domain/model.js"
import { ATTACHMENT_MAX_BYTES, isProjectFile, type Project, parseProject, type RawFile } from "../domain/project.js"
import { InvalidInput, IoError, ioError as io } from "../errors.js"
import { escapePath, UnreadableName, type UnreadName } from "./nameBytes.js"
import { removeFileAndPrune } from "./prune.js"
import { readRegularText, type SpecialFile, specialsOf, type WorkspaceFile, walkTree } from "./state.js"
import { type HashRequest, hashAll } from "./WorkspaceHash.js"
import { findObstacles } from "./WorkspaceObstacles.js"
import { type ReadInto, readIntoAll, readLinksAll } from "./WorkspaceRead.js"
import { listTopSync } from "./WorkspaceTop.js"
import { sweepLitter, writeFileAtomic, writeFilesAtomic } from "./WorkspaceWrite.js"

export type { WorkspaceFile } from "./state.js"
export { checkServicesPath } from "./WorkspaceCheck.js"
export type { HashRequest } from "./WorkspaceHash.js"
export type { ReadInto } from "./WorkspaceRead.js"
export { sweepLitter, writeFileAtomic, writeFilesAtomic } from "./WorkspaceWrite.js"

export interface WorkspaceShape {
  /** Absolute path of the services tree. */
  readonly root: string
  /**
   * Every member file and link (membership list and `.agentsyncignore`), sorted by path; a symbolic link is listed
   * with its target (`link`) and never followed (see `walkTree`). With `reads`, a name that is not UTF-8 is refused
   * only where the caller reads the path (local sync, `validate`), and left out unread elsewhere: handed to `unread`
   * where file sync takes it, and so refuses its run.
   */
  readonly listFiles: (
    reads?: (path: string, link: boolean) => boolean,
    unread?: (name: UnreadName) => void
  ) => Effect.Effect<ReadonlyArray<WorkspaceFile>, IoError | InvalidInput>
  readonly readFile: (path: string) => Effect.Effect<Uint8Array, IoError>
  /** A symbolic link's target text, as bytes (the link is never followed). */
  readonly readLink: (path: string) => Effect.Effect<Uint8Array, IoError>
  /** Reads many files, in order; far cheaper per file than `readFile` for a whole tree (see below). */
  readonly readFiles: (paths: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<Uint8Array>, IoError>
  /**
   * Fills each buffer with its file's bytes, in order: true where the file held exactly as many bytes as its
   * buffer, false where it held fewer or more (it changed since it was listed). One call per batch, synchronous
   * calls inside for all but large files: the bundle's read path, for tens of thousands of files.
   */
  readonly readInto: (reads: ReadonlyArray<ReadInto>) => Effect.Effect<ReadonlyArray<boolean>, IoError>
  /** Symbolic links' targets, in order, never followed; undefined where a path is no longer a link, or is gone. */
  readonly readLinks: (paths: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<string | undefined>, IoError>
  /**
   * Each file's size and SHA-256 as it is now, in order; `onHashed` hears after each batch how many it hashed. The
   * local manifest's hashing, for tens of thousands of files: small files in synchronous batches, large ones
   * streamed, a size given with a path sparing a stat.
   */
  readonly hashFiles: (
    files: ReadonlyArray<HashRequest>,
    onHashed?: (files: number) => void
  ) => Effect.Effect<ReadonlyArray<FileEntry>, IoError>
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
  /** Reads and parses every item file of the tree, and names what file sync will refuse that it did not read. */
  readonly readProject: () => Effect.Effect<TreeProject, IoError | InvalidInput>
  /** The membership test in force (the ignore file is read once per call). */
  readonly membership: () => Effect.Effect<Membership, IoError>
  /**
   * Every name at the top of the tree, each with whether it is a folder (a link is not followed), in no set order;
   * none when there is no tree. What file sync leaves out there is `leftOut`.
   */
  readonly listTop: () => Effect.Effect<ReadonlyArray<TopEntry>, IoError>
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

/** The project a tree holds, as `readProject` reads it. */
export interface TreeProject extends Project {
  /**
   * Each name that is not UTF-8 which the read left out unread, though file sync takes it and so refuses its runs
   * (see `walkTree`): as a path shown as file sync's refusal shows its folder, the name's bytes escaped (`escapeName`),
   * a folder's ending in `/`; sorted.
   */
  readonly notUtf8: ReadonlyArray<string>
  /** Special files of the tree (see `specialsOf`): never opened, synced by neither sync. */
  readonly special: ReadonlyArray<SpecialFile>
}

/**
 * A file to write: its path, its bytes, and either its exact permission bits (`mode`, set whatever the umask) or
 * whether it is created executable (`executable`: 0755 rather than 0644, less the umask, as any program creates a
 * file); neither: 0644 less the umask.
 */
export interface WriteSpec {
  readonly path: string
  readonly bytes: Uint8Array | string
  readonly mode?: number
  readonly executable?: boolean
}

export class Workspace extends Context.Tag("agentsync/Workspace")<Workspace, WorkspaceShape>() {}

// A tree path as a listing makes it: relative, its segments neither empty nor `.` nor `..`.
const PLAIN = /^(?!\.\.?(?:\/|$))(?:[^/]+\/(?!\.\.?(?:\/|$)))*[^/]+$/

/**
 * A relative tree path's absolute path under root (`root` resolved), or undefined when it escapes the root. A plain
 * path (see `PLAIN`) on a POSIX system is joined as it is, which is what `resolve` makes of it (a whole tree's reads
 * spent 8 MB and tens of milliseconds in `resolve`); any other is resolved and checked.
 */
export const inside = (root: string, path: string): string | undefined => {
  if (nodePath.sep === "/" && root !== "/" && PLAIN.test(path)) return `${root}/${path}`
  const full = nodePath.resolve(root, path)
  return full === root || full.startsWith(root + nodePath.sep) ? full : undefined
}

const escapes = (path: string) => new IoError({ path, reason: "path escapes the services tree" })

/** A root as the user would type it: relative to the working folder when it lies inside it, else absolute. */
const shownRoot = (absRoot: string): string => {
  const rel = nodePath.relative(process.cwd(), absRoot)
  return rel === "" ? "." : rel.startsWith("..") || nodePath.isAbsolute(rel) ? absRoot : rel
}

/**
 * The folder holding a name that is not UTF-8 in a listing of the tree at `absRoot`, as both the refusal
 * (`listingError`) and the warning (`unreadPath`) show it: under the root, each of its names escaped as that name is.
 */
const shownFolder = (absRoot: string, folder: string): string => nodePath.join(shownRoot(absRoot), escapePath(folder))

/** A name that is not UTF-8 in a listing of the tree at `absRoot`, as a path under its folder (see `shownFolder`). */
const unreadPath = (absRoot: string, name: UnreadName): string =>
  `${nodePath.join(shownFolder(absRoot, name.folder), name.shown)}${name.isFolder ? "/" : ""}`

/** A failed listing: a name that is not UTF-8 is the input's fault, named by its folder; anything else, the disk's. */
const listingError =
  (absRoot: string) =>
  (e: unknown): InvalidInput | IoError =>
    e instanceof UnreadableName
      ? new InvalidInput({
          file: shownFolder(absRoot, e.folder),
          reason: `the name "${e.shown}" is not UTF-8: ${e.reason}`
        })
      : io(absRoot, "cannot list")(e)

/** Resolves a relative tree path under root, refusing anything that escapes it. */
export const resolveInside = (root: string, path: string): Effect.Effect<string, IoError> => {
  const full = inside(root, path)
  return full === undefined ? Effect.fail(escapes(path)) : Effect.succeed(full)
}

export const make = (root: string): WorkspaceShape => {
  const absRoot = nodePath.resolve(root)
  // Read without blocking, and only a regular file (`readRegularText`): a FIFO in its place would hang the run.
  const membership = () =>
    Effect.try({
      try: () => readRegularText(nodePath.join(absRoot, IGNORE_FILE)) ?? "",
      catch: io(nodePath.join(absRoot, IGNORE_FILE), "cannot read")
    }).pipe(Effect.map(makeMembership))

  const listFiles = Effect.fn("Workspace.listFiles")(function* (
    reads?: (path: string, link: boolean) => boolean,
    unread?: (name: UnreadName) => void
  ) {
    const member = yield* membership()
    return yield* Effect.try({ try: () => walkTree(absRoot, member, reads, unread), catch: listingError(absRoot) })
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

  /** `inside` for the synchronous batches: throws the error `resolveInside` fails with. */
  const insideOrThrow = (path: string) => {
    const full = inside(absRoot, path)
    if (full === undefined) throw escapes(path)
    return full
  }

  const writeFile = Effect.fn("Workspace.writeFile")(function* (path: string, bytes: Uint8Array | string) {
    const full = yield* resolveInside(absRoot, path)
    yield* writeFileAtomic(full, bytes)
  })

  const writeFiles = Effect.fn("Workspace.writeFiles")(function* (files: ReadonlyArray<WriteSpec>) {
    const resolved = yield* Effect.forEach(files, (f) =>
      Effect.map(resolveInside(absRoot, f.path), (full) => ({
        full,
        bytes: f.bytes,
        ...(f.mode === undefined ? {} : { mode: f.mode }),
        ...(f.executable === undefined ? {} : { executable: f.executable })
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
    const read = new Map(
      Arr.zip(
        small.map((f) => f.path),
        bytes
      )
    )
    return files.map(
      (f): RawFile => ({ path: f.path, bytes: read.get(f.path) ?? new Uint8Array(0), mode: f.mode, size: f.size })
    )
  })

  const readProject = Effect.fn("Workspace.readProject")(function* () {
    // A name that is not UTF-8 is refused only where an item file is read; elsewhere it is named, for file sync
    // refuses it.
    const notUtf8: Array<string> = []
    const all = yield* listFiles(
      (path, link) => !link && isProjectFile(path),
      (name) => notUtf8.push(unreadPath(absRoot, name))
    )
    // Item files are read from regular files only: a link is left to file sync, never read through.
    const files = all.filter((f) => f.link === undefined && isProjectFile(f.path))
    const raw = yield* readRawFiles(files)
    const shown = nodePath.relative(process.cwd(), absRoot) || "."
    const project = parseProject(raw, { prefix: `${shown}/` })
    // Files outside the item folders were not read; they are listed as left to file sync all the same.
    const others = all.filter((f) => f.link !== undefined || !isProjectFile(f.path)).map((f) => f.path)
    return {
      ...project,
      unsynced: [...project.unsynced, ...others].sort(),
      notUtf8: notUtf8.sort(),
      special: specialsOf(all)
    }
  })

  return {
    root: absRoot,
    listFiles,
    readFile,
    readLink,
    readFiles,
    readInto: Effect.fn("Workspace.readInto")((reads: ReadonlyArray<ReadInto>) =>
      readIntoAll(absRoot, reads, insideOrThrow)
    ),
    readLinks: Effect.fn("Workspace.readLinks")((paths: ReadonlyArray<string>) =>
      readLinksAll(absRoot, paths, insideOrThrow)
    ),
    hashFiles: (files, onHashed) => hashAll(absRoot, files, insideOrThrow, onHashed),
    readRawFiles,
    writeFile,
    writeFiles,
    removeFile,
    readProject,
    membership,
    listTop: Effect.fn("Workspace.listTop")(() =>
      Effect.try({ try: () => listTopSync(absRoot), catch: io(absRoot, "cannot list") })
    ),
    sweepLitter: () => sweepLitter(absRoot, true),
    obstacles: Effect.fn("Workspace.obstacles")((write: ReadonlyArray<string>, deleted: ReadonlySet<string>) =>
      Effect.try({
        try: () => findObstacles(absRoot, write, deleted),
        catch: io(absRoot, "cannot look at what the pull would replace")
      })
    )
  }
}

/**
 * What at the top of the tree file sync leaves out unasked (`leftOutAtTop`: sorted, a folder's name ending in
 * `/`), under the membership in force: what push, pull, diff and doctor name.
 */
export const leftOut = (workspace: WorkspaceShape): Effect.Effect<ReadonlyArray<string>, IoError> =>
  Effect.zipWith(workspace.membership(), workspace.listTop(), leftOutAtTop)

/** Each services tree, by its root. */
export interface WorkspacesShape {
  readonly at: (root: string) => WorkspaceShape
}

const live: WorkspacesShape = { at: make }

/**
 * The services trees on disk; by default the local disk (a test may provide another, whose reads fail or are
 * counted). The stages that take a services path reach its tree through it, and `layer` builds its `Workspace`.
 */
export class Workspaces extends Context.Reference<Workspaces>()("agentsync/Workspaces", { defaultValue: () => live }) {}

/** The tree at `root`, from the service in force. */
export const workspaceAt = (root: string): Effect.Effect<WorkspaceShape> => Effect.map(Workspaces, (w) => w.at(root))

export const layer = (root: string): Layer.Layer<Workspace> => Layer.effect(Workspace, workspaceAt(root))
