/** Removing a file and the folders it leaves empty: the one implementation, for the tree, skill units and the swap. */
import * as fs from "node:fs"
import * as nodePath from "node:path"

/**
 * Removes the empty folders from `dir` upwards, stopping at the first that is not empty, and never above `root`
 * (`root` itself is removed only with `inclusive`, when it ends up empty).
 */
export const pruneEmptyFolders = (dir: string, root: string, inclusive = false): void => {
  let at = dir
  while ((inclusive && at === root) || at.startsWith(root + nodePath.sep)) {
    try {
      fs.rmdirSync(at)
    } catch {
      return // not empty (or gone): stop climbing
    }
    at = nodePath.dirname(at)
  }
}

/** Removes a file (absent is fine), then the folders above it left empty (see `pruneEmptyFolders`). */
export const removeFileAndPrune = async (abs: string, root: string, inclusive = false): Promise<void> => {
  await fs.promises.rm(abs, { force: true })
  pruneEmptyFolders(nodePath.dirname(abs), root, inclusive)
}
