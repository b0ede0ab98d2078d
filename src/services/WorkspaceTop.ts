/** The top of a services tree, listed on plain Node (no Effect: the settled start path shares it with the Workspace port). */

import * as fs from "node:fs"
import type { TopEntry } from "../domain/membership.js"
import { type Entry, entriesByBytes, escapeName, mayHoldUnreadable } from "./nameBytes.js"

/**
 * Every name at the top of the tree, each with whether it is a folder (a link is not followed); none when there is no
 * tree. A name that is not UTF-8 is given as `escapeName` shows its bytes (nothing at the top that is not a
 * membership folder travels, so such a name is only named, as left out).
 */
export const listTopSync = (root: string): Array<TopEntry> => {
  let entries: Array<Entry>
  try {
    entries = fs.readdirSync(root, { withFileTypes: true })
  } catch (e) {
    // An errno error's code, read without errors.ts (it loads Effect).
    if ((e as { code?: unknown }).code === "ENOENT") return []
    throw e
  }
  if (mayHoldUnreadable(entries)) {
    const shown: Array<Entry> = []
    entries = entriesByBytes(root, (raw, d) => shown.push({ ...d, name: escapeName(raw) }))
    entries.push(...shown)
  }
  return entries.map((e) => ({ name: e.name, folder: e.isDirectory() }))
}
