import { readFileSync } from "node:fs"
import { describe, expect, it } from "@effect/vitest"
import { isShared, LEAKS, testFiles } from "./support/sharedFiles.js"

describe("test files sharing their workers", () => {
  it("none leaves state behind for the next file in its worker", () => {
    const shared = testFiles(".").filter(isShared)
    expect(shared.length).toBeGreaterThan(100)
    // This file's own examples below are text, not calls.
    const found = shared
      .filter((file) => file !== "test/sharedWorkers.test.ts")
      .flatMap((file) => {
        const text = readFileSync(file, "utf8")
        return LEAKS.filter(([re]) => re.test(text)).map(([, why]) => `${file}: ${why}`)
      })
    expect(found).toEqual([])
  })

  it("the rule: folders shared whole, named files kept apart, e2e and subfolders apart", () => {
    expect(isShared("test/harness.test.ts")).toBe(true)
    expect(isShared("test/domain/skills/layout.test.ts")).toBe(true)
    expect(isShared("test/cli/localTable.test.ts")).toBe(true)
    expect(isShared("test/cli/output.test.ts")).toBe(false)
    expect(isShared("test/programs/skillSyncLayouts.test.ts")).toBe(false)
    expect(isShared("test/programs/jobs/runner.test.ts")).toBe(false)
    expect(isShared("test/e2e/files.test.ts")).toBe(false)
  })

  it("each leak pattern catches what it names", () => {
    const caught = (text: string) => LEAKS.some(([re]) => re.test(text))
    for (const text of [
      'vi.mock("../x.js")',
      "vi.spyOn(o, 'f')",
      'process.env["HOME"] = "/tmp"',
      "process.env.X = '1'",
      "delete process.env.X",
      "isolateGit(root)",
      "process.umask(0o077)",
      "process.chdir(dir)",
      'process.on("exit", f)',
      "process.exitCode = 1",
      "globalThis.x = 1"
    ])
      expect(caught(text), text).toBe(true)
    for (const text of ['process.env["HOME"] === "/"', "process.umask()", "const env = { ...process.env, A: 1 }"])
      expect(caught(text), text).toBe(false)
  })
})
