// What a person sees on a terminal and a script sees in a pipe, through the built CLI on the real PostgreSQL:
// progress and colour on a pseudo-terminal (util-linux `script`), nothing of either in a pipe or with --json.
import { spawnSync } from "node:child_process"
import { cpSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { BIN, cleanEnv, ensureBuilt, REPO } from "../support/cli.js"
import { freshDatabase } from "../support/pg.js"

let dir: string
let env: Record<string, string>

beforeAll(async () => {
  ensureBuilt()
  dir = mkdtempSync(join(tmpdir(), "agentsync-terminal-"))
  cpSync(join(REPO, "examples/project"), dir, { recursive: true, filter: (src) => !src.includes(".agentsync") })
  env = cleanEnv({ DATABASE_URL: await freshDatabase("terminal"), TERM: "xterm", NO_COLOR: undefined })
}, 120_000)
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const ESC = "\x1b"

/** `agentsync ARGS` in a pipe: stdout and stderr apart. */
const piped = (args: ReadonlyArray<string>) => {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: dir, env, encoding: "utf8", timeout: 60_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** `agentsync ARGS` on a pseudo-terminal: the bytes the terminal received (stdout and stderr both). */
const onTerminal = (args: ReadonlyArray<string>) => {
  const command = [process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" ")
  const r = spawnSync("script", ["-q", "-e", "-c", command, "/dev/null"], {
    cwd: dir,
    env: { ...env, COLUMNS: "100" },
    encoding: "utf8",
    timeout: 60_000
  })
  return { code: r.status, output: r.stdout }
}

describe("progress, colour and pipes (built CLI)", () => {
  it("colour follows --color and the terminal: none in a pipe or with --json, on a terminal and with always", () => {
    // Before the first sync every item is on disk only: `+` lines, added, in green.
    const pipe = piped(["local", "diff"])
    expect(pipe.code).toBe(0)
    expect(pipe.stdout).toMatch(/^\+ agents /m)
    expect(pipe.stdout + pipe.stderr).not.toContain(ESC)
    const always = piped(["local", "diff", "--color", "always"])
    expect(always.stdout).toContain(`${ESC}[32m+ agents `)
    expect(piped(["--json", "local", "diff", "--color", "always"]).stdout).not.toContain(ESC)
    const tty = onTerminal(["local", "diff"])
    expect(tty.output).toContain(`${ESC}[32m+ agents `)
    // The error prefix, on stderr, under the same decision.
    expect(piped(["local", "dif"]).stderr).toMatch(/^error: unknown command "dif"/)
    expect(piped(["local", "dif", "--color", "always"]).stderr).toContain(`${ESC}[1m${ESC}[31merror:${ESC}[0m`)
  })

  it("a sync draws its steps on a terminal, ends each with a summary and the run with its time; a pipe gets none", () => {
    const tty = onTerminal(["local", "sync", "--to-db"])
    expect(tty.code).toBe(0)
    // Each step is a line redrawn in place (carriage return, erase line) and ended by its summary.
    expect(tty.output).toMatch(new RegExp(`\r${ESC}\\[Kwriting agents: 5 items in \\d+\\.\\d s\r?\n`))
    expect(tty.output).toMatch(new RegExp(`\r${ESC}\\[Kwriting content: \\d+ items in \\d+\\.\\d s`))
    expect(tty.output).toMatch(/^done in \d+(\.\d)? s\r?$/m)
    const again = piped(["local", "sync", "--to-db"])
    expect(again.code).toBe(0)
    expect(again.stderr).not.toMatch(/writing|done in|\r/)
    const json = onTerminal(["--json", "local", "sync", "--to-db"]).output
    expect(json).not.toMatch(/writing|done in/)
    expect(json).not.toContain(ESC)
  })
})
