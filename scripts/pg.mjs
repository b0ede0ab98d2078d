// A throwaway PostgreSQL server: initdb in a temp dir, a free loopback port, stopped and removed afterwards.
import { execFileSync, spawnSync } from "node:child_process"
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

/** The folder holding initdb, pg_ctl, psql and pg_dump. */
export const pgBinDir = () => {
  if (process.env.AGENTSYNC_PG_BIN) return process.env.AGENTSYNC_PG_BIN
  const base = "/usr/lib/postgresql"
  if (existsSync(base)) {
    const versions = readdirSync(base).sort((a, b) => Number(b) - Number(a))
    for (const v of versions) if (existsSync(join(base, v, "bin", "initdb"))) return join(base, v, "bin")
  }
  const which = spawnSync("sh", ["-c", "command -v initdb"], { encoding: "utf8" })
  if (which.status === 0) return join(which.stdout.trim(), "..")
  throw new Error("PostgreSQL binaries not found: install postgresql (initdb, pg_ctl) or set AGENTSYNC_PG_BIN")
}

export const freePort = () =>
  new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.on("error", reject)
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })

const isRoot = typeof process.getuid === "function" && process.getuid() === 0

/** Runs a PostgreSQL binary, as the postgres user when we are root (the server refuses to run as root). */
const run = (bin, args) => {
  const [cmd, argv] = isRoot ? ["runuser", ["-u", "postgres", "--", bin, ...args]] : [bin, args]
  return execFileSync(cmd, argv, { stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" })
}

/** Starts a server; returns its URL and a stop function. */
export const startPostgres = async () => {
  const bin = pgBinDir()
  const dir = mkdtempSync(join(tmpdir(), "agentsync-pg-"))
  if (isRoot) {
    const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim())
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim())
    chownSync(dir, uid, gid)
  }
  const data = join(dir, "data")
  const port = await freePort()
  run(join(bin, "initdb"), ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--locale=C"])
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`
  run(join(bin, "pg_ctl"), ["-D", data, "-o", opts, "-l", join(dir, "log"), "-w", "-t", "60", "start"])
  let stopped = false
  const stop = () => {
    if (stopped) return
    stopped = true
    try {
      run(join(bin, "pg_ctl"), ["-D", data, "-m", "immediate", "-w", "stop"])
    } catch {
      // already down
    }
    rmSync(dir, { recursive: true, force: true })
  }
  return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, port, bin, stop }
}
