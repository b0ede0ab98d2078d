import * as fs from "node:fs/promises"
import * as nodePath from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { agentsync, ensureBuilt } from "../support/cli.js"
import { tempDirs } from "../support/tree.js"

beforeAll(() => ensureBuilt())
const tempDir = tempDirs("usage")

/**
 * Usage mistakes as the built executable says them, those @effect/cli finds while it parses (a missing or extra
 * argument, a value of the wrong type) as those found before (argv.ts, see test/e2e/cli.test.ts): one error line
 * as every error has, where help is, and exit 2.
 */
const mistakes: ReadonlyArray<readonly [ReadonlyArray<string>, RegExp, string]> = [
  [["files", "diff", "extra"], /^error: received unknown argument: 'extra'$/, "agentsync files diff"],
  [["tenant", "create"], /^error: missing argument <NAME>$/, "agentsync tenant create"],
  [["skill", "source", "remove"], /^error: missing argument <NAME>$/, "agentsync skill source remove"],
  [["deploy", "status", "abc"], /^error: invalid value "abc": not an integer$/, "agentsync deploy status"],
  [["deploy", "rollback", "1.5"], /^error: invalid value "1\.5": not an integer$/, "agentsync deploy rollback"],
  // A number where a whole one is wanted: past argv's check of a number, @effect/cli's own, worded the same.
  [["files", "log", "--limit", "1.5"], /^error: invalid value "1\.5": not an integer$/, "agentsync files log"],
  [["files", "log", "--limit", "abc"], /^error: invalid value "abc" for --limit: not a number$/, "agentsync files log"],
  [["skill", "sync", "--prefer", "nope"], /^error: invalid value "nope" for --prefer$/, "agentsync skill sync"]
]

describe("usage errors", () => {
  it("each is one `error:` line on stderr and where help is, nothing on stdout, exit 2", async () => {
    const runs = await Promise.all(mistakes.map(([args]) => agentsync(args)))
    runs.forEach((r, i) => {
      const [args, first, path] = mistakes[i]!
      const lines = r.stderr.trimEnd().split("\n")
      expect({ args, code: r.code, stdout: r.stdout, first: lines[0] }).toEqual({
        args,
        code: 2,
        stdout: "",
        first: expect.stringMatching(first)
      })
      expect(lines.at(-1), args.join(" ")).toBe(`Run '${path} --help' for usage.`)
    })
  })

  it("with --json also as the UsageError document on stdout, the same message", async () => {
    const r = await agentsync(["--json", "tenant", "create"])
    expect(r.code).toBe(2)
    expect(JSON.parse(r.stdout)).toEqual({ error: { tag: "UsageError", message: "missing argument <NAME>" } })
    expect(r.stderr).toBe("error: missing argument <NAME>\nRun 'agentsync tenant create --help' for usage.\n")
  })

  it("a malformed token id or expiry is one too, said before any database is opened: nothing is made", async () => {
    const cwd = tempDir("token")
    const runs = await Promise.all([
      agentsync(["token", "revoke", "not-an-id"], { cwd }),
      agentsync(["token", "create", "t", "--expires-in", "soon"], { cwd })
    ])
    expect(runs.map(({ code, stdout, stderr }) => ({ code, stdout, stderr }))).toEqual([
      { code: 2, stdout: "", stderr: "error: TOKEN_ID: a token id is 16 hex digits (see `agentsync token list`)\n" },
      { code: 2, stdout: "", stderr: 'error: --expires-in: not a duration: "soon" (e.g. "30 days")\n' }
    ])
    expect(await fs.readdir(cwd)).toEqual([])
  })
})

describe("a configuration error on a fresh build", () => {
  it("is said the same by the run that makes the code cache and by the one that uses it", async () => {
    const project = tempDir("project")
    await fs.mkdir(nodePath.join(project, "services", "agents"), { recursive: true })
    const env = { XDG_CACHE_HOME: tempDir("cache") }
    const run = () =>
      agentsync(["files", "push", "--dry-run"], { cwd: project, env }).then(({ code, stdout, stderr }) => ({
        code,
        stdout,
        stderr
      }))
    const first = await run()
    const second = await run()
    const said = {
      code: 2,
      stdout: "",
      stderr: "error: missing configuration AGENTSYNC_TOKEN: set it to a token from `agentsync tenant create`\n"
    }
    expect(first).toEqual(said)
    expect(second).toEqual(said)
  })
})
