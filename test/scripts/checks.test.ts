import { spawn } from "node:child_process"
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { REPO } from "../support/cli.js"
import { tempDirs } from "../support/tree.js"

const tempDir = tempDirs("checks")

/** A script that writes its pid to `name`.pid and then waits a minute. */
const waiting = (name: string) =>
  `node -e "require('fs').writeFileSync('${name}.pid', String(process.pid)); setTimeout(() => {}, 60000)"`

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const until = async (done: () => boolean) => {
  for (let i = 0; i < 200 && !done(); i++) await new Promise((r) => setTimeout(r, 50))
  expect(done()).toBe(true)
}

describe("npm test's checks", () => {
  it("pass a termination on to the scripts running and start no further one", async () => {
    const dir = tempDir("pkg")
    const scripts = { typecheck: waiting("typecheck"), lint: waiting("lint"), build: waiting("build") }
    writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "checks", scripts }))
    const checks = spawn(process.execPath, [join(REPO, "scripts/checks.mjs")], { cwd: dir, stdio: "ignore" })
    const exited = new Promise<number | null>((r) => checks.on("exit", (code) => r(code)))
    await until(() => existsSync(join(dir, "typecheck.pid")) && existsSync(join(dir, "lint.pid")))
    const pids = ["typecheck", "lint"].map((s) => Number(readFileSync(join(dir, `${s}.pid`), "utf8")))
    checks.kill("SIGTERM")
    expect(await exited).toBe(143)
    await until(() => pids.every((p) => !alive(p)))
    expect(existsSync(join(dir, "build.pid"))).toBe(false)
  }, 30_000)
})
