// The first open of the embedded database (its creation) as a user meets it: Ctrl-C ends it at once, a kill leaves no data directory the next run trips on.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { agentsync, ensureBuilt, start } from "../support/cli.js"

let root: string
let cache: string
// A cache of its own, empty: with the template of a cache shared with other files, a creation would copy it rather
// than run PGlite's initdb, which is what these tests stop.
let env: Record<string, string | undefined>
const state = () => join(root, ".agentsync")
const entries = () => (existsSync(state()) ? readdirSync(state()).sort() : [])
// The folder a creation makes the database in (not the lock's own files, which come first).
const creating = () => entries().includes("pgdata.init")

/** Resolves once `ready()` holds (polled every 10 ms), or fails after `limitMs`. */
const waitFor = (ready: () => boolean, limitMs: number) =>
  new Promise<void>((resolve, reject) => {
    const deadline = Date.now() + limitMs
    const poll = setInterval(() => {
      if (ready()) {
        clearInterval(poll)
        resolve()
      } else if (Date.now() > deadline) {
        clearInterval(poll)
        reject(new Error(`not seen within ${limitMs} ms; .agentsync holds ${entries().join(", ")}`))
      }
    }, 10)
  })

beforeAll(async () => {
  ensureBuilt()
  root = mkdtempSync(join(tmpdir(), "agentsync-create-"))
  cache = mkdtempSync(join(tmpdir(), "agentsync-create-cache-"))
  env = { DATABASE_URL: undefined, XDG_CACHE_HOME: cache }
  const init = await agentsync(["init"], { cwd: root, env })
  expect(init.code).toBe(0)
}, 300_000)

afterAll(() => {
  rmSync(root, { recursive: true, force: true })
  rmSync(cache, { recursive: true, force: true })
})

/** A data directory's system identifier, which initdb draws anew for each database it makes. */
const identifierOf = (dataDir: string) => readFileSync(join(dataDir, "global", "pg_control")).readBigUInt64LE(0)

describe("the embedded database's creation (no DATABASE_URL)", () => {
  it("Ctrl-C while it is created ends the run at once with 130, and leaves neither data, folder nor lock", async () => {
    const run = start(["local", "diff"], { cwd: root, env, limitMs: 170_000 })
    await waitFor(creating, 120_000)
    const signalled = Date.now()
    run.child.kill("SIGINT")
    const r = await run.done
    const tookMs = Date.now() - signalled
    // Before, the run went on until PGlite had finished creating it: 20 to 35 s on a loaded 2-core machine.
    expect(tookMs).toBeLessThan(5000)
    expect(r.code).toBe(130)
    expect(r.stderr).toContain("interrupted by SIGINT")
    expect(entries()).toEqual([])
  }, 180_000)

  it("a run killed while creating it leaves no data directory, and the next run creates it whole", async () => {
    const run = start(["local", "diff"], { cwd: root, env, limitMs: 170_000 })
    await waitFor(creating, 120_000)
    run.child.kill("SIGKILL")
    expect((await run.done).signal).toBe("SIGKILL")
    // What a killed creation leaves is its folder (and its lock), never a data directory.
    expect(entries()).not.toContain("pgdata")
    expect(entries()).toContain("pgdata.init")

    const next = await agentsync(["--json", "local", "diff"], { cwd: root, env })
    expect(next.stderr).toBe("")
    expect(next.code).toBe(0)
    expect(entries()).toEqual(["pgdata"])
    expect(existsSync(join(state(), "pgdata", "PG_VERSION"))).toBe(true)
  }, 300_000)

  it("that creation kept its fresh database as the cache's template, and the next creation is a copy of it", async () => {
    const [key, ...others] = readdirSync(join(cache, "agentsync", "pgdata-templates"))
    expect(others).toEqual([])
    const template = identifierOf(join(cache, "agentsync", "pgdata-templates", key ?? "", "data"))
    expect(identifierOf(join(state(), "pgdata"))).toBe(template)
    rmSync(join(state(), "pgdata"), { recursive: true })
    const next = await agentsync(["--json", "local", "diff"], { cwd: root, env })
    expect(next.stderr).toBe("")
    expect(next.code).toBe(0)
    expect(entries()).toEqual(["pgdata"])
    expect(identifierOf(join(state(), "pgdata"))).toBe(template)
  }, 300_000)
})
