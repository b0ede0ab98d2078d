// Builds dist/: the CLI as one CommonJS bundle (dist/cli.cjs) started by a small launcher (dist/bin.js) that keeps
// a code cache for it and answers help and completion (dist/quick.cjs) and a no-change `files push|pull`
// (dist/settled.cjs) from small bundles without it, and runs a `files push|pull` with work to do from a bundle of
// the files commands only (dist/files.cjs, the same code less what a push or pull never runs); the library as ES
// modules over its dependencies (dist/lib/, one entry per public subpath) with their declarations (dist/types/).
// `--no-types` skips the declarations (the demo and e2e tests need only the CLI); `--sourcemap` (or
// AGENTSYNC_SOURCEMAP=1) writes source maps, which the published package leaves out. Its last step writes
// dist/.build-stamp (scripts/buildStamp.mjs): the options and a hash of the inputs, which scripts/built.ts checks.

import { isAscii } from "node:buffer"
import { spawn } from "node:child_process"
import { createHash } from "node:crypto"
import { readdir, readFile, rm, writeFile } from "node:fs/promises"
import { createRequire, isBuiltin } from "node:module"
import { resolve } from "node:path"
import { build } from "esbuild"
import { STAMP, stampOf } from "./buildStamp.mjs"

const args = new Set(process.argv.slice(2))
const sourcemap = args.has("--sourcemap") || process.env.AGENTSYNC_SOURCEMAP === "1"

const shared = {
  bundle: true,
  platform: "node",
  target: "node20",
  sourcemap,
  logLevel: "warning"
}

/** The library's public entry points: `agentsync` and `agentsync/<capability>` (see package.json `exports`). */
const publicEntries = Object.fromEntries(
  (await readdir("src/public")).filter((f) => f.endsWith(".ts")).map((f) => [f.slice(0, -3), `src/public/${f}`])
)

