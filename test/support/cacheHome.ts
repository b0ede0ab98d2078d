/**
 * Vitest's global set-up: one cache folder for the whole run (`XDG_CACHE_HOME`, which every test file and the CLI it
 * runs inherit), removed at the end, so that tests share the embedded database's template and the launcher's cache
 * within a run and never write into the user's own cache.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

export default () => {
  const before = process.env.XDG_CACHE_HOME
  const cache = mkdtempSync(join(tmpdir(), "agentsync-test-cache-"))
  process.env.XDG_CACHE_HOME = cache
  return () => {
    if (before === undefined) delete process.env.XDG_CACHE_HOME
    else process.env.XDG_CACHE_HOME = before
    rmSync(cache, { recursive: true, force: true })
  }
}
