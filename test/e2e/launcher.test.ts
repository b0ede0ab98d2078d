import { isAscii } from "node:buffer"
import { execFile } from "node:child_process"
import * as fs from "node:fs/promises"
import * as nodeModule from "node:module"
import { type AddressInfo, createServer, type Socket } from "node:net"
import * as nodePath from "node:path"
import { describe, expect, it } from "vitest"
import { agentsync, BIN, cleanEnv, startServe } from "../support/cli.js"
import { freshDatabase } from "../support/pg.js"
import { tempDirs } from "../support/tree.js"

const tempDir = tempDirs("cache")
const cacheFiles = async (dir: string) =>
  (await fs.readdir(nodePath.join(dir, "agentsync")).catch(() => [] as Array<string>)).filter((f) => f.endsWith(".v8"))

/** Node 22.1 and later bring their own compile cache, which the executable uses instead of its V8 cache. */
const nodeCompileCache = typeof (nodeModule as { enableCompileCache?: unknown }).enableCompileCache === "function"

describe.runIf(nodeCompileCache)("the agentsync executable on Node's compile cache", () => {
  it("enables Node's compile cache under the cache home: the first run fills it, and no V8 cache of its own is written", async () => {
    const cache = tempDir("compile")
    const env = { XDG_CACHE_HOME: cache }
    const first = await agentsync(["--version"], { env })
    expect([first.code, first.stdout.trim(), first.stderr]).toEqual([0, "0.1.0", ""])
    const made = await fs.readdir(nodePath.join(cache, "agentsync", "compile-cache"), { recursive: true })
    expect(made.length).toBeGreaterThan(0)
    expect(await cacheFiles(cache)).toEqual([])
    // Where no cache can be written (here the cache home is a file), the CLI still runs, and says nothing of it.
    const notADir = nodePath.join(cache, "a-file")
    await fs.writeFile(notADir, "")
    const readOnly = await agentsync(["--version"], { env: { XDG_CACHE_HOME: notADir } })
    expect([readOnly.code, readOnly.stdout.trim(), readOnly.stderr]).toEqual([0, "0.1.0", ""])
  })
})

describe("the agentsync executable, installed twice", () => {
  it("names its own install in stack traces when another install of the same build made the cache first", async () => {
    const cache = tempDir("two")
    const installs = ["one", "two"].map((name) => nodePath.join(tempDir(name), "dist"))
    for (const dist of installs) {
      await fs.mkdir(dist, { recursive: true })
      for (const f of ["bin.js", "cli.cjs"])
        await fs.copyFile(nodePath.join(nodePath.dirname(BIN), f), nodePath.join(dist, f))
    }
    // A stack trace from inside the bundle: the first write to stdout (`--version` prints) records one.
    const probe = nodePath.join(cache, "probe.cjs")
    await fs.writeFile(
      probe,
      "const w = process.stdout.write.bind(process.stdout); let once = false;\n" +
        "process.stdout.write = (c, ...r) => { if (!once) { once = true; process.stderr.write(new Error('probe').stack + '\\n') } return w(c, ...r) }\n"
    )
    const runIn = (dist: string, args: ReadonlyArray<string>) =>
      new Promise<string>((resolve, reject) =>
        execFile(
          process.execPath,
          [...args, nodePath.join(dist, "bin.js"), "--version"],
          { env: cleanEnv({ XDG_CACHE_HOME: cache }) },
          (error, _stdout, stderr) => (error === null ? resolve(stderr) : reject(error))
        )
      )
    const [one, two] = installs as [string, string]
    await runIn(one, [])
    await runIn(one, [])
    const trace = await runIn(two, ["--require", probe])
    expect(trace).toContain(nodePath.join(two, "cli.cjs"))
    expect(trace).not.toContain(one)
  })
})