// What this build is made from, taken before it reads anything: an input edited meanwhile makes the next check stale.
const stamp = stampOf(".", { types: !args.has("--no-types"), sourcemap })
await rm("dist", { recursive: true, force: true })
const declarations = () =>
  args.has("--no-types")
    ? Promise.resolve()
    : new Promise((resolve, reject) =>
        spawn(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json"], { stdio: "inherit" })
          .on("error", reject)
          .on("exit", (code) => (code === 0 ? resolve() : reject(new Error("tsc -p tsconfig.build.json failed"))))
      )
const cliBundle = {
  ...shared,
  outExtension: { ".js": ".cjs" },
  outdir: "dist",
  format: "cjs",
  // PGlite loads its WebAssembly and data files next to its own module; pg-native is an optional addon.
  external: ["@electric-sql/pglite", "@electric-sql/pglite-socket", "pg-native"],
  // The one module that finds files next to itself (the demo's example project).
  define: { "import.meta.url": "__agentsyncModuleUrl" },
  // `__agentsyncBuiltin`: see `oneNamespacePerBuiltin` below.
  // The bundle is one function expression, called at once when the file is required (`node dist/cli.cjs`, Node 22's
  // launcher) and handed back as the script's value when the launcher runs it through `vm.Script` (Node 20): the
  // launcher compiles the file's text as read, where it wrapped it in a function of its own before, a concatenation
  // that V8 copied into one flat 2-4 MB string (10-14 ms of CPU) for the bundle's first stack trace.
  footer: { js: "\n})" },
  banner: {
    js: [
      "(function (f) { return typeof module === 'object' && module !== null && module.exports === exports ? f(exports, require, module, __filename, __dirname) : f })(function (exports, require, module, __filename, __dirname) {",
      "const __agentsyncModuleUrl = require('node:url').pathToFileURL(__filename).href;",
      "const __agentsyncNamespaces = new Map();",
      "const __agentsyncBuiltin = (name) => { const mod = require(name); let ns = __agentsyncNamespaces.get(mod); if (ns === undefined) __agentsyncNamespaces.set(mod, (ns = __toESM(mod, 1))); return ns; };"
    ].join("\n")
  },
  // Without comments and blanks, and with shorter syntax, a bundle is a third smaller: less to read, decode and
  // scan for line ends (V8 does, over the whole script, for its first stack trace, which Effect takes as it loads).
  // Names stay as written, so an error's stack names its functions; its positions are the bundle's either way.
  minifyWhitespace: true,
  minifySyntax: true
}
/**
 * What a `files push|pull` never runs, left out of dist/files.cjs: each a module path as its importer names it,
 * its importer's path, and what stands in for it, which fails loudly if it is ever called after all. Effect's
 * Schema module imports all of fast-check (and pure-rand) for one arbitrary, which a push never asks for; and the
 * files program imports
 * `files diff --patch` (SQL client, pg, local sync's readers), which the launcher runs from dist/cli.cjs.
 */
const leftOutOfFiles = [
  {
    path: "./FastCheck.js",
    importer: /\/effect\/dist\/esm\/[^/]+\.js$/,
    stub: "export const array = () => { throw new Error('fast-check is left out of dist/files.cjs') }"
  },
  {
    path: "./patches.js",
    importer: /\/src\/programs\/files\.ts$/,
    stub: "export const filePatches = () => { throw new Error('files diff --patch is left out of dist/files.cjs') }"
  }
]
/**
 * Effect's modules by their own paths in the CLI bundles: the source imports Effect's namespaces from its index
 * (`import { Effect, Schema } from "effect"`), and esbuild, which wraps the modules of these bundles in lazy
 * initialisers (each command loads its own with `import()`), then keeps and initialises every module the index
 * re-exports (334 of them, 1.1 MB: STM, Cron, PubSub, Micro, the test services, ...). In these bundles each such import names its modules
 * instead (`import * as Effect from "effect/Effect"`, what the package exports for each namespace), so a bundle holds
 * only the modules its commands reach (dist/files.cjs 206 of them, 0.58 MB). A name that is not a namespace (lower
 * case: `pipe`) stays an import of the index, which the build then refuses (below). An import written over several
 * lines keeps its line ends, so every later line of the file stays where the source map says it is.
 */
const effectByModule = {
  name: "effect-by-module",
  setup(b) {
    b.onLoad({ filter: /[\\/]src[\\/].*\.ts$/ }, async (a) => {
      const text = await readFile(a.path, "utf8")
      const contents = text.replace(/import (type )?\{([^}]*)\} from "effect"/g, (whole, typeAll, names) => {
        const specs = names
          .split(",")
          .map((n) => n.trim())
          .filter((n) => n !== "")
        const deep = specs.map((spec) => {
          const isType = typeAll !== undefined || spec.startsWith("type ")
          const [name, alias = name] = spec.replace(/^type /, "").split(/\s+as\s+/)
          return /^[A-Z]/.test(name) ? `import ${isType ? "type " : ""}* as ${alias} from "effect/${name}"` : undefined
        })
        const rest = specs.filter((_, i) => deep[i] === undefined)
        return [
          ...deep.filter((d) => d !== undefined),
          ...(rest.length > 0 ? [`import { ${rest.join(", ")} } from "effect"`] : [])
        ]
          .join("; ")
          .concat("\n".repeat(whole.split("\n").length - 1))
      })
      return { contents, loader: "ts" }
    })
  }
}
/**
 * Effect's `Utils` module, as it loads, formats a stack trace to learn whether V8 keeps a frame of its own in it
 * (`isNotOptimizedAway`); formatting the first trace of a script makes V8 find every line end of that script,
 * which for a CLI bundle is the whole MB of it: about 17 M instructions of a one-file push's main thread (callgrind),
 * for an answer that is always yes on V8: its stack traces name inlined frames too, so the probe's frame is there
 * even when its function is optimized and inlined. In the CLI bundles it is that answer; the line stays one line,
 * so the positions after it stay too. The build fails if the probe is not found as written (Effect changed it), or
 * if a CLI bundle holds Effect but no `Utils.js` came through the patch (Effect moved or renamed it: `probeHits`),
 * and a test runs the probe on the Node at hand.
 */
const EFFECT_STACK_PROBE =
  'standard.effect_internal_function(() => new Error().stack)?.includes("effect_internal_function") === true'
