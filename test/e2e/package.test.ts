import { execFile } from "node:child_process"
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { delimiter, dirname, join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { cleanEnv, ensureBuilt, REPO } from "../support/cli.js"

// Installed trees are large: removed asynchronously, so that the worker stays responsive while they go.
const made: Array<string> = []
const tempDir = (name: string) => {
  const dir = mkdtempSync(join(tmpdir(), `agentsync-package-${name}-`))
  made.push(dir)
  return dir
}
afterAll(() => Promise.all(made.map((d) => rm(d, { recursive: true, force: true }))), 300_000)
const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as {
  readonly version: string
  readonly exports: Record<string, string | { readonly types: string; readonly import: string }>
  readonly devDependencies: Record<string, string>
}

/** Runs a command to its end (npm, node), failing with its output; the environment without agentsync's settings. */
const run = (command: string, args: ReadonlyArray<string>, cwd: string, env: Record<string, string> = {}) =>
  new Promise<string>((resolve, reject) =>
    execFile(command, args, { cwd, env: cleanEnv(env), maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) =>
      error === null
        ? resolve(stdout)
        : reject(new Error(`${command} ${args.join(" ")} failed (${error.message}):\n${stdout}\n${stderr}`))
    )
  )
/** npm from this machine's cache where it can (`npm ci` filled it), the registry for the rest. */
const npm = (args: ReadonlyArray<string>, cwd: string, env: Record<string, string> = {}) =>
  run("npm", [...args, "--prefer-offline", "--no-audit", "--no-fund"], cwd, env)

let tarball = ""
let packed: ReadonlyArray<string> = []

beforeAll(async () => {
  // `npm test` has built everything, declarations included; any other run built them before its files started.
  ensureBuilt(true)
  const out = tempDir("tgz")
  const [info] = JSON.parse(
    await npm(["pack", "--json", "--ignore-scripts", "--pack-destination", out], REPO)
  ) as Array<{
    readonly filename: string
    readonly files: ReadonlyArray<{ readonly path: string }>
  }>
  tarball = join(out, info!.filename)
  packed = info!.files.map((f) => f.path)
}, 300_000)

describe("the packed package", () => {
  it("holds the built CLI, the library with its declarations, the example project and the licence; no sources or maps", () => {
    expect(packed).toEqual(expect.arrayContaining(["LICENSE", "dist/bin.js", "dist/cli.cjs", "package.json"]))
    expect(packed).toContain("examples/project/agentsync.yaml")
    expect(packed.filter((f) => f.endsWith(".map") || f.startsWith("src/") || f.startsWith("test/"))).toEqual([])
    expect(packed).not.toContain("dist/.build-stamp")
    for (const [subpath, target] of Object.entries(pkg.exports)) {
      if (typeof target === "string") continue
      expect([subpath, packed.includes(target.types.slice(2)), packed.includes(target.import.slice(2))]).toEqual([
        subpath,
        true,
        true
      ])
    }
  })

  it("typechecks the example programs and every entry point under strict NodeNext and bundler resolution, without agentsync's dev dependencies", async () => {
    const consumer = tempDir("consumer")
    cpSync(join(REPO, "examples/library"), consumer, {
      recursive: true,
      filter: (p) => !/(node_modules|dist)$/.test(p)
    })
    // Every subpath of `exports`, each by its own specifier, in one more program.
    const entries = Object.keys(pkg.exports).filter((s) => s !== "./package.json")
    const specifier = (s: string) => (s === "." ? "agentsync" : `agentsync/${s.slice(2)}`)
    writeFileSync(
      join(consumer, "src/entries.ts"),
      [
        ...entries.map((s, i) => `import * as entry${i} from "${specifier(s)}"`),
        `export const entries = { ${entries.map((s, i) => `${JSON.stringify(specifier(s))}: entry${i}`).join(", ")} }`,
        'export const config: entry0.SyncConfig = entry0.SyncConfig.builder("services").build()',
        ""
      ].join("\n")
    )
    await npm(["install", tarball], consumer)
    // The consumer has agentsync's dependencies and its own, none of agentsync's dev dependencies.
    const own = ["typescript", "@types/node"]
    const leaked = Object.keys(pkg.devDependencies).filter(
      (d) => !own.includes(d) && existsSync(join(consumer, "node_modules", d))
    )
    expect(leaked).toEqual([])
    const tsc = join(consumer, "node_modules/typescript/bin/tsc")
    await run(process.execPath, [tsc, "-p", "tsconfig.json"], consumer)
    await run(process.execPath, [tsc, "-p", "tsconfig.bundler.json"], consumer)
    // The emitted programs load every entry point through the package's `exports` at run time.
    const loaded = await run(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        "const m = await import('./dist/entries.js'); console.log(JSON.stringify(Object.fromEntries(Object.entries(m.entries).map(([k, v]) => [k, Object.keys(v).length]))))"
      ],
      consumer
    )
    const counts = JSON.parse(loaded) as Record<string, number>
    expect(Object.keys(counts).sort()).toEqual(entries.map(specifier).sort())
    expect(Object.values(counts).filter((n) => n === 0)).toEqual([])
    expect(statSync(join(consumer, "dist/push-files.js")).isFile()).toBe(true)
    expect(readdirSync(join(consumer, "dist")).sort()).toEqual(["entries.js", "local-diff.js", "push-files.js"])
  }, 600_000)

  // The whole loop (`agentsync demo`) is e2e/demo's; here, what the install adds: the bundle, its launcher, and the
  // packages the bundle leaves out (PGlite and its socket, loaded by an embedded database), found in the install.
  it("installs with `npm install -g` and runs a local sync on the embedded database from the install, on the Node running the tests", async () => {
    const prefix = tempDir("global")
    await npm(["install", "-g", "--prefix", prefix, tarball], prefix)
    const bin = join(prefix, "bin", "agentsync")
    // The executable's `#!/usr/bin/env node` finds this Node first.
    const env = {
      PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ""}`,
      XDG_CACHE_HOME: tempDir("cache")
    }
    expect((await run(bin, ["--version"], prefix, env)).trim()).toBe(pkg.version)
    const project = join(tempDir("project"), "project")
    cpSync(join(REPO, "examples/project"), project, { recursive: true })
    const out = await run(bin, ["local", "sync", "--to-db"], project, env)
    expect(out).toMatch(/^agents +ToDatabase +[1-9]/m)
    expect(out).toMatch(/^content +ToDatabase +[1-9]/m)
    expect(existsSync(join(project, ".agentsync/pgdata"))).toBe(true)
    // What is installed: the runtime dependencies, none of the CLI's bundled-in or development packages.
    const installed = join(prefix, "lib", "node_modules", "agentsync", "node_modules")
    expect(
      ["@effect/cli", "@effect/printer", "typescript", "vitest", "esbuild"].filter((d) =>
        existsSync(join(installed, d))
      )
    ).toEqual([])
  }, 600_000)
})
