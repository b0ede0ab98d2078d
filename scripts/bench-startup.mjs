// `npm run bench:startup`: the start-up of `agentsync --help` (dist/bin.js with its code cache, warm) beside the
// same bundle run without any cache (`node dist/cli.cjs`), on the Node that runs this script. Run it with another
// Node first on PATH to compare versions. Prints medians of wall time over RUNS runs (default 15).
import { spawnSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const runs = Number(process.env.RUNS ?? 15)
const cache = mkdtempSync(join(tmpdir(), "agentsync-bench-startup-"))
const env = { ...process.env, XDG_CACHE_HOME: cache }

const median = (file) => {
  const times = []
  for (let i = 0; i < runs; i++) {
    const started = process.hrtime.bigint()
    const r = spawnSync(process.execPath, [file, "--help"], { env, stdio: ["ignore", "ignore", "pipe"] })
    if (r.status !== 0) throw new Error(`${file} --help failed: ${r.stderr}`)
    times.push(Number(process.hrtime.bigint() - started) / 1e6)
  }
  times.sort((a, b) => a - b)
  return times[Math.floor(times.length / 2)]
}

try {
  median("dist/bin.js") // fills the cache
  const launcher = median("dist/bin.js")
  const bare = median("dist/cli.cjs")
  const how = typeof (await import("node:module")).enableCompileCache === "function" ? "compile cache" : "V8 cache"
  console.log(
    `Node ${process.version}: agentsync --help ${launcher.toFixed(0)} ms (${how}), without a cache ${bare.toFixed(0)} ms, ratio ${(launcher / bare).toFixed(2)}`
  )
} finally {
  rmSync(cache, { recursive: true, force: true })
}
