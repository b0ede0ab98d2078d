/** The swap of a pull on the local disk: what it replaces or deletes kept in the backup first, then the journal's renames, every path old or new at every instant. */

import * as fs from "node:fs"
import * as nodePath from "node:path"
import { Schema } from "effect"
import { fileMode } from "../domain/model.js"
import { errnoCode } from "../errors.js"
import { pruneEmptyFolders } from "./prune.js"

/** What a swap does, written before anything is kept or renamed, so that a run after a crash can finish it. */
export const Journal = Schema.Struct({
  staging: Schema.String,
  backup: Schema.String,
  servicesPath: Schema.String,
  write: Schema.Array(Schema.String),
  delete: Schema.Array(Schema.String),
  /** Files whose bytes stay and whose executable bit changes (absent in journals of older releases). */
  chmod: Schema.optional(Schema.Array(Schema.Struct({ path: Schema.String, executable: Schema.Boolean })))
})
export type Journal = typeof Journal.Type

/** A later version of a path kept beside the first in a backup: stays in the backup, is not restored. */
export const KEPT = /\.agentsync-kept-\d+$/

/** What is at a path, or undefined when nothing is (also when a file stands where one of its folders should be). */
const lstat = (p: string) => {
  try {
    return fs.lstatSync(p, { throwIfNoEntry: false })
  } catch (e) {
    if (errnoCode(e) === "ENOTDIR") return undefined
    throw e
  }
}

/** mkdir -p, remembering what exists: a pull creates thousands of files in few folders. */
export const makeDirs = () => {
  const made = new Set<string>()
  return (dir: string) => {
    if (made.has(dir)) return
    fs.mkdirSync(dir, { recursive: true })
    made.add(dir)
  }
}

/** The backup side of a journal: where a path's old bytes go, and whether they are there already. */
const backupOf = (j: Journal, mkdirp: (dir: string) => void) => {
  /** A name in the backup that holds nothing yet. */
  const freeName = (saved: string) => {
    let n = 1
    while (lstat(`${saved}.agentsync-kept-${n}`) !== undefined) n++
    return `${saved}.agentsync-kept-${n}`
  }
  /** Where the bytes of `rel` (standing at `t`) go; undefined when the backup holds them already (a link to them). */
  const slotFor = (rel: string, t: fs.Stats): string | undefined => {
    const saved = nodePath.join(j.backup, rel)
    const s = lstat(saved)
    if (s === undefined) return saved
    if (s.ino === t.ino && s.dev === t.dev) return undefined
    return freeName(saved)
  }
  return {
    /** Keeps the bytes at `rel` in the backup without taking them from their path (linked, copied where it cannot be). */
    keep: (rel: string, t: fs.Stats) => {
      const saved = slotFor(rel, t)
      if (saved === undefined) return
      mkdirp(nodePath.dirname(saved))
      const target = nodePath.join(j.servicesPath, rel)
      try {
        fs.linkSync(target, saved)
      } catch (e) {
        if (errnoCode(e) === "EEXIST") throw e
        fs.copyFileSync(target, saved, fs.constants.COPYFILE_EXCL)
      }
    },
    /**
     * Keeps a copy of the file at `rel` (its mode with it), for a chmod: a link would share the inode, and so the
     * new mode. Not twice: what the backup holds at `rel` is what an earlier run kept.
     */
    keepCopy: (rel: string) => {
      const saved = nodePath.join(j.backup, rel)
      if (lstat(saved) !== undefined) return
      mkdirp(nodePath.dirname(saved))
      fs.copyFileSync(nodePath.join(j.servicesPath, rel), saved, fs.constants.COPYFILE_EXCL)
    },
    /** Whether the backup holds something at `rel` already (what `keep` put there). */
    holds: (rel: string) => lstat(nodePath.join(j.backup, rel)) !== undefined,
    /** Moves whatever is at `rel` (a file or a whole folder) into the backup; a file already linked there is unlinked. */
    moveAside: (rel: string) => {
      const target = nodePath.join(j.servicesPath, rel)
      const t = lstat(target)
      if (t === undefined) return
      const saved = slotFor(rel, t)
      if (saved === undefined) return fs.unlinkSync(target)
      mkdirp(nodePath.dirname(saved))
      fs.renameSync(target, saved)
    }
  }
}

/**
 * Keeps in the backup every file the journal's swap will replace or delete, touching nothing in the tree: a backup
 * that cannot be written (a full disk) fails here, before any file of the tree has changed. Safe to run again: a
 * file the backup already links is not kept twice, and a file already swapped in is not kept at all. `at` is told
 * the backup path being written, for the error.
 */
