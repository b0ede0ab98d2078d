// Builds dist/: the CLI as one CommonJS bundle (dist/cli.cjs) started by a small launcher (dist/bin.js) that keeps
// V8's code cache for it, and the library as one ES module (dist/index.js).
import { createHash } from "node:crypto"
import { readFile, rm } from "node:fs/promises"
import { build } from "esbuild"

const shared = {
  bundle: true,
  platform: "node",
  target: "node20",
  sourcemap: true,
  logLevel: "warning",
  // PGlite loads its WebAssembly and data files next to its own module; pg-native is an optional addon.
  external: ["@electric-sql/pglite", "@electric-sql/pglite-socket", "pg-native"]
}

await rm("dist", { recursive: true, force: true })
const [cli] = await Promise.all([
  build({
    ...shared,
    metafile: true,
    entryPoints: { cli: "src/cli/run.ts" },
    outExtension: { ".js": ".cjs" },
    outdir: "dist",
    format: "cjs",
    // The one module that finds files next to itself (the demo's example project).
    define: { "import.meta.url": "__agentsyncModuleUrl" },
    banner: { js: "const __agentsyncModuleUrl = require('node:url').pathToFileURL(__filename).href;" }
  }),
  build({
    ...shared,
    entryPoints: { index: "src/index.ts" },
    outdir: "dist",
    format: "esm",
    // Bundled CommonJS dependencies (pg) call require(); give them one.
    banner: {
      js: "import { createRequire as __agentsyncCreateRequire } from 'node:module'; const require = __agentsyncCreateRequire(import.meta.url);"
    }
  })
])
// The launcher runs the bundle from a V8 code cache, and Node 20 loses a cached script's import() hook.
const dynamic = Object.values(cli.metafile.outputs).flatMap((o) =>
  o.imports.filter((i) => i.kind === "dynamic-import").map((i) => i.path)
)
if (dynamic.length > 0)
  throw new Error(`dist/cli.cjs must not import() at run time (use require): ${dynamic.join(", ")}`)
const id = createHash("sha256")
  .update(await readFile("dist/cli.cjs"))
  .digest("hex")
  .slice(0, 16)
await build({
  ...shared,
  entryPoints: { bin: "src/cli/bin.ts" },
  outdir: "dist",
  format: "esm",
  define: { AGENTSYNC_BUNDLE_ID: JSON.stringify(id) }
})
