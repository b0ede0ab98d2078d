/** FileState: the port owning a project's `.agentsync/` file sync state (state files, lock, staging folders, the pull journal's swap, backups, litter). */
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { Context, Effect, type Scope } from "effect"
import type { IoError, SyncInProgress } from "../errors.js"
import { ioError as io } from "../errors.js"
import { type BackupContents, contentsOf, filesUnder, namesIn, RECORD, stageSync } from "./FileStateBackups.js"
import { makeStageWriter, type StageWriter } from "./FileStateStage.js"
import { type Journal, keepSync, swapInSync } from "./FileStateSwap.js"
import * as ProcessLock from "./ProcessLock.js"
import {
  forgetReadAhead,
  listingClock,
  readingAhead,
  readStateBytes,
  readStateText,
  stateDir,
  takeStateBytes,
  takeStateText,
  type WorkspaceFile
} from "./state.js"
import { sweepLitter, writeFileAtomic } from "./Workspace.js"
import type { Contents } from "./WorkspaceWrite.js"

/**
 * The files a run keeps (see docs/architecture.md, "What a run keeps"); `pull-journal.json` is written by the swap
 * stage (stages/files/swap.ts) before it keeps or renames anything, and read here.
 */
export type StateFile =
  | "hash-cache.json"
  | "files-base.json"
  | "remote-manifest.json"
  | "files-settled.json"
  | "files-settled-listing.txt"
  | "pull-journal.json"

/** One project's state folder. */
export interface ProjectFileState {
  /** The `.agentsync/` folder. */
  readonly dir: string
  readonly path: (name: StateFile) => string
  /** A state file's text; undefined when it is missing or unreadable (only ever a slower run). */
  readonly read: (name: StateFile) => Effect.Effect<string | undefined>
  /** A state file's bytes, as `read` reads them (a format that is checked and spliced as bytes). */
  readonly readBytes: (name: StateFile) => Effect.Effect<Buffer | undefined>
  /** Replaces a state file atomically (temp file, flush, rename); pieces are written as their concatenation. */
  readonly write: (name: StateFile, text: Contents) => Effect.Effect<void, IoError>
  readonly remove: (name: StateFile) => Effect.Effect<void, IoError>
  /**
   * The stamp of a listing just taken (see `listingClock`): a file of it whose mtime is at or after the stamp is
   * racy, vouched for by neither the hash cache nor a settled mark. Taken before any file is read to hash it.
   */
  readonly clock: (listing: ReadonlyArray<WorkspaceFile>) => Effect.Effect<number>
  /** `[size, mtimeMs]` of a state file, undefined when there is none. */
  readonly stat: (name: StateFile) => Effect.Effect<readonly [number, number] | undefined>
  /** The files lock, held for the scope: one push, pull or restore of the project at a time. */
  readonly lock: (what: string) => Effect.Effect<void, SyncInProgress | IoError, Scope.Scope>
  /**
   * A private (`0700`) staging folder for run `id`, for the scope: removed when the scope closes, however it
   * closes (an interrupted run leaves none), unless the pull journal names it by then (a later run finishes the
   * swap from it).
   */
  readonly staging: (id: string) => Effect.Effect<string, IoError, Scope.Scope>
  /**
   * The writer of a pull's files into a staging folder, for the scope: synchronous per chunk; what it holds open or
   * has in flight is closed, removed and waited for when the scope closes, however it closes.
   */
  readonly stageWriter: (staging: string) => Effect.Effect<StageWriter, never, Scope.Scope>
  /** The folder of the backups pulls and restores make. */
  readonly backups: string
  /** Removes what killed runs left: staging folders no journal names, temp files of processes that are gone. */
  readonly sweep: () => Effect.Effect<void, IoError>
  /**
   * Keeps in the journal's backup every file its swap will replace or delete (linked, copied where a link cannot
   * be made), touching nothing in the tree; the error names the backup path it could not write.
   */
  readonly keep: (journal: Journal) => Effect.Effect<void, IoError>
  /** The journal's renames, once `keep` has run: deletions, then the staged files moved in; safe to run again. */
  readonly swapIn: (journal: Journal) => Effect.Effect<void, IoError>
  /** Removes a staging folder of this state, whole (a path that is not one is left alone). */
  readonly removeStaging: (path: string) => Effect.Effect<void, IoError>
  /** The names in the backups folder (none when it does not exist). */
  readonly backupNames: () => Effect.Effect<ReadonlyArray<string>>
  /** The files of backup `id`, sorted (its record and later versions left out); undefined when there is none. */
  readonly backupFiles: (id: string) => Effect.Effect<ReadonlyArray<string> | undefined, IoError>
  /** What backup `id` holds, with its size and record; undefined when there is none. */
  readonly backupContents: (id: string) => Effect.Effect<BackupContents | undefined, IoError>
  /** Writes backup `id`'s record (atomically), once its files are in. */
  readonly recordBackup: (id: string, text: string) => Effect.Effect<void, IoError>
  readonly removeBackup: (id: string) => Effect.Effect<void, IoError>
  /** Copies `files` of backup `id` into a staging folder, for a restore. */
  readonly stageBackup: (id: string, staging: string, files: ReadonlyArray<string>) => Effect.Effect<void, IoError>
}

export interface FileStateShape {
  readonly at: (projectRoot: string) => ProjectFileState
}

const STAGING = "staging-"