/** How many files each CLI bundle's build patched (see `effectStackProbe`). */
const probeHits = { cli: 0, files: 0 }
const effectStackProbe = (bundle) => ({
  name: "effect-stack-probe",
  setup(b) {
    b.onLoad({ filter: /[\\/]effect[\\/]dist[\\/]esm[\\/]Utils\.js$/ }, async (a) => {
      const text = await readFile(a.path, "utf8")
      const line = `const isNotOptimizedAway = /*#__PURE__*/${EFFECT_STACK_PROBE};`
      if (!text.includes(line)) throw new Error(`${a.path}: Effect's stack probe is not as the build knows it`)
      probeHits[bundle]++
      return { contents: text.replace(line, "const isNotOptimizedAway = true;"), loader: "js" }
    })
  }
})
/** Packages that must not come back into dist/files.cjs (the build fails if one does). */
const notInFiles = ["fast-check", "pure-rand", "pg", "@effect/sql-pg", "@effect/sql"]
/** Puts the stubs above in place of what dist/files.cjs leaves out. */
const filesOnly = {
  name: "files-only",
  setup(b) {
    for (const [i, { path, importer }] of leftOutOfFiles.entries())
      b.onResolve({ filter: new RegExp(`^${path.replace(/[.]/g, "\\.")}$`) }, (a) =>
        importer.test(a.importer.replaceAll("\\", "/")) ? { path: String(i), namespace: "left-out" } : undefined
      )
    b.onLoad({ filter: /.*/, namespace: "left-out" }, (a) => ({ contents: leftOutOfFiles[Number(a.path)].stub }))
  }
}
const [cli, files] = await Promise.all([
  build({
    ...cliBundle,
    metafile: true,
    entryPoints: { cli: "src/cli/run.ts" },
    plugins: [effectByModule, effectStackProbe("cli")]
  }),
  // The files commands alone, for a push or pull the settled check left to the program: the same code, without
  // loading and initialising every other command, on a platform layer of what they use (src/cli/filesPlatform.ts:
  // no worker manager or process executor; filesRun.ts checks at compile time that the tree needs no more).
  build({
    ...cliBundle,
    metafile: true,
    entryPoints: { files: "src/cli/filesRun.ts" },
    alias: { "@effect/platform-node/NodeContext": "./src/cli/filesPlatform.ts" },
    plugins: [filesOnly, effectByModule, effectStackProbe("files")]
  }),
  // The command tree read from the CLI's own definitions, for the small start path of help and completion.
  build({ ...cliBundle, sourcemap: false, entryPoints: { "tree-data": "src/cli/treeData.ts" } }),
  // The library leaves every package to the user's install, so a program and agentsync share one `effect`
  // (one runtime, one copy of each Context tag and Schema class). Shared code goes in chunks, loaded once.
  build({
    ...shared,
    entryPoints: { index: "src/index.ts", ...publicEntries },
    outdir: "dist/lib",
    format: "esm",
    splitting: true,
    chunkNames: "chunks/[name]-[hash]",
    packages: "external"
  }),
  declarations()
])
// Node 20's launcher runs the bundle from a V8 code cache, and Node 20 loses a cached script's import() hook.
const dynamic = [cli, files]
  .flatMap((b) => Object.values(b.metafile.outputs))
  .flatMap((o) => o.imports.filter((i) => i.kind === "dynamic-import").map((i) => i.path))
if (dynamic.length > 0)
  throw new Error(`dist/cli.cjs and dist/files.cjs must not import() at run time (use require): ${dynamic.join(", ")}`)
const packageOf = (input) => input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//)?.[1]
// What the bundle holds: an input parsed but tree-shaken away (a re-export nothing uses) adds no byte.
const inFiles = Object.entries(files.metafile.outputs["dist/files.cjs"].inputs)
  .filter(([, i]) => i.bytesInOutput > 0)
  .map(([path]) => path)
const stubbed = leftOutOfFiles.filter((_, i) => !inFiles.includes(`left-out:${i}`))
if (stubbed.length > 0) throw new Error(`dist/files.cjs left nothing out for ${stubbed.map((s) => s.path).join(", ")}`)
const backInFiles = [...new Set(inFiles.map(packageOf))].filter((p) => notInFiles.includes(p))
if (backInFiles.length > 0) throw new Error(`dist/files.cjs must not bundle ${backInFiles.join(", ")}`)
const withIndex = Object.entries({ cli, files })
  .filter(([name, b]) =>
    Object.entries(b.metafile.outputs[`dist/${name}.cjs`].inputs).some(
      ([path, i]) => i.bytesInOutput > 0 && /node_modules\/effect\/dist\/(esm\/index\.js$|cjs\/)/.test(path)
    )
  )
  .map(([name]) => `dist/${name}.cjs`)
if (withIndex.length > 0)
  throw new Error(
    `${withIndex.join(", ")} must not bundle Effect's index or its CommonJS copy (a second Effect: see effectByModule)`
  )
const unprobed = Object.entries({ cli, files })
  .filter(
    ([name, b]) =>
      probeHits[name] === 0 &&
      Object.entries(b.metafile.outputs[`dist/${name}.cjs`].inputs).some(
        ([path, i]) => i.bytesInOutput > 0 && /node_modules\/effect\/dist\/esm\//.test(path)
      )
  )
  .map(([name]) => `dist/${name}.cjs`)
