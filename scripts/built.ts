/** Whether dist/ holds a build of the current sources, and a build of them only when it does not. */
import { spawnSync } from "node:child_process"
import { existsSync, readdirSync, statSync } from "node:fs"
import { join } from "node:path"

/** What one build writes: each is rewritten by every build, so the oldest of them dates the build. */
const OUTPUTS = ["dist/bin.js", "dist/cli.cjs", "dist/quick.cjs", "dist/settled.cjs", "dist/files.cjs"]
/** What a build reads, besides the dependencies. */
const INPUTS = ["src", "scripts/build.mjs", "package.json", "tsconfig.build.json"]

const newestMtime = (path: string): number => {
  const st = statSync(path)
  if (!st.isDirectory()) return st.mtimeMs
  return readdirSync(path).reduce((m, name) => Math.max(m, newestMtime(join(path, name))), st.mtimeMs)
}

/** The reason dist/ in `repo` needs a build (`withTypes`: its declarations too), or undefined when it is current. */
export const staleBecause = (repo: string, withTypes = false): string | undefined => {
  const outputs = withTypes ? [...OUTPUTS, "dist/types/index.d.ts"] : OUTPUTS
  const missing = outputs.find((o) => !existsSync(join(repo, o)))
  if (missing !== undefined) return `${missing} is missing`
  const built = Math.min(...outputs.map((o) => statSync(join(repo, o)).mtimeMs))
  const newer = INPUTS.find((i) => existsSync(join(repo, i)) && newestMtime(join(repo, i)) > built)
  return newer === undefined ? undefined : `${newer} is newer than dist/`
}

/**
 * Builds dist/ in `repo` when it is missing or older than its sources, and leaves a current one alone: a build
 * removes dist/ first, which fails whatever runs the CLI from it meanwhile (tests, another bench).
 */
export const buildIfStale = (repo: string, withTypes = false): void => {
  if (staleBecause(repo, withTypes) === undefined) return
  const args = withTypes ? ["scripts/build.mjs"] : ["scripts/build.mjs", "--no-types"]
  const b = spawnSync(process.execPath, args, { cwd: repo, encoding: "utf8" })
  if (b.status !== 0) throw new Error(`the build failed:\n${b.stdout}${b.stderr}`)
}
