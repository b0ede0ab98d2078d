import { mkdirSync, utimesSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { buildIfStale, staleBecause } from "../../scripts/built.js"
import { tempDirs } from "../support/tree.js"

const tempDir = tempDirs("built")
const OUTPUTS = ["bin.js", "cli.cjs", "quick.cjs", "settled.cjs", "files.cjs"]

/** A checkout whose sources were written at `sources` and whose dist/ at `built` (seconds since the epoch). */
const checkout = (sources: number, built: number) => {
  const repo = tempDir("repo")
  mkdirSync(join(repo, "src/cli"), { recursive: true })
  mkdirSync(join(repo, "scripts"))
  mkdirSync(join(repo, "dist"))
  for (const f of ["src/cli/main.ts", "scripts/build.mjs", "package.json"]) {
    writeFileSync(join(repo, f), "x")
    utimesSync(join(repo, f), sources, sources)
  }
  for (const d of ["src/cli", "src"]) utimesSync(join(repo, d), sources, sources)
  for (const f of OUTPUTS) {
    writeFileSync(join(repo, "dist", f), "x")
    utimesSync(join(repo, "dist", f), built, built)
  }
  return repo
}

describe("a build only when dist/ is missing or stale", () => {
  it("leaves a dist/ newer than every source alone: no build runs (there is no builder here to run)", () => {
    const repo = checkout(1_000, 2_000)
    expect(staleBecause(repo)).toBeUndefined()
    expect(() => buildIfStale(repo)).not.toThrow()
  })

  it("names what makes it stale: a missing output, a newer source, a source file removed, the build script", () => {
    expect(staleBecause(checkout(2_000, 1_000))).toBe("src is newer than dist/")
    const oneOld = checkout(1_000, 2_000)
    utimesSync(join(oneOld, "dist/files.cjs"), 500, 500)
    expect(staleBecause(oneOld)).toBe("src is newer than dist/")
    const missing = checkout(1_000, 2_000)
    writeFileSync(join(missing, "src/cli/gone.ts"), "x")
    expect(staleBecause(missing)).toBe("src is newer than dist/")
    const script = checkout(1_000, 2_000)
    utimesSync(join(script, "scripts/build.mjs"), 3_000, 3_000)
    expect(staleBecause(script)).toBe("scripts/build.mjs is newer than dist/")
    const noTypes = checkout(1_000, 2_000)
    expect(staleBecause(noTypes, true)).toBe("dist/types/index.d.ts is missing")
  })

  it("builds a stale one, and says so when the build fails", () => {
    const repo = checkout(2_000, 1_000)
    writeFileSync(join(repo, "scripts/build.mjs"), "process.exit(3)\n")
    expect(() => buildIfStale(repo)).toThrow(/the build failed/)
  })
})
