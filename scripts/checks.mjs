// Runs `npm test`'s checks before the suite side by side: the typecheck (one thread of tsc, ~50 s of CPU) beside the
// lint and the build (the bundles, then the declarations: another tsc). One after another they left a core idle for
// a minute. Each one's output is printed whole when it ends; the exit code is the first failure's, else 0. An
// interrupt or termination is passed on to the scripts running, and no further one starts: a build left running
// after this process ended would go on writing dist/.
import { spawn } from "node:child_process"

const lanes = [["typecheck"], ["lint", "build"]]
/** The scripts running now. */
const running = new Set()
/** The signal this process was sent, once it was. */
let stopping

for (const signal of ["SIGINT", "SIGTERM"])
  process.on(signal, () => {
    stopping = signal
    for (const child of running) process.kill(-child.pid, signal)
  })

/** Runs `npm run SCRIPT`, resolving with its exit code once its output is printed. */
const run = (script) =>
  new Promise((resolve) => {
    const started = Date.now()
    const child = spawn("npm", ["run", "--silent", script], { stdio: ["ignore", "pipe", "pipe"], detached: true })
    running.add(child)
    const out = []
    child.stdout.on("data", (d) => out.push(d))
    child.stderr.on("data", (d) => out.push(d))
    child.on("error", (e) => {
      out.push(Buffer.from(`${e.message}\n`))
      resolve(1)
    })
    child.on("close", (code, signal) => {
      running.delete(child)
      const text = Buffer.concat(out).toString()
      const seconds = ((Date.now() - started) / 1000).toFixed(0)
      process.stdout.write(`\n> npm run ${script} (${seconds} s)\n${text}`)
      if (code !== 0) process.stdout.write(`npm run ${script} failed: ${signal ?? `exit ${code}`}\n`)
      resolve(code ?? 1)
    })
  })

/** A lane's scripts in order, stopping at the first that fails. */
const lane = async (scripts) => {
  for (const script of scripts) {
    if (stopping !== undefined) return 1
    const code = await run(script)
    if (code !== 0) return code
  }
  return 0
}

const codes = await Promise.all(lanes.map(lane))
// A signal's conventional exit code (128 + its number), as a shell reports a process it ended.
process.exit(stopping !== undefined ? (stopping === "SIGINT" ? 130 : 143) : (codes.find((c) => c !== 0) ?? 0))
