// Bundles the CLI and the library into dist/ so that `agentsync --help` starts without loading hundreds of modules.
import { build } from "esbuild"

const shared = {
  bundle: true,
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
}

await Promise.all([
  build({ ...shared, entryPoints: { bin: "src/cli/bin.ts" }, outdir: "dist" }),
  build({ ...shared, entryPoints: { index: "src/index.ts" }, outdir: "dist" })
])
