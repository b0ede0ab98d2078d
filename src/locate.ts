/**
 * Where a project is, from the working directory and `--services`: plain code without Effect, shared by
 * `loadConfig` and the settled check that runs before any runtime is loaded.
 */
import * as fs from "node:fs"
import * as nodePath from "node:path"

export const PROJECT_FILE = "agentsync.yaml"

export interface Located {
  /** The folder holding `agentsync.yaml` (or the working directory). */
  readonly projectRoot: string
  /** The services tree when `--services` named the tree itself rather than a project root. */
  readonly servicesOverride: string | undefined
}

/** `--services` may name the tree itself or a project root (a folder holding `agentsync.yaml` or `services/`). */
export const locateProject = (cwd: string, services: string | undefined): Located => {
  const at = nodePath.resolve(cwd)
  if (services === undefined) return { projectRoot: at, servicesOverride: undefined }
  const given = nodePath.resolve(at, services)
  return fs.existsSync(nodePath.join(given, PROJECT_FILE)) || fs.existsSync(nodePath.join(given, "services"))
    ? { projectRoot: given, servicesOverride: undefined }
    : { projectRoot: nodePath.dirname(given), servicesOverride: given }
}
