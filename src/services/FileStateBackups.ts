/** The backups folder on the local disk: a backup's files and record read and written, its files staged for a restore, a backup removed. */

import * as fs from "node:fs"
import * as nodePath from "node:path"
import { KEPT } from "./FileStateSwap.js"

/** The record a backup holds of what made it, beside its files. */
export const RECORD = ".agentsync-backup.json"

/** What a backup holds: its files (the record and later versions left out), their bytes, and its record's text. */
export interface BackupContents {
  readonly files: ReadonlyArray<string>
  readonly bytes: number
  /** Undefined when the run that made it was stopped before recording it. */
  readonly record: string | undefined
}

/** Every file under a backup, as sorted POSIX paths relative to it; undefined when there is no such folder. */
export const filesUnder = (root: string): Array<string> | undefined => {
  if (!fs.existsSync(root)) return undefined
  const out: Array<string> = []
  const walk = (dir: string, rel: string) => {
    for (const d of fs.readdirSync(dir, { withFileTypes: true })) {
      const r = rel === "" ? d.name : `${rel}/${d.name}`
      if (d.isDirectory()) walk(nodePath.join(dir, d.name), r)
      else if (r !== RECORD && !KEPT.test(r)) out.push(r)
    }
  }
  walk(root, "")
  return out.sort()
}

/** A backup's files, their size and its record; undefined when there is no such backup. */
export const contentsOf = (backup: string): BackupContents | undefined => {
  const files = filesUnder(backup)
  if (files === undefined) return undefined
  const bytes = files.reduce((n, f) => n + fs.statSync(nodePath.join(backup, f)).size, 0)
  const record = fs.existsSync(nodePath.join(backup, RECORD))
    ? fs.readFileSync(nodePath.join(backup, RECORD), "utf8")
    : undefined
  return { files, bytes, record }
}

/** The names in the backups folder; none when it does not exist. */
export const namesIn = (backups: string): Array<string> => {
  try {
    return fs.readdirSync(backups)
  } catch {
    return []
  }
}

/** Copies `files` of a backup into a staging folder (which holds none of them yet). */
export const stageSync = (backup: string, staging: string, files: ReadonlyArray<string>) => {
  for (const f of files) {
    fs.mkdirSync(nodePath.dirname(nodePath.join(staging, f)), { recursive: true })
    fs.copyFileSync(nodePath.join(backup, f), nodePath.join(staging, f), fs.constants.COPYFILE_EXCL)
  }
}
