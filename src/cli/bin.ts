#!/usr/bin/env node
/**
 * The agentsync executable: runs the bundled CLI (dist/cli.cjs) through a V8 code cache, so that a run does
 * not parse the whole bundle again (about a third of a short command's time). The cache is a file per build
 * and Node version under $XDG_CACHE_HOME/agentsync (default ~/.cache/agentsync), written after the first run;
 * without it, or where it cannot be written, the CLI runs the same, only slower to start.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { homedir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { Script } from "node:vm"

/** The bundle's content hash, set by the build: V8 checks only a cache's length and version, not its source. */
declare const AGENTSYNC_BUNDLE_ID: string

const bundle = join(dirname(fileURLToPath(import.meta.url)), "cli.cjs")
const require = createRequire(bundle)

const cacheDir = join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "agentsync")
const cacheFile = join(cacheDir, `cli-${AGENTSYNC_BUNDLE_ID}-${process.version}-${process.arch}.v8`)
let cached: Buffer | undefined
try {
  cached = readFileSync(cacheFile)
} catch {
  // No cache yet: this run makes one.
}
const source = readFileSync(bundle, "utf8")
const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
  filename: bundle,
  // No importModuleDynamically: Node 20 drops it for a script made from a cache, so the bundle holds no import().
  ...(cached === undefined ? {} : { cachedData: cached })
})
if (cached === undefined || script.cachedDataRejected === true) {
  // Written at exit, so the functions this run compiled are in it too; atomically, as runs may race.
  process.once("exit", () => {
    try {
      mkdirSync(cacheDir, { recursive: true })
      const tmp = `${cacheFile}.${process.pid}.tmp`
      writeFileSync(tmp, script.createCachedData())
      renameSync(tmp, cacheFile)
      // Caches of other builds and Node versions pile up: keep the few used last (several installs may alternate).
      const others = readdirSync(cacheDir)
        .filter((f) => /^cli-.*\.v8$/.test(f) && join(cacheDir, f) !== cacheFile)
        .map((f) => ({ path: join(cacheDir, f), used: statSync(join(cacheDir, f)).mtimeMs }))
        .sort((a, b) => b.used - a.used)
      for (const old of others.slice(3)) rmSync(old.path, { force: true })
    } catch {
      // A cache that cannot be written (read-only home) only costs start-up time.
    }
  })
}
const module = { exports: {} }
script.runInThisContext()(module.exports, require, module, bundle, dirname(bundle))
