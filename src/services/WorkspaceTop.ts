/** The top of a services tree, listed on plain Node (no Effect: the settled start path shares it with the Workspace port). */

import * as fs from "node:fs"
import type { TopEntry } from "../domain/membership.js"

/** Every name at the top of the tree, each with whether it is a folder (a link is not followed); none when there is no tree. */
export const listTopSync = (root: string): Array<TopEntry> => {
  let entries: Array<fs.Dirent>
  try {
    entries = fs.readdirSync(root, { withFileTypes: true })
  } catch (e) {
    // An errno error's code, read without errors.ts (it loads Effect).
    if ((e as { code?: unknown }).code === "ENOENT") return []
    throw e
  }
  return entries.map((e) => ({ name: e.name, folder: e.isDirectory() }))
}
