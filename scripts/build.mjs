// Bundles the CLI and the library into dist/ so that `agentsync --help` starts without loading hundreds of modules.
// One build with code splitting: each command's code is a chunk the CLI imports only when that command runs.
import { rm } from "node:fs/promises"
import { build } from "esbuild"

await rm("dist", { recursive: true, force: true })
await build({
  entryPoints: { bin: "src/cli/bin.ts", index: "src/index.ts" },
  outdir: "dist",
  chunkNames: "chunks/[name]-[hash]",
  bundle: true,
  splitting: true,
  platform: "node",
  target: "node20",
  format: "esm",
  sourcemap: true,
  logLevel: "warning",
  // PGlite loads its WebAssembly and data files next to its own module; pg-native is an optional addon.
  external: ["@electric-sql/pglite", "@electric-sql/pglite-socket", "pg-native"],
  // Bundled CommonJS dependencies (pg) call require(); give them one.
  banner: {
    js: "import { createRequire as __agentsyncCreateRequire } from 'node:module'; const require = __agentsyncCreateRequire(import.meta.url);"
  }
})