export const keepSync = (j: Journal, at: (path: string) => void) => {
  const backup = backupOf(j, makeDirs())
  // Folders of the tree that are absent, by path: nothing below them is there to keep (a pull into an empty or
  // new folder asks once per folder, not once per file).
  const absent = new Map<string, boolean>()
  const folderAbsent = (rel: string) => {
    const parent = rel.slice(0, Math.max(0, rel.lastIndexOf("/")))
    if (parent === "") return false
    let known = absent.get(parent)
    if (known === undefined) {
      known = lstat(nodePath.join(j.servicesPath, parent)) === undefined
      absent.set(parent, known)
    }
    return known
  }
  const keepIfFile = (rel: string, staged: boolean) => {
    if (folderAbsent(rel)) return
    const t = lstat(nodePath.join(j.servicesPath, rel))
    if (t === undefined || t.isDirectory()) return
    // A path whose staged file is gone was swapped in by an earlier, interrupted run: what stands there is new.
    if (staged && lstat(nodePath.join(j.staging, rel)) === undefined) return
    at(nodePath.join(j.backup, rel))
    backup.keep(rel, t)
  }
  for (const rel of j.delete) keepIfFile(rel, false)
  for (const rel of j.write) keepIfFile(rel, true)
  for (const { path: rel } of j.chmod ?? []) {
    // The plan saw a file here: anything else now refuses the pull before the tree changes.
    if (lstat(nodePath.join(j.servicesPath, rel))?.isFile() !== true)
      throw new Error(`${rel} is no longer a file here, so its mode cannot change`)
    at(nodePath.join(j.backup, rel))
    backup.keepCopy(rel)
  }
}

/**
 * Carries out a journal whose files `keepSync` kept; safe to run again after a crash at any point. Deletions go
 * first (a file that becomes a folder, or a folder that becomes a file, needs its old shape gone), each unlinked
 * once its bytes are in the backup (moved there by one rename otherwise). A replaced file keeps its old bytes at its path until the new ones are renamed
 * over them. Something in the way that the plan did not foresee (a file where a folder must go, a folder where a
 * file must go) is moved into the backup, so the tree converges and nothing is lost. Synchronous calls: thousands
 * of renames go several times faster without a thread-pool hop each.
 */
export const swapInSync = (j: Journal) => {
  const mkdirp = makeDirs()
  const backup = backupOf(j, mkdirp)
  const root = j.servicesPath
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
      if (a !== undefined && !a.isDirectory()) backup.moveAside(ancestor)
      if (a === undefined || !a.isDirectory()) break // created below, with what is under it
      ready.add(ancestor)
    }
    mkdirp(nodePath.join(root, parent))
    ready.add(parent)
  }

  for (const rel of j.delete) {
    const t = lstat(nodePath.join(root, rel))
    if (t === undefined || t.isDirectory()) continue
    if (backup.holds(rel)) fs.unlinkSync(nodePath.join(root, rel))
    else backup.moveAside(rel)
    pruneUp(rel)
  }
  // A staged folder whose path the tree does not have is renamed in whole, with every file below it: one rename
  // for the thousands of files of a new folder, and no emptied staging folders left to remove. By folder path:
  // true when this run moved it in, false when the tree has it as a folder.
  const whole = new Map<string, boolean>()
  /** Whether `rel` went in with a folder renamed whole (now or earlier in this loop). */
  const movedWhole = (rel: string) => {
    for (let i = rel.indexOf("/"); i !== -1; i = rel.indexOf("/", i + 1)) {
      const dir = rel.slice(0, i)
      const known = whole.get(dir)
      if (known === true) return true
      if (known === false) continue
      const a = lstat(nodePath.join(root, dir))
      if (a?.isDirectory() === true) {
        whole.set(dir, false)
        continue
      }
      // Something else in the way (moved aside below, file by file), or the staged folder gone (moved in by an
      // earlier, interrupted run, so the tree has it: not reached).
      if (a !== undefined || lstat(nodePath.join(j.staging, dir))?.isDirectory() !== true) return false
      mkdirp(nodePath.dirname(nodePath.join(root, dir)))
      fs.renameSync(nodePath.join(j.staging, dir), nodePath.join(root, dir))
      whole.set(dir, true)
      return true
    }
    return false
  }
  for (const rel of j.write) {
    if (movedWhole(rel)) continue
    const staged = nodePath.join(j.staging, rel)
    // lstat, not exists: a staged symbolic link need not lead anywhere from the staging folder.
    if (lstat(staged) === undefined) continue // moved in by an earlier, interrupted run
    const target = nodePath.join(root, rel)
    if (lstat(target)?.isDirectory()) {
      // A folder whose files the plan deleted is empty by now; one the plan did not foresee is kept whole.
      try {
        fs.rmdirSync(target)
      } catch {
        backup.moveAside(rel)
      }
    }
    folderFor(rel)
    fs.renameSync(staged, target)
  }
  // A mode alone, in place: the mode a pulled file gets (0755 or 0644 under the umask), set again by a rerun.
  const umask = j.chmod === undefined || j.chmod.length === 0 ? 0 : process.umask()
  for (const { path: rel, executable } of j.chmod ?? []) {
    const target = nodePath.join(root, rel)
    if (lstat(target)?.isFile() === true) fs.chmodSync(target, fileMode(executable) & ~umask)
  }
}
