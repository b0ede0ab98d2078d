/** Whether a services path is one: it exists and looks like a project, checked before any Workspace is built. */

import * as fsSync from "node:fs"
import * as nodePath from "node:path"
import { Effect } from "effect"
import { PROJECT_FILE } from "../config.js"
import { IGNORE_FILE, MEMBERSHIP } from "../domain/membership.js"
import { MissingConfig } from "../errors.js"

/**
 * A services path must exist and look like a project: it holds `agentsync.yaml`, `.agentsyncignore` or one of
 * the known folders, or it is the tree the project's `agentsync.yaml` names. Anything else (a typo, a missing
 * folder) would read as an empty tree, and an empty tree deletes everything on the other side: a usage error
 * naming the path instead.
 */
export const checkServicesPath = (config: {
  readonly servicesPath: string
  readonly projectRoot: string
  readonly project: { readonly services?: string | undefined }
}): Effect.Effect<void, MissingConfig> =>
  Effect.suspend(() => {
    const path = nodePath.resolve(config.servicesPath)
    const relative = nodePath.relative(process.cwd(), path)
    const shown = relative === "" ? "." : relative.startsWith("..") ? path : relative
    const is = (p: string, dir: boolean) => {
      const st = fsSync.statSync(p, { throwIfNoEntry: false })
      return st !== undefined && (dir ? st.isDirectory() : st.isFile())
    }
    if (!is(path, true)) {
      return Effect.fail(
        new MissingConfig({
          key: "services",
          reason: `${shown} does not exist or is not a folder; pass --services DIR (for a first pull, create it)`
        })
      )
    }
    const configured =
      is(nodePath.join(config.projectRoot, PROJECT_FILE), false) &&
      nodePath.resolve(config.projectRoot, config.project.services ?? "services") === path
    const looksLikeOne =
      configured ||
      is(nodePath.join(path, PROJECT_FILE), false) ||
      is(nodePath.join(path, IGNORE_FILE), false) ||
      MEMBERSHIP.some((m) => is(nodePath.join(path, m), true))
    return looksLikeOne
      ? Effect.void
      : Effect.fail(
          new MissingConfig({
            key: "services",
            reason: `${shown} does not look like a project: it holds none of ${MEMBERSHIP.map((m) => `${m}/`).join(", ")} and no ${PROJECT_FILE} names it`
          })
        )
  })
