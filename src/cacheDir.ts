/** Where agentsync keeps its per-user caches: `agentsync` in `$XDG_CACHE_HOME` when absolute, else in `~/.cache`. */
import { homedir } from "node:os"
import { isAbsolute, join } from "node:path"

// XDG: a relative XDG_CACHE_HOME is invalid and ignored.
export const agentsyncCacheDir = (env: NodeJS.ProcessEnv = process.env): string => {
  const xdg = env.XDG_CACHE_HOME
  return join(xdg !== undefined && isAbsolute(xdg) ? xdg : join(homedir(), ".cache"), "agentsync")
}