if (unprobed.length > 0)
  throw new Error(
    `${unprobed.join(", ")} bundle Effect, but no Utils.js of it came through the stack probe's patch (Effect moved or renamed it: see effectStackProbe)`
  )
/** A bundle as the launcher knows it: its content hash, its length, and whether every byte is ASCII. */
const idOf = async (file) => {
  const bytes = await readFile(file)
  return {
    id: createHash("sha256").update(bytes).digest("hex").slice(0, 16),
    bytes: bytes.length,
    ascii: isAscii(bytes)
  }
}
/**
 * Keeps a bundle ASCII where esbuild does not: it escapes strings and identifiers, but keeps the comments it
 * carries over as they are, and one non-ASCII character there makes the launcher decode the whole source as UTF-8
 * (45-70 ms of CPU for files.cjs; ASCII it takes as Latin-1, a copy). Such a character on a line esbuild printed
 * as a comment becomes its \u escape; any left elsewhere (a comment after code, a raw template, a regular
 * expression: cli.cjs has a few) stays, and the launcher then decodes that bundle as UTF-8.
 */
const keepAscii = async (file) => {
  const text = await readFile(file, "utf8")
  const ascii = text.replace(/^([ \t]*(?:\/\/|\/\*|\*).*)$/gm, (line) =>
    line.replace(/[^\t -~]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
  )
  if (ascii !== text) await writeFile(file, ascii)
}
/**
 * One namespace object per Node built-in module in a bundle, as ES modules have: esbuild gives each source file that
 * imports a built-in (`import * as fs from "node:fs"`) its own copy, `__toESM(require("node:fs"), 1)`, a getter
 * defined per export (node:fs has about a hundred), and files.cjs made 83 of them as it loaded (cli.cjs 129):
 * 35-55 ms of CPU on every push. Each such call becomes `__agentsyncBuiltin(name)` (in the banner), which makes the
 * namespace once per module and hands the same one to every importer (a call of the same length: a source map
 * stays true). Only built-ins: they are whole when required
 * (a bundled CommonJS module in a require cycle need not be, so its call sites keep their own copy).
 */
const oneNamespacePerBuiltin = async (file) => {
  const text = await readFile(file, "latin1")
  let made = 0
  const shared = text.replace(/__toESM\(require\("([^"]+)"\),1\)/g, (call, name) => {
    if (!isBuiltin(name)) return call
    made++
    return `__agentsyncBuiltin(${JSON.stringify(name)})`
  })
  if (made === 0) throw new Error(`${file}: no __toESM(require(builtin), 1) to share (has esbuild's output changed?)`)
  await writeFile(file, shared, "latin1")
}
await Promise.all(["dist/cli.cjs", "dist/files.cjs"].map(keepAscii))
await Promise.all(["dist/cli.cjs", "dist/files.cjs"].map(oneNamespacePerBuiltin))
const ids = { cli: await idOf("dist/cli.cjs"), files: await idOf("dist/files.cjs") }
const treeData = resolve("dist/tree-data.cjs")
const commandData = createRequire(import.meta.url)(treeData).treeData()
await rm(treeData)
/** A small start path: plain Node, no package at all (else it would start as slowly as the CLI). */
const small = async (name, entry, define = {}) => {
  const result = await build({
    ...shared,
    metafile: true,
    entryPoints: { [name]: entry },
    outExtension: { ".js": ".cjs" },
    outdir: "dist",
    format: "cjs",
    define
  })
  const packages = Object.keys(result.metafile.inputs).filter((i) => i.includes("node_modules/"))
  if (packages.length > 0) throw new Error(`dist/${name}.cjs must not bundle packages: ${packages.join(", ")}`)
}
// A no-change `files push|pull` (src/cli/settledRun.ts); help and completion (src/cli/quickRun.ts) over the tree.
await small("settled", "src/cli/settledRun.ts")
await small("quick", "src/cli/quickRun.ts", { AGENTSYNC_COMMAND_DATA: JSON.stringify(commandData) })
await build({
  ...shared,
  entryPoints: { bin: "src/cli/bin.ts" },
  outdir: "dist",
  format: "esm",
  define: { AGENTSYNC_BUNDLE_IDS: JSON.stringify(ids) }
})
// Last: a build that failed before here leaves no stamp, and scripts/built.ts counts it stale.
await writeFile(STAMP, `${JSON.stringify(stamp)}\n`)
