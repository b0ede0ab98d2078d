// `npm run bench:startup`: the start-up of `agentsync --help` and of a Tab (`agentsync __complete …`), both answered
// by the launcher's small start path (dist/quick.cjs), beside `node -e 0` (the floor: Node itself) as the
// baseline ratio; and the full CLI's start-up (`agentsync --version`, which the small path leaves to it) with the
// launcher's code cache, warm, and without any cache (`node dist/cli.cjs --help`). On the Node that runs this
// script; run it with another Node first on PATH to compare versions. Medians of wall time over RUNS runs (default 15).
import { spawnSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const runs = Number(process.env.RUNS ?? 15)
const cache = mkdtempSync(join(tmpdir(), "agentsync-bench-startup-"))
const env = { ...process.env, XDG_CACHE_HOME: cache }

const median = (args) => {
  const times = []
  for (let i = 0; i < runs; i++) {
    const started = process.hrtime.bigint()
    const r = spawnSync(process.execPath, args, { env, stdio: ["ignore", "ignore", "pipe"] })
    if (r.status !== 0) throw new Error(`${args.join(" ")} failed: ${r.stderr}`)
    times.push(Number(process.hrtime.bigint() - started) / 1e6)
  }
  times.sort((a, b) => a - b)
  return times[Math.floor(times.length / 2)]
}

try {
  median(["dist/bin.js", "--version"]) // fills the cache
  const node = median(["-e", "0"])
  const help = median(["dist/bin.js", "--help"])
  const tab = median(["dist/bin.js", "__complete", "--d", "files", "push"])
  const full = median(["dist/bin.js", "--version"])
  const bare = median(["dist/cli.cjs", "--help"])
  const how = typeof (await import("node:module")).enableCompileCache === "function" ? "compile cache" : "V8 cache"
  const ms = (t) => `${t.toFixed(0)} ms`
  const ratio = (t) => `${(t / node).toFixed(2)}x node -e 0`
  console.log(
    `Node ${process.version}, load ${(await import("node:os")).loadavg()[0].toFixed(2)}: node -e 0 ${ms(node)}`
  )
  console.log(`  agentsync --help                  ${ms(help)} (${ratio(help)})`)
  console.log(`  agentsync __complete --d files push ${ms(tab)} (${ratio(tab)})`)
  console.log(`  the full CLI (--version, ${how}) ${ms(full)} (${ratio(full)}); without a cache ${ms(bare)}`)
} finally {
  rmSync(cache, { recursive: true, force: true })
}
