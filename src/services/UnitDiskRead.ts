/** The local UnitDisk's synchronous readers: a unit or many read as digests with modes and links, a source's or a home's files listed, the temp files of interrupted writes found on the way. */

import * as fsSync from "node:fs"
import * as nodePath from "node:path"
import { sha256 } from "../domain/hash.js"
import { digestOf, type UnitFiles, unitLinkProblem } from "../domain/skills/model.js"
import { isMissing } from "../errors.js"
import { type Entry, entriesByBytes, escapeName, mayHoldUnreadable, UnreadableName } from "./nameBytes.js"

/** Every temp file and staging folder agentsync writes starts with this. */
export const TEMP_PREFIX = ".agentsync-tmp-"

/** Never part of a unit: editor swap files, OS metadata, a nested repository. */
const isLitter = (name: string) =>
  name === ".DS_Store" || name === ".git" || name.endsWith(".swp") || name.endsWith("~")

/**
 * A folder's entries, refused with `UnreadableName` when one is named by bytes that are not UTF-8: no unit path can
 * hold it, and a unit read or written without it would lose the file (litter, which no unit holds, is let be).
 */
const checked = (dir: string, entries: Array<Entry>): Array<Entry> =>
  mayHoldUnreadable(entries)
    ? entriesByBytes(dir, (raw, d) => {
        if (!isLitter(d.name))
          throw new UnreadableName(
            dir,
            escapeName(raw),
            "no skill path can hold it; rename it, or move it out of the folder"
          )
      })
    : entries

/** A unit as found on disk. */
export interface UnitSnapshot {
  /** Digests by path relative to the unit root; `undefined` when the unit is absent (or left alone). */
  readonly files: UnitFiles | undefined
  /** Links inside the unit that may lead out of it (`unitLinkProblem`): not part of the unit, never written over or removed. */
  readonly outside: ReadonlyArray<{ readonly rel: string; readonly target: string; readonly reason: string }>
  /** The unit root is itself a link (to `linked`): the whole unit is left alone. */
  readonly linked: string | undefined
  /** Temp files and staging folders of interrupted writes found in the unit (absolute paths). */
  readonly temps: ReadonlyArray<string>
}

const absent: UnitSnapshot = { files: undefined, outside: [], linked: undefined, temps: [] }

/** The digest of a regular file: its bytes and its executable bit. */
export const fileDigestSync = (abs: string): string => {
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

export const kindAt = (abs: string): EntryKind => {
  let st: fsSync.Stats | undefined
  try {
    st = fsSync.lstatSync(abs)
  } catch (e) {
    if (isMissing(e)) return "absent"
    throw e
  }
  return st.isSymbolicLink() ? "link" : st.isDirectory() ? "dir" : st.isFile() ? "file" : "other"
}

/** A folder's entries; none when it (or a folder above it) is not there. */
const entriesOf = (dir: string): Array<fsSync.Dirent> => {
  try {
    return fsSync.readdirSync(dir, { withFileTypes: true })
  } catch (e) {
    if (isMissing(e)) return []
    throw e
  }
}

/** What stands in a folder, by name, from one listing (an absent folder lists nothing). */
export const listKindsSync = (dir: string): ReadonlyMap<string, EntryKind> => {
  const out = new Map<string, EntryKind>()
  for (const d of entriesOf(dir))
    out.set(d.name, d.isSymbolicLink() ? "link" : d.isDirectory() ? "dir" : d.isFile() ? "file" : "other")
  return out
}

/**
 * Reads a unit on disk, synchronously (thousands of small files hash several times faster without the thread pool
 * round trips): a folder unit is every file and link under `abs`, a file unit the file itself. `kind`, when the
 * caller listed the parent folder already, saves a `stat` per unit.
 */
export const snapshotUnitSync = (abs: string, folder: boolean, kind: EntryKind = kindAt(abs)): UnitSnapshot => {
  if (kind === "absent") return absent
  if (kind === "link") return { ...absent, linked: fsSync.readlinkSync(abs) }
  if (!folder) return kind === "file" ? { ...absent, files: { "": fileDigestSync(abs) } } : absent
  if (kind !== "dir") return absent
  const files: Record<string, string> = {}
  const outside: Array<{ rel: string; target: string; reason: string }> = []
  const temps: Array<string> = []
  let found = false
  const walk = (dir: string, rel: string): void => {
    for (const d of checked(dir, fsSync.readdirSync(dir, { withFileTypes: true }))) {
      const full = nodePath.join(dir, d.name)
      if (d.name.startsWith(TEMP_PREFIX)) {
        temps.push(full)
        continue
      }
      if (isLitter(d.name)) continue
      const r = rel === "" ? d.name : `${rel}/${d.name}`
      if (d.isSymbolicLink()) {
        const target = fsSync.readlinkSync(full)
        const reason = unitLinkProblem(r, target)
        if (reason === undefined) {
          files[r] = digestOf(sha256(target), "link")
          found = true
        } else outside.push({ rel: r, target, reason })
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
export const listTreeSync = (root: string): Listing => {
  const paths: Array<string> = []
  const temps: Array<string> = []
  const walk = (dir: string, rel: string): void => {
    for (const d of checked(dir, fsSync.readdirSync(dir, { withFileTypes: true }))) {
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
export const scanHomeSync = (home: string, dir: string, depth: number, skip: (rel: string) => boolean): Listing => {
  const paths: Array<string> = []
  const temps: Array<string> = []
  const walk = (abs: string, rel: string, left: number): void => {
    for (const d of checked(abs, entriesOf(abs))) {
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

/** Paths found under a folder, and the temp files and staging folders of interrupted writes found on the way. */
export interface Listing {
  readonly paths: ReadonlyArray<string>
  readonly temps: ReadonlyArray<string>
}
