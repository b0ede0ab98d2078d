/** The swap of a pull: verified files renamed into the tree, what they replace or delete kept in a backup, every path old or new at every instant. */

import * as fsSync from "node:fs"
import * as fs from "node:fs/promises"
import * as nodePath from "node:path"
import { Effect, Schema } from "effect"
import { errnoCode, IoError, ioError as io } from "../../errors.js"
import { pruneEmptyFolders } from "../../services/prune.js"
import { writeFileAtomic } from "../../services/Workspace.js"
import { stateDir } from "./bundle.js"

/** What a swap does, written before its first rename so that a run after a crash can finish it. */
export const Journal = Schema.Struct({
  staging: Schema.String,
  backup: Schema.String,
  servicesPath: Schema.String,
  write: Schema.Array(Schema.String),
  delete: Schema.Array(Schema.String)
})
export type Journal = typeof Journal.Type

const JOURNAL = "pull-journal.json"
export const journalPath = (projectRoot: string) => nodePath.join(stateDir(projectRoot), JOURNAL)

const code = errnoCode

/** What is at a path, or undefined when nothing is (also when a file stands where one of its folders should be). */
const lstat = (p: string) => {
  try {
    return fsSync.lstatSync(p, { throwIfNoEntry: false })
  } catch (e) {
    if (code(e) === "ENOTDIR") return undefined
    throw e
  }
}

/** mkdir -p, remembering what exists: a pull creates thousands of files in few folders. */
export const makeDirs = () => {
  const made = new Set<string>()
  return (dir: string) => {
    if (made.has(dir)) return
    fsSync.mkdirSync(dir, { recursive: true })
    made.add(dir)
  }
}

/**
 * Carries out a journal; safe to run again after a crash at any point. Deletions go first (a file that
 * becomes a folder, or a folder that becomes a file, needs its old shape gone), each moved into the backup by
 * one rename. A replaced file keeps its old bytes at its path until the new ones are renamed over them: they
 * are hard-linked into the backup first (copied where a link cannot be made). Something in the way that the
 * plan did not foresee (a file where a folder must go, a folder where a file must go) is moved into the
 * backup too, so the tree converges and nothing is lost. Synchronous calls: thousands of renames go several
 * times faster without a thread-pool hop each.
 */
export const swapIn = (j: Journal) => {
  const mkdirp = makeDirs()
  const root = j.servicesPath
  /** A name in the backup that holds nothing yet. */
  const freeName = (saved: string) => {
    let n = 1
    while (lstat(`${saved}.agentsync-kept-${n}`) !== undefined) n++
    return `${saved}.agentsync-kept-${n}`
  }
  /** Moves whatever is at `rel` (a file or a whole folder) into the backup. */
  const moveAside = (rel: string) => {
    const target = nodePath.join(root, rel)
    const t = lstat(target)
    if (t === undefined) return
    let saved = nodePath.join(j.backup, rel)
    const s = lstat(saved)
    if (s !== undefined) {
      if (s.ino === t.ino && s.dev === t.dev) return fsSync.unlinkSync(target) // linked by an interrupted run
      saved = freeName(saved)
    }
    mkdirp(nodePath.dirname(saved))
    fsSync.renameSync(target, saved)
  }
  /** Keeps the bytes at `rel` in the backup without taking them from their path. */
  const keepCopy = (rel: string, t: fsSync.Stats) => {
    const target = nodePath.join(root, rel)
    let saved = nodePath.join(j.backup, rel)
    const s = lstat(saved)
    if (s !== undefined) {
      if (s.ino === t.ino && s.dev === t.dev) return
      saved = freeName(saved)
    }
    mkdirp(nodePath.dirname(saved))
    try {
      fsSync.linkSync(target, saved)
    } catch (e) {
      if (code(e) === "EEXIST") throw e
      fsSync.copyFileSync(target, saved, fsSync.constants.COPYFILE_EXCL)
    }
  }
  /** Removes the folders a deletion left empty, up to the tree's root. */
  const pruneUp = (rel: string) => pruneEmptyFolders(nodePath.dirname(nodePath.join(root, rel)), root)
  /** The folder for `rel`, moving aside any file that stands where one of its folders must be. */
  const ready = new Set<string>()
  const folderFor = (rel: string) => {
    const parent = rel.slice(0, Math.max(0, rel.lastIndexOf("/")))
    if (ready.has(parent)) return
    const segments = parent.split("/")
    for (let i = 1; i <= segments.length; i++) {
      const ancestor = segments.slice(0, i).join("/")
      if (ready.has(ancestor)) continue
      const a = lstat(nodePath.join(root, ancestor))
      if (a !== undefined && !a.isDirectory()) moveAside(ancestor)
      if (a === undefined || !a.isDirectory()) break // created below, with what is under it
      ready.add(ancestor)
    }
    mkdirp(nodePath.join(root, parent))
    ready.add(parent)
  }

  for (const rel of j.delete) {
    const t = lstat(nodePath.join(root, rel))
    if (t === undefined || t.isDirectory()) continue
    moveAside(rel)
    pruneUp(rel)
  }
  for (const rel of j.write) {
    const staged = nodePath.join(j.staging, rel)
    if (lstat(staged) === undefined) continue // moved in by an earlier, interrupted run
    const target = nodePath.join(root, rel)
    const t = lstat(target)
    if (t?.isDirectory()) {
      // A folder whose files the plan deleted is empty by now; one the plan did not foresee is kept whole.
      try {
        fsSync.rmdirSync(target)
      } catch {
        moveAside(rel)
      }
    } else if (t !== undefined) keepCopy(rel, t)
    folderFor(rel)
    fsSync.renameSync(staged, target)
  }
}

/**
 * Finishes a swap that a killed or failed pull left half done (the journal is written before the first
 * rename), so the tree converges to the pulled state. Returns whether there was anything to finish. When it
 * cannot be finished, the error names the command that puts the old files back.
 */
export const recoverPull = Effect.fn("swap.recover")(function* (projectRoot: string) {
  const file = journalPath(projectRoot)
  const text = yield* Effect.promise(() => fs.readFile(file, "utf8").catch(() => undefined))
  if (text === undefined) return false
  const journal = yield* Schema.decodeUnknown(Schema.parseJson(Journal))(text).pipe(
    Effect.mapError(
      (e) => new IoError({ path: file, reason: `damaged pull journal (remove it and pull again): ${e.message}` })
    )
  )
  yield* finish(file, journal)
  return true
})

/** Runs the swap of a written journal, then removes the journal and the staging folder. */
export const finish = (file: string, journal: Journal): Effect.Effect<void, IoError> =>
  Effect.try({
    try: () => swapIn(journal),
    catch: (cause) =>
      io(
        journal.servicesPath,
        `cannot finish the pull (journal ${file}); fix the cause and run it again, or put back the files it replaced with \`agentsync files restore ${nodePath.basename(journal.backup)}\``
      )(cause)
  }).pipe(
    Effect.zipRight(
      Effect.tryPromise({
        try: async () => {
          await fs.rm(file, { force: true })
          await fs.rm(journal.staging, { recursive: true, force: true })
        },
        catch: io(file, "cannot remove")
      })
    )
  )

/** Writes the journal, then swaps: uninterruptible, so an interruption never leaves a journal without its staging. */
export const swap = (projectRoot: string, journal: Journal): Effect.Effect<void, IoError> => {
  const file = journalPath(projectRoot)
  return Effect.uninterruptible(Effect.zipRight(writeFileAtomic(file, JSON.stringify(journal)), finish(file, journal)))
}