describe("the bundles' text", () => {
  it("the files bundle is ASCII (taken as Latin-1, a copy), and a bundle that is not is read as UTF-8", async () => {
    const dist = nodePath.dirname(BIN)
    expect(isAscii(await fs.readFile(nodePath.join(dist, "files.cjs")))).toBe(true)
    // An install whose CLI bundle holds a non-ASCII character in a string (and is its own build): its text as is.
    const copy = nodePath.join(tempDir("utf8"), "dist")
    await fs.mkdir(copy, { recursive: true })
    await fs.copyFile(BIN, nodePath.join(copy, "bin.js"))
    const cli = await fs.readFile(nodePath.join(dist, "cli.cjs"), "utf8")
    // The bundle is minified: `var VERSION="0.1.0",…`.
    const version = /\bVERSION ?= ?"0\.1\.0"/
    expect(cli).toMatch(version)
    await fs.writeFile(nodePath.join(copy, "cli.cjs"), cli.replace(version, 'VERSION="0.1.0-\u00e9\u2014"'))
    const env = cleanEnv({ XDG_CACHE_HOME: tempDir("utf8-cache") })
    for (const _ of [1, 2]) {
      const out = await new Promise<string>((resolve, reject) =>
        execFile(process.execPath, [nodePath.join(copy, "bin.js"), "--version"], { env }, (error, stdout) =>
          error === null ? resolve(stdout) : reject(error)
        )
      )
      expect(out.trim()).toBe("0.1.0-\u00e9\u2014")
    }
  })
})

describe("the bundles as the build records them", () => {
  it("names each bundle's length and whether it is ASCII as they are, which the launcher takes without a pass", async () => {
    const dist = nodePath.dirname(BIN)
    const bin = await fs.readFile(BIN, "utf8")
    const recorded = /AGENTSYNC_BUNDLE_IDS_default = (\{.*\});/.exec(bin)?.[1]
    expect(recorded).toBeDefined()
    const ids = new Function(`return ${recorded}`)() as Record<string, { id: string; bytes: number; ascii: boolean }>
    for (const name of ["cli", "files"]) {
      const bytes = await fs.readFile(nodePath.join(dist, `${name}.cjs`))
      expect([name, ids[name]?.bytes, ids[name]?.ascii]).toEqual([name, bytes.length, isAscii(bytes)])
    }
    // The files bundle is ASCII, so a push decodes it as Latin-1 without a pass over its bytes.
    expect(ids.files?.ascii).toBe(true)
  })

  it("hold Effect's stack probe as its answer on this Node, so that loading Effect formats no stack trace", async () => {
    const utils = nodePath.join(
      nodePath.dirname(nodeModule.createRequire(import.meta.url).resolve("effect")),
      "..",
      "esm",
      "Utils.js"
    )
    const source = await fs.readFile(utils, "utf8")
    const probe = /const isNotOptimizedAway = \/\*#__PURE__\*\/(.*);/.exec(source)?.[1]
    expect(probe).toContain("new Error().stack")
    // The probe as Effect runs it as it loads (its `standard` beside it), in a fresh process: the answer the build
    // writes in its place.
    const standard = /const standard = (\{[\s\S]*?\n\});/.exec(source)?.[1]
    expect(standard).toBeDefined()
    const answer = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ["-p", `const standard = ${standard}; ${probe}`], (error, stdout) =>
        error === null ? resolve(stdout.trim()) : reject(error)
      )
    )
    expect(answer).toBe("true")
    for (const name of ["files.cjs", "cli.cjs"]) {
      const text = await fs.readFile(nodePath.join(nodePath.dirname(BIN), name), "latin1")
      expect([name, text.includes("new Error().stack)?.includes(")]).toEqual([name, false])
      expect([name, /isNotOptimizedAway=!0\b/.test(text)]).toEqual([name, true])
    }
  })
})

