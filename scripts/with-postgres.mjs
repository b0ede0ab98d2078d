// Runs a command with a throwaway PostgreSQL server: AGENTSYNC_TEST_PG_URL points at it, AGENTSYNC_PG_BIN at its tools.
import { spawn } from "node:child_process"
import { startPostgres } from "./pg.mjs"

const [cmd, ...args] = process.argv.slice(2)
if (!cmd) {
  console.error("usage: node scripts/with-postgres.mjs COMMAND [ARGS...]")
  process.exit(2)
}

const pg = process.env.AGENTSYNC_TEST_PG_URL ? undefined : await startPostgres()
const env = { ...process.env }
if (pg) {
  env.AGENTSYNC_TEST_PG_URL = pg.url
  env.AGENTSYNC_PG_BIN = pg.bin
  console.error(`with-postgres: PostgreSQL on 127.0.0.1:${pg.port}`)
}
const child = spawn(cmd, args, { stdio: "inherit", env, shell: process.platform === "win32" })
const forward = (sig) => () => child.kill(sig)
process.on("SIGINT", forward("SIGINT"))
process.on("SIGTERM", forward("SIGTERM"))
child.on("exit", (code, signal) => {
  pg?.stop()
  process.exit(code ?? (signal ? 1 : 0))
})
