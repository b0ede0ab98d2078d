/** Whether dist/ holds a finished build of the current sources, and a build of them only when it does not. */
import { spawnSync } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { type BuildStamp, STAMP, stampOf } from "./buildStamp.mjs"

/** What one build writes; the stamp, its last step, says the build finished. */
const OUTPUTS = ["dist/bin.js", "dist/cli.cjs", "dist/quick.cjs", "dist/settled.cjs", "dist/files.cjs"]

/** Whether a build would write source maps here: what `scripts/build.mjs` reads, without `--sourcemap`. */
const sourcemapWanted = () => process.env.AGENTSYNC_SOURCEMAP === "1"

/** The stamp of the build in `repo`, or why there is none to trust (no build, or one that did not finish). */
const readStamp = (repo: string): Partial<BuildStamp> | string => {
  try {
    return JSON.parse(readFileSync(join(repo, STAMP), "utf8")) as Partial<BuildStamp>
  } catch (e) {
    return `${STAMP} cannot be read (no build, or one that did not finish): ${e instanceof Error ? e.message : String(e)}`
  }
}

/**
 * The reason dist/ in `repo` needs a build (`withTypes`: its declarations too), or undefined when it is current: its
 * stamp (written last by a build that finished) names these options and the hash of the inputs as they are now.
 */
export const staleBecause = (repo: string, withTypes = false): string | undefined => {
  const stamp = readStamp(repo)
  if (typeof stamp === "string") return stamp
  const outputs = withTypes ? [...OUTPUTS, "dist/types/index.d.ts"] : OUTPUTS
  const missing = outputs.find((o) => !existsSync(join(repo, o)))
  if (missing !== undefined) return `${missing} is missing`
  if (withTypes && stamp.types !== true) return "dist/ was built without declarations"
  if (stamp.sourcemap !== sourcemapWanted())
    return `dist/ was built ${stamp.sourcemap === true ? "with" : "without"} source maps`
  const now = stampOf(repo, { types: withTypes, sourcemap: sourcemapWanted() })
  return stamp.inputs === now.inputs ? undefined : "the sources, dependencies or build configuration changed since"
}

/**
 * Builds dist/ in `repo` unless it is current, and leaves a current one alone: a build removes dist/ first, which
 * fails whatever runs the CLI from it meanwhile (tests, another bench). Not safe to call from two processes at
 * once: the tests build once, before any file runs (`test/support/buildOnce.ts`).
 */
export const buildIfStale = (repo: string, withTypes = false): void => {
  if (staleBecause(repo, withTypes) === undefined) return
  const args = withTypes ? ["scripts/build.mjs"] : ["scripts/build.mjs", "--no-types"]
  const b = spawnSync(process.execPath, args, { cwd: repo, encoding: "utf8" })
  if (b.status !== 0) throw new Error(`the build failed (${b.signal ?? `exit ${b.status}`}):\n${b.stdout}${b.stderr}`)
}
