// An interrupt at a push's start, after the settled check has left the run to the program and while the launcher
// loads the files bundle: reported as any interrupt of the CLI (one line, 128 + the signal), with nothing left in
// `.agentsync/`. The signal is a real one, sent by the process to itself (a preloaded hook) as the launcher opens or
// reads dist/files.cjs, so that it lands in that window every time.
import { mkdirSync, readdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { ensureBuilt, start } from "../support/cli.js"
import { tempDirs } from "../support/tree.js"

const tempDir = tempDirs("e2e-start-signals")

const HOOK = `
const fs = require("node:fs")
let sent = false
const at = (file) => {
  if (!sent && typeof file === "string" && file.endsWith("files.cjs")) {
    sent = true
    fs.writeSync(2, "hook: signal sent\\n")
    process.kill(process.pid, process.env.SIGNAL_AT_LOAD)
  }
}
// Node 20's launcher opens the bundle to read it into its buffer; Node 22's require reads it whole.
for (const name of ["readFileSync", "openSync"]) {
  const original = fs[name]
  fs[name] = function (file, ...rest) {
    at(file)
    return original.call(this, file, ...rest)
  }
}
require("node:module").syncBuiltinESMExports()
`

let hook: string
beforeAll(() => {
  ensureBuilt()
  hook = join(tempDir("hook"), "hook.cjs")
  writeFileSync(hook, HOOK)
}, 300_000)

describe("a signal while the launcher loads the files bundle", () => {
  for (const [signal, code] of [
    ["SIGINT", 130],
    ["SIGTERM", 143]
  ] as const) {
    it(`${signal} exits ${code} with the CLI's line on stderr, and leaves nothing in .agentsync`, async () => {
      const root = tempDir(`project-${signal}`)
      writeFileSync(join(root, "agentsync.yaml"), "services: services\n")
      mkdirSync(join(root, "services", "skills", "s"), { recursive: true })
      writeFileSync(join(root, "services", "skills", "s", "SKILL.md"), "# s\n")
      mkdirSync(join(root, ".agentsync"))
      const { done } = start(["files", "push"], {
        cwd: root,
        env: {
          // Nothing listens there: a run the signal did not stop fails (exit 1), it never succeeds.
          AGENTSYNC_DIRECT_URL: "http://127.0.0.1:9",
          AGENTSYNC_TOKEN: "t",
          XDG_CACHE_HOME: tempDir(`cache-${signal}`),
          NODE_OPTIONS: `--require ${hook}`,
          SIGNAL_AT_LOAD: signal
        },
        limitMs: 60_000
      })
      const res = await done
      expect(res.stderr).toContain("hook: signal sent")
      expect([res.code, res.signal], res.stderr).toEqual([code, null])
      // The program's line, not the start path's: once the program runs, the start path's handlers are gone (else
      // they answer first and exit at once, before the program's cleanup, for any later signal too).
      const last = res.stderr.trim().split("\n").pop() ?? ""
      expect(last).toMatch(new RegExp(`^interrupted by ${signal}: `))
      expect(last).not.toMatch(/reading the local tree and the remote head; nothing changed yet$/)
      expect(res.stdout).toBe("")
      // No lock, temp file or staging folder: only the clock file a listing may stamp.
      expect(readdirSync(join(root, ".agentsync")).filter((n) => n !== "clock")).toEqual([])
    })
  }
})
