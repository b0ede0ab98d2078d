/** Whether a services path is one: it exists and looks like a project, checked before any Workspace is built. */

import * as fsSync from "node:fs"
import * as nodePath from "node:path"
import { Effect } from "effect"
import { PROJECT_FILE } from "../config.js"
import { IGNORE_FILE, leftOutAtTop, MEMBERSHIP, makeMembership } from "../domain/membership.js"
import { MissingConfig } from "../errors.js"
import { listTopSync } from "./WorkspaceTop.js"

export interface CheckOptions {
  /**
   * The run only writes into the tree (a pull): a folder holding nothing file sync would leave out (empty, or only
   * litter such as `.DS_Store`) is also one, the folder a first pull starts from.
   */
  readonly pull?: boolean
  /** The run syncs files (push, diff, sync): a missing folder's message says how a first pull starts one. */
  readonly files?: boolean
}

/**
 * A services path must exist and look like a project: it holds `agentsync.yaml`, `.agentsyncignore` or one of
 * the known folders, or it is the tree the project's `agentsync.yaml` names. Anything else (a typo, a missing
 * folder) would read as an empty tree, and an empty tree deletes everything on the other side: a usage error
 * naming the path and what to do instead. A pull, which deletes nothing where nothing is, may also start in an
 * empty folder (`options.pull`): the one step a first pull asks of a user is to create it.
 */
export const checkServicesPath = (
  config: {
    readonly servicesPath: string
    readonly projectRoot: string
    readonly project: { readonly services?: string | undefined }
  },
  options: CheckOptions = {}
): Effect.Effect<void, MissingConfig> =>
  Effect.suspend(() => {
    const path = nodePath.resolve(config.servicesPath)
    const relative = nodePath.relative(process.cwd(), path)
    const shown = relative === "" ? "." : relative.startsWith("..") ? path : relative
    const is = (p: string, dir: boolean) => {
      const st = fsSync.statSync(p, { throwIfNoEntry: false })
      return st !== undefined && (dir ? st.isDirectory() : st.isFile())
    }
    const st = fsSync.statSync(path, { throwIfNoEntry: false })
    if (st === undefined || !st.isDirectory()) {
      const word = /^[\w./-]+$/.test(shown) ? shown : JSON.stringify(shown)
      return Effect.fail(
        new MissingConfig({
          key: "services",
          reason:
            st === undefined
              ? `${shown} does not exist; ${options.pull === true || options.files === true ? `for a first pull, create it (mkdir ${word}) and pull again; otherwise ` : ""}pass --services DIR naming the tree (agentsync init starts a new project)`
              : `${shown} is not a folder; pass --services DIR naming the tree`
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
    if (looksLikeOne) return Effect.void
    // Nothing at the top a pull's writes could meet: no folder or file file sync would leave out.
    const bare = leftOutAtTop(makeMembership(), listTopSync(path)).length === 0
    if (options.pull === true && bare) return Effect.void
    return Effect.fail(
      new MissingConfig({
        key: "services",
        reason: `${shown} does not look like a project: it holds none of ${MEMBERSHIP.map((m) => `${m}/`).join(", ")} and no ${PROJECT_FILE} names it; ${bare ? "a pull may start in it as it is (files pull, sync --pull); otherwise " : ""}pass --services DIR naming the tree`
      })
    )
  })