/** The state of the project at `projectRoot`, on the local disk: synchronous calls (each file is read whole, once). */
export const make = (projectRoot: string): ProjectFileState => {
  const dir = stateDir(projectRoot)
  const path = (name: StateFile) => nodePath.join(dir, name)
  const journalNames = (staging: string) => (readStateText(path("pull-journal.json")) ?? "").includes(staging)
  const removeTree = (full: string, reason: string) =>
    Effect.try({ try: () => fs.rmSync(full, { recursive: true, force: true }), catch: io(full, reason) })
  const backups = nodePath.join(dir, "backups")
  const backup = (id: string) => nodePath.join(backups, id)
  return {
    dir,
    path,
    // Read ahead by the settled start path when it left the run to the program (see `readAhead`), else now.
    read: (name) =>
      readingAhead(path(name))
        ? Effect.promise(() => takeStateText(path(name)))
        : Effect.sync(() => readStateText(path(name))),
    readBytes: (name) =>
      readingAhead(path(name))
        ? Effect.promise(() => takeStateBytes(path(name)))
        : Effect.sync(() => readStateBytes(path(name))),
    // A write or removal replaces what a read ahead of the file holds: it is dropped, not kept for the process's life.
    write: (name, text) =>
      Effect.zipRight(
        Effect.sync(() => forgetReadAhead(path(name))),
        writeFileAtomic(path(name), text)
      ),
    clock: (listing) => Effect.sync(() => listingClock(projectRoot, listing)),
    remove: (name) =>
      Effect.try({
        try: () => {
          forgetReadAhead(path(name))
          fs.rmSync(path(name), { force: true })
        },
        catch: io(path(name), "cannot remove")
      }),
    stat: (name) =>
      Effect.sync(() => {
        const st = fs.statSync(path(name), { throwIfNoEntry: false })
        return st === undefined ? undefined : ([st.size, st.mtimeMs] as const)
      }),
    lock: (what) => Effect.asVoid(ProcessLock.acquire(path("files.lock" as StateFile), what)),
    staging: (id) => {
      const staging = nodePath.join(dir, `${STAGING}${id}`)
      return Effect.acquireRelease(
        Effect.as(
          Effect.try({
            try: () => fs.mkdirSync(staging, { recursive: true, mode: 0o700 }),
            catch: io(staging, "cannot create")
          }),
          staging
        ),
        // Once a journal names the staging folder, it is what a later run finishes the swap from: it stays.
        () => (journalNames(staging) ? Effect.void : Effect.orDie(removeTree(staging, "cannot remove")))
      )
    },
    stageWriter: (staging) =>
      Effect.acquireRelease(
        Effect.sync(() => makeStageWriter(staging)),
        (writer) => writer.abandon
      ),
    backups,
    sweep: () =>
      Effect.gen(function* () {
        const names = yield* Effect.sync(() => {
          try {
            return fs.readdirSync(dir)
          } catch {
            return [] as Array<string>
          }
        })
        for (const name of names.filter((n) => n.startsWith(STAGING))) {
          const full = nodePath.join(dir, name)
          if (!journalNames(full)) yield* removeTree(full, "cannot remove a staging folder left by an interrupted pull")
        }
        yield* sweepLitter(dir, false)
      }),
    keep: Effect.fn("FileState.keep")((journal: Journal) => {
      let at = journal.backup
      return Effect.try({
        try: () =>
          keepSync(journal, (path) => {
            at = path
          }),
        catch: (cause) => io(at, "cannot keep a copy in the backup")(cause)
      })
    }),
    swapIn: Effect.fn("FileState.swapIn")((journal: Journal) =>
      Effect.try({ try: () => swapInSync(journal), catch: io(journal.servicesPath, "cannot swap the pulled files in") })
    ),
    removeStaging: Effect.fn("FileState.removeStaging")((path: string) =>
      nodePath.dirname(nodePath.resolve(path)) === nodePath.resolve(dir) && nodePath.basename(path).startsWith(STAGING)
        ? removeTree(path, "cannot remove")
        : Effect.void
    ),
    backupNames: Effect.fn("FileState.backupNames")(() => Effect.sync(() => namesIn(backups))),
    backupFiles: Effect.fn("FileState.backupFiles")((id: string) =>
      Effect.try({ try: () => filesUnder(backup(id)), catch: io(backup(id), "cannot read the backup") })
    ),
    backupContents: Effect.fn("FileState.backupContents")((id: string) =>
      Effect.try({ try: () => contentsOf(backup(id)), catch: io(backup(id), "cannot read the backup") })
    ),
    recordBackup: Effect.fn("FileState.recordBackup")((id: string, text: string) =>
      writeFileAtomic(nodePath.join(backup(id), RECORD), text)
    ),
    removeBackup: Effect.fn("FileState.removeBackup")((id: string) => removeTree(backup(id), "cannot remove")),
    stageBackup: Effect.fn("FileState.stageBackup")((id: string, staging: string, files: ReadonlyArray<string>) =>
      Effect.try({
        try: () => stageSync(backup(id), staging, files),
        catch: io(staging, "cannot stage the backup's files")
      })
    )
  }
}

const live: FileStateShape = { at: make }

/** The `.agentsync/` state of each project; by default the local disk (a test may provide another). */
export class FileState extends Context.Reference<FileState>()("agentsync/FileState", { defaultValue: () => live }) {}

/** The state of the project at `projectRoot`, from the service in force. */
export const stateOf = (projectRoot: string): Effect.Effect<ProjectFileState> =>
  Effect.map(FileState, (s) => s.at(projectRoot))
