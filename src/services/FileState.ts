/** FileState: the port owning a project's `.agentsync/` file sync state (state files, lock, staging folders, backups, litter). */
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { Context, Effect, type Scope } from "effect"
import type { IoError, SyncInProgress } from "../errors.js"
import { ioError as io } from "../errors.js"
import * as ProcessLock from "./ProcessLock.js"
import { readStateText, stateDir } from "./state.js"
import { sweepLitter, writeFileAtomic } from "./Workspace.js"

/**
 * The files a run keeps (see docs/architecture.md, "What a run keeps"); `pull-journal.json` is written by the swap,
 * which runs uninterruptibly on plain code (stages/swap.ts), and read here.
 */
export type StateFile =
  | "hash-cache.json"
  | "files-base.json"
  | "remote-manifest.json"
  | "files-settled.json"
  | "pull-journal.json"

/** One project's state folder. */
export interface ProjectFileState {
  /** The `.agentsync/` folder. */
  readonly dir: string
  readonly path: (name: StateFile) => string
  /** A state file's text; undefined when it is missing or unreadable (only ever a slower run). */
  readonly read: (name: StateFile) => Effect.Effect<string | undefined>
  /** Replaces a state file atomically (temp file, flush, rename). */
  readonly write: (name: StateFile, text: string) => Effect.Effect<void, IoError>
  readonly remove: (name: StateFile) => Effect.Effect<void, IoError>
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
  /** The folder of the backups pulls and restores make. */
  readonly backups: string
  /** Removes what killed runs left: staging folders no journal names, temp files of processes that are gone. */
  readonly sweep: () => Effect.Effect<void, IoError>
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
  return {
    dir,
    path,
    read: (name) => Effect.sync(() => readStateText(path(name))),
    write: (name, text) => writeFileAtomic(path(name), text),
    remove: (name) =>
      Effect.try({ try: () => fs.rmSync(path(name), { force: true }), catch: io(path(name), "cannot remove") }),
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
    backups: nodePath.join(dir, "backups"),
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
      })
  }
}

const live: FileStateShape = { at: make }

/** The `.agentsync/` state of each project; by default the local disk (a test may provide another). */
export class FileState extends Context.Reference<FileState>()("agentsync/FileState", { defaultValue: () => live }) {}

/** The state of the project at `projectRoot`, from the service in force. */
export const stateOf = (projectRoot: string): Effect.Effect<ProjectFileState> =>
  Effect.map(FileState, (s) => s.at(projectRoot))