describe("what the files bundle leaves out", () => {
  it("holds none of fast-check, pure-rand, pg or the SQL client (each known by a string of its own code)", async () => {
    const dist = nodePath.dirname(BIN)
    const read = (f: string) => fs.readFile(f, "latin1")
    const [files, cli] = [await read(nodePath.join(dist, "files.cjs")), await read(nodePath.join(dist, "cli.cjs"))]
    const lib = (name: string) => nodePath.dirname(nodeModule.createRequire(import.meta.url).resolve(name))
    // An error of fast-check's runner and a generator of pure-rand, read from the packages (no command runs them, and
    // dist/cli.cjs no longer holds them either); pg's optional addon and the SQL clients' tag keys, which it holds.
    const own = {
      "Property failed": nodePath.join(lib("fast-check"), "esm/check/runner/utils/RunDetailsFormatter.js"),
      xoroshiro128plus: nodePath.join(lib("pure-rand"), "esm/pure-rand-default.js")
    }
    for (const [mark, file] of Object.entries(own)) expect(await read(file)).toContain(mark)
    const inCli = ["pg-native", "@effect/sql/SqlClient", "@effect/sql-pg/PgClient"]
    expect(inCli.filter((m) => !cli.includes(m))).toEqual([])
    expect([...Object.keys(own), ...inCli].filter((m) => files.includes(m))).toEqual([])
  })

  it("the CLI bundles hold only the Effect modules their commands import, not every module Effect's index re-exports", async () => {
    const dist = nodePath.dirname(BIN)
    const read = (f: string) => fs.readFile(f, "latin1")
    const effect = nodePath.join(
      nodePath.dirname(nodeModule.createRequire(import.meta.url).resolve("effect")),
      "..",
      "esm"
    )
    // The test clock's warning and the transactional PubSub's tag: modules only Effect's index reaches.
    const marks = { "TestClock.js": "is using time, but is not advancing", "internal/stm/tPubSub.js": "TPubSubImpl" }
    for (const [module, mark] of Object.entries(marks))
      expect(await read(nodePath.join(effect, module))).toContain(mark)
    for (const name of ["files.cjs", "cli.cjs"]) {
      const text = await read(nodePath.join(dist, name))
      expect(Object.values(marks).filter((m) => text.includes(m))).toEqual([])
    }
  })

  it("makes one namespace per Node built-in: no importer of one builds its own copy", async () => {
    const dist = nodePath.dirname(BIN)
    for (const name of ["files.cjs", "cli.cjs"]) {
      const text = await fs.readFile(nodePath.join(dist, name), "latin1")
      const copies = [...text.matchAll(/__toESM\(require\("([^"]+)"\),1\)/g)].flatMap((m) =>
        m[1] !== undefined && nodeModule.isBuiltin(m[1]) ? [m[1]] : []
      )
      expect(copies).toEqual([])
      // Each importer asks the one helper, which builds a module's namespace once.
      expect(text.match(/__agentsyncBuiltin\("node:fs"\)/g)?.length ?? 0).toBeGreaterThan(1)
    }
  })
})

describe.runIf(!nodeCompileCache)("the agentsync executable on Node 20's V8 cache", () => {
  it("keeps a code cache per build: made by the first run, refreshed once per new command, replaced when damaged", async () => {
    const cache = tempDir("home")
    // Every run here is short, however loaded the machine: none writes the cache early as a long run would.
    const env = { XDG_CACHE_HOME: cache, AGENTSYNC_CACHE_EARLY_MS: "600000" }
    expect(await cacheFiles(cache)).toEqual([])
    const first = await agentsync(["--version"], { env })
    expect([first.code, first.stdout.trim()]).toEqual([0, "0.1.0"])
    const [file] = await cacheFiles(cache)
    expect(file).toMatch(
      new RegExp(`^cli-[0-9a-f]{16}-[0-9a-f]{8}-${process.version.replace(/\./g, "\\.")}-${process.arch}\\.v8$`)
    )
    const path = nodePath.join(cache, "agentsync", file!)
    const covered = async () => JSON.parse(await fs.readFile(path.replace(/\.v8$/, ".json"), "utf8")) as Array<string>
    const stamp = async () => (await fs.stat(path)).mtimeMs
    expect(await covered()).toEqual([""])
    // The same command again: the cache V8 accepted is used as is.
    const made = await stamp()
    expect((await agentsync(["--version"], { env })).code).toBe(0)
    expect(await stamp()).toBe(made)
    // A command the cache has not seen adds its code, once.
    expect((await agentsync(["validate", "examples/project"], { env })).code).toBe(0)
    const grown = await stamp()
    expect(grown).not.toBe(made)
    expect(await covered()).toEqual(["", "validate"])
    expect((await agentsync(["validate", "examples/project"], { env })).code).toBe(0)
    expect(await stamp()).toBe(grown)
    // A damaged one is rejected by V8: the run is the same, and the cache is made anew.
    const size = (await fs.stat(path)).size
    await fs.writeFile(path, Buffer.alloc(size, 7))
    const third = await agentsync(["--version"], { env })
    expect([third.code, third.stdout.trim()]).toEqual([0, "0.1.0"])
    expect((await fs.readFile(path)).equals(Buffer.alloc(size, 7))).toBe(false)
    expect(await covered()).toEqual([""])
    // Caches of other builds are pruned down to the few used last.
    for (const i of [1, 2, 3, 4, 5]) await fs.writeFile(nodePath.join(cache, "agentsync", `cli-old${i}-v0-x.v8`), "x")
    await fs.rm(path)
    await agentsync(["--version"], { env })
    expect((await cacheFiles(cache)).length).toBe(4)
    // Where no cache can be written (here the cache home is a file), the CLI still runs, and says nothing of it.
    const notADir = nodePath.join(cache, "a-file")
    await fs.writeFile(notADir, "")
    const readOnly = await agentsync(["--version"], { env: { XDG_CACHE_HOME: notADir } })
    expect([readOnly.code, readOnly.stdout.trim(), readOnly.stderr]).toEqual([0, "0.1.0", ""])
  })

  /**
   * `files push|pull` in a project of its own, cache under `name`: no server listens at its address, so the settled
   * check leaves the run to the files bundle, whose command fails at once.
   */
  const filesProject = async (name: string) => {
    const cache = tempDir(name)
    const project = tempDir(`${name}-project`)
    await fs.mkdir(nodePath.join(project, "services", "agents"), { recursive: true })
    await fs.writeFile(nodePath.join(project, "agentsync.yaml"), "services: services\n")
    const env = {
      XDG_CACHE_HOME: cache,
      AGENTSYNC_CACHE_EARLY_MS: "600000",
      AGENTSYNC_TOKEN: "ast_0000000000000000_secret",
      AGENTSYNC_DIRECT_URL: "http://127.0.0.1:9",
      AGENTSYNC_RETRY_MAX: "0"
    }
    const run = (command: "push" | "pull", extra: Record<string, string> = {}) =>
      agentsync(["files", command], { cwd: project, env: { ...env, ...extra } })
    return { cache, run }
  }

  it("reads the files bundle's text and then its larger code cache through one buffer: the next run, another command, takes that cache and adds to it", async () => {
    const { cache, run } = await filesProject("files")
    const first = await run("push")
    expect([first.code, first.stderr]).toEqual([1, expect.stringMatching(/server unreachable/)])
    const [file] = await cacheFiles(cache)
    expect(file).toMatch(/^files-/)
    const path = nodePath.join(cache, "agentsync", file!)
    const covered = async () => JSON.parse(await fs.readFile(path.replace(/\.v8$/, ".json"), "utf8")) as Array<string>
    const made = await fs.stat(path)
    // The case the shared buffer is for: the cache read last, into the memory the text was read into, and past it.
    expect(made.size).toBeGreaterThan((await fs.stat(nodePath.join(nodePath.dirname(BIN), "files.cjs"))).size)
    // Another command, which compiles functions of the bundle the push did not, from the same cache.
    const second = await run("pull")
    expect([second.code, second.stderr]).toEqual([1, expect.stringMatching(/server unreachable/)])
    // A cache V8 accepted is added to (the pull's code beside the push's); one it rejected (bytes not the file's)
    // would be made anew for the pull alone.
    expect(await covered()).toEqual(["files push", "files pull"])
  })

  it("a cache of a size no cache has (damaged: 5 GiB) is read on its own, which fails: the run is the same, and writes a new cache", async () => {
    const cache = tempDir("huge")
    const env = { XDG_CACHE_HOME: cache, AGENTSYNC_CACHE_EARLY_MS: "600000" }
    expect((await agentsync(["--version"], { env })).code).toBe(0)
    const [file] = await cacheFiles(cache)
    const path = nodePath.join(cache, "agentsync", file!)
    const size = (await fs.stat(path)).size
    // Sparse: 5 GiB that take no room, past the largest buffer Node makes.
    await fs.truncate(path, 5 * 2 ** 30)
    const run = await agentsync(["--version"], { env })
    expect([run.code, run.stdout.trim(), run.stderr]).toEqual([0, "0.1.0", ""])
    expect((await fs.stat(path)).size).toBeLessThan(4 * size)
  })

  it("reads whole, the other way, a file whose size changed between its size taken and its read: the cache is taken as is", async () => {
    // A hook that makes fstat report one byte fewer or more for one file, as if it changed size since (the launcher
    // takes a file's size with fstat on the descriptor it reads; stat for the cache as well, since the buffer is
    // sized by it), and says when that file is read whole by path.
    const hook = nodePath.join(tempDir("size-hook"), "hook.cjs")
    await fs.writeFile(
      hook,
      `const fs = require("node:fs")
const target = process.env.SIZE_HOOK_PATH
const delta = Number(process.env.SIZE_HOOK_DELTA)
const opened = new Set()
const wrap = (name, f) => {
  const original = fs[name]
  fs[name] = function (...args) {
    return f(original.apply(this, args), ...args)
  }
}
wrap("openSync", (fd, file) => {
  if (file === target) opened.add(fd)
  else opened.delete(fd)
  return fd
})
wrap("closeSync", (r, fd) => {
  opened.delete(fd)
  return r
})
wrap("fstatSync", (stats, fd) => {
  if (opened.has(fd)) {
    stats.size += delta
    fs.writeSync(2, "hook: size off by " + delta + "\\n")
  }
  return stats
})
wrap("statSync", (stats, file) => {
  if (file === target && stats !== undefined) stats.size += delta
  return stats
})
wrap("readFileSync", (bytes, file) => {
  if (file === target) fs.writeSync(2, "hook: read whole\\n")
  return bytes
})
require("node:module").syncBuiltinESMExports()
`
    )
    const { cache, run } = await filesProject("resized")
    const first = await run("push")
    expect([first.code, first.stderr]).toEqual([1, expect.stringMatching(/server unreachable/)])
    const [file] = await cacheFiles(cache)
    const path = nodePath.join(cache, "agentsync", file!)
    const made = (await fs.stat(path)).mtimeMs
    for (const target of [nodePath.join(nodePath.dirname(BIN), "files.cjs"), path])
      for (const delta of [-1, 1]) {
        const r = await run("push", {
          NODE_OPTIONS: `--require ${hook}`,
          SIZE_HOOK_PATH: target,
          SIZE_HOOK_DELTA: String(delta)
        })
        const what = [nodePath.basename(target), delta]
        expect([what, r.code, r.stderr]).toEqual([
          what,
          1,
          `hook: size off by ${delta}\nhook: read whole\n${first.stderr}`
        ])
        // Read short or with a byte too many, the text would not be the build's (a syntax error, or a cache V8
        // rejects for another text) or the cache not V8's (rejected): a rejected cache is made anew at exit. V8
        // takes a cache with a byte too many, which is why the read whole is watched as well.
        expect([what, (await fs.stat(path)).mtimeMs]).toEqual([what, made])
      }
  })

  it("a long run (serve) writes the cache early, once, marked as partial", async () => {
    const cache = tempDir("long")
    // Long at 250 ms of CPU time, or 2.5 s of wall time idle: a serve of 2.6 s is long by one or the other.
    const env = {
      XDG_CACHE_HOME: cache,
      DATABASE_URL: await freshDatabase("launcher"),
      AGENTSYNC_CACHE_EARLY_MS: "250"
    }
    const serveFor = async (ms: number) => {
      const { child } = await startServe(env, cache)
      await new Promise((r) => setTimeout(r, ms))
      child.kill("SIGTERM")
      await new Promise((r) => child.once("exit", r))
    }
    await serveFor(2600)
    const [file] = await cacheFiles(cache)
    const path = nodePath.join(cache, "agentsync", file!)
    expect(JSON.parse(await fs.readFile(path.replace(/\.v8$/, ".json"), "utf8"))).toEqual(["serve~"])
    const made = (await fs.stat(path)).mtimeMs
    // The next long run finds its partial mark and writes nothing, neither early nor at exit.
    await serveFor(2600)
    expect((await fs.stat(path)).mtimeMs).toBe(made)
    expect(JSON.parse(await fs.readFile(path.replace(/\.v8$/, ".json"), "utf8"))).toEqual(["serve~"])
  }, 30_000)

  it("a run that waits, as a short command waits on a busy machine, is short: its cache is written whole at exit", async () => {
    // A server that takes the request and never answers: the pull waits 2.5 s of wall time (AGENTSYNC_TIMEOUT_MS)
    // using a fraction of a second of CPU, then fails. Long is 2 s (the default) of CPU time, not of wall time.
    const sockets: Array<Socket> = []
    const silent = createServer((socket) => {
      sockets.push(socket)
    })
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r))
    try {
      const cache = tempDir("waits")
      const project = tempDir("waits-project")
      await fs.mkdir(nodePath.join(project, "services", "agents"), { recursive: true })
      const env = {
        XDG_CACHE_HOME: cache,
        AGENTSYNC_TOKEN: "ast_0000000000000000_secret",
        AGENTSYNC_DIRECT_URL: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`,
        AGENTSYNC_TIMEOUT_MS: "2500",
        AGENTSYNC_RETRY_MAX: "0"
      }
      const r = await agentsync(["files", "pull", "--dry-run"], { cwd: project, env })
      expect(r.code, r.stderr).toBe(1)
      expect(r.stderr).toMatch(/no answer within 2\.5 s/)
      const [file] = await cacheFiles(cache)
      const covered = JSON.parse(
        await fs.readFile(nodePath.join(cache, "agentsync", file!.replace(/\.v8$/, ".json")), "utf8")
      )
      expect(covered).toEqual(["files pull"])
    } finally {
      for (const socket of sockets) socket.destroy()
      await new Promise((r) => silent.close(r))
    }
  }, 30_000)
})
