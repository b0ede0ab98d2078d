// What a build of dist/ was made from: its options and a hash of what it reads, written by scripts/build.mjs as its
// last step (dist/.build-stamp) and compared by scripts/built.ts, so that a build counts as current only when it
// finished and its inputs are as they are now, whatever their modification times say.
import { createHash } from "node:crypto"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"

export const STAMP = "dist/.build-stamp"

/** Every file under `dir` in `repo`, as paths relative to `repo`, sorted. */
const filesUnder = (repo, dir) =>
  readdirSync(join(repo, dir), { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? filesUnder(repo, `${dir}/${e.name}`) : [`${dir}/${e.name}`]))
    .sort()

/**
 * A SHA-256 over what a build reads: src/, the build script, package.json, package-lock.json (the dependencies
 * installed) and the TypeScript configurations; each file's path and content, so a removed or renamed file counts.
 */
export const inputsHash = (repo) => {
  const top = readdirSync(repo).filter((f) => /^tsconfig.*\.json$/.test(f))
  const files = [
    ...filesUnder(repo, "src"),
    ...["scripts/build.mjs", "scripts/buildStamp.mjs", "package.json", "package-lock.json", ...top.sort()]
  ].filter((f) => existsSync(join(repo, f)))
  const hash = createHash("sha256")
  for (const f of files)
    hash
      .update(`${f}\0`)
      .update(readFileSync(join(repo, f)))
      .update("\0")
  return hash.digest("hex")
}

/** The stamp of a build with these options of the inputs now in `repo`. */
export const stampOf = (repo, { types, sourcemap }) => ({ types, sourcemap, inputs: inputsHash(repo) })
