import { mkdirSync, rmSync, utimesSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterEach, describe, expect, it, vi } from "vitest"
import { STAMP, stampOf } from "../../scripts/buildStamp.mjs"
import { buildIfStale, staleBecause } from "../../scripts/built.js"
import { needsBuild } from "../support/buildOnce.js"
import { tempDirs } from "../support/tree.js"

const tempDir = tempDirs("built")
const OUTPUTS = ["bin.js", "cli.cjs", "quick.cjs", "settled.cjs", "files.cjs"]
/** A build script that fails: a check that calls it throws, so a check that passes ran no build. */
const FAILING_BUILD = "process.exit(3)\n"

/** A checkout with a finished build of its sources (`types`: with declarations) and a build script that fails. */
const checkout = (types = false) => {
  const repo = tempDir("repo")
  mkdirSync(join(repo, "src/cli"), { recursive: true })
  mkdirSync(join(repo, "scripts"))
  mkdirSync(join(repo, "dist/types"), { recursive: true })
  for (const f of ["src/cli/main.ts", "src/index.ts", "package.json", "package-lock.json", "tsconfig.json"])
    writeFileSync(join(repo, f), `${f}\n`)
  writeFileSync(join(repo, "scripts/build.mjs"), FAILING_BUILD)
  for (const f of [...OUTPUTS, "types/index.d.ts"]) writeFileSync(join(repo, "dist", f), "x")
  writeFileSync(join(repo, STAMP), JSON.stringify(stampOf(repo, { types, sourcemap: false })))
  return repo
}

afterEach(() => vi.unstubAllEnvs())

describe("a build only when dist/ is not a finished build of the current inputs", () => {
  it("leaves a current dist/ alone: no build runs (the build script here fails)", () => {
    const repo = checkout()
    expect(staleBecause(repo)).toBeUndefined()
    expect(() => buildIfStale(repo)).not.toThrow()
    expect(staleBecause(checkout(true), true)).toBeUndefined()
  })

  it("goes by content, not by modification times: an edit dated before the build is stale", () => {
    const repo = checkout()
    writeFileSync(join(repo, "src/cli/main.ts"), "edited\n")
    utimesSync(join(repo, "src/cli/main.ts"), 1, 1)
    expect(staleBecause(repo)).toMatch(/changed since/)
  })

  it("is stale when a source file is removed", () => {
    const repo = checkout()
    rmSync(join(repo, "src/cli/main.ts"))
    expect(staleBecause(repo)).toMatch(/changed since/)
  })

  it("is stale when the dependencies, the TypeScript configuration or the build script change", () => {
    for (const f of ["package-lock.json", "tsconfig.json", "package.json"]) {
      const repo = checkout()
      writeFileSync(join(repo, f), "{}\n")
      expect([f, staleBecause(repo)]).toEqual([f, expect.stringMatching(/changed since/)])
    }
    const added = checkout()
    writeFileSync(join(added, "tsconfig.build.json"), "{}\n")
    expect(staleBecause(added)).toMatch(/changed since/)
    const script = checkout()
    writeFileSync(join(script, "scripts/build.mjs"), `${FAILING_BUILD}// edited\n`)
    expect(staleBecause(script)).toMatch(/changed since/)
  })

  it("is stale when the build's options differ: source maps asked for, declarations asked for", () => {
    const repo = checkout()
    vi.stubEnv("AGENTSYNC_SOURCEMAP", "1")
    expect(staleBecause(repo)).toBe("dist/ was built without source maps")
    vi.unstubAllEnvs()
    expect(staleBecause(repo, true)).toBe("dist/ was built without declarations")
    rmSync(join(repo, "dist/types"), { recursive: true })
    expect(staleBecause(repo, true)).toBe("dist/types/index.d.ts is missing")
  })

  it("is stale without the stamp or an output: a build that failed after writing its outputs counts as none", () => {
    const repo = checkout()
    rmSync(join(repo, STAMP))
    writeFileSync(
      join(repo, "scripts/build.mjs"),
      "import { writeFileSync } from 'node:fs'\nwriteFileSync('dist/bin.js', 'x')\nprocess.exit(1)\n"
    )
    expect(() => buildIfStale(repo)).toThrow(/the build failed \(exit 1\)/)
    expect(staleBecause(repo)).toMatch(/^dist\/\.build-stamp cannot be read/)
    const gone = checkout()
    rmSync(join(gone, "dist/files.cjs"))
    expect(staleBecause(gone)).toBe("dist/files.cjs is missing")
  })
})

describe("which test files the run builds for", () => {
  it("the end-to-end files and the CLI usage test; the package test with declarations; no other", () => {
    expect(needsBuild("test/e2e/files.test.ts")).toEqual({ build: true, types: false })
    expect(needsBuild("test/cli/usage.test.ts")).toEqual({ build: true, types: false })
    expect(needsBuild("test/e2e/package.test.ts")).toEqual({ build: true, types: true })
    expect(needsBuild("test/domain/hash.test.ts")).toEqual({ build: false, types: false })
  })
})
