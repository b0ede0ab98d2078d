// The floor under a client run, measured on the machine and tree of the bench that prints it: Node's own start, and
// Node plus a plain `readdirSync`/`lstatSync` walk of the tree (no hashing, no state, no network), each run as a
// process of its own with the same `node` as the client. What no Node.js client of the tree can go below.
import { spawn } from "node:child_process"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { type Timed, timed } from "./bench-tree.js"

/** The walk: every entry of the tree read, every file `lstat`ed; CommonJS, so that nothing but Node starts. */
const WALK = `"use strict"
const { readdirSync, lstatSync } = require("node:fs")
let files = 0
const walk = (dir) => {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = dir + "/" + e.name
    if (e.isDirectory()) walk(p)
    else if (lstatSync(p).size >= 0) files++
  }
}
walk(process.argv[2])
if (files === 0) process.exitCode = 1
`

/** Writes the walk script into `dir`; its path. */
export const walkScript = (dir: string) => {
  const path = join(dir, "floor-walk.cjs")
  writeFileSync(path, WALK)
  return path
}

/** `node -e 0`: Node's start and exit alone. */
export const nodeStart = (cwd: string): Timed => timed(process.execPath, ["-e", "0"], { cwd })

/** Node and the plain walk of `tree`. */
export const plainWalk = (script: string, tree: string): Timed => timed(process.execPath, [script, tree], { cwd: tree })

/** A command under /usr/bin/time, not waited for: its wall and CPU seconds (itself and its children). */
export const timedAsync = (
  args: ReadonlyArray<string>,
  cwd: string,
  env: Record<string, string> = {}
): Promise<{ seconds: number; cpu: number }> =>
  new Promise((resolve, reject) => {
    const started = performance.now()
    const child = spawn("/usr/bin/time", ["-f", "%U %S", process.execPath, ...args], {
      cwd,
      env: { ...process.env, ...env },
      stdio: ["ignore", "ignore", "pipe"]
    })
    let err = ""
    child.stderr.on("data", (d) => {
      err += d
    })
    // "close", not "exit": a child's stderr can still be arriving when it has exited (seen with 20 at once), and
    // the times are its last line.
    child.on("close", (code) => {
      const seconds = (performance.now() - started) / 1000
      if (code !== 0) return reject(new Error(`node ${args.join(" ")} failed (${code}): ${err}`))
      const [user, sys] = (err.trim().split("\n").at(-1) ?? "").split(" ").map(Number)
      resolve({ seconds, cpu: (user ?? Number.NaN) + (sys ?? Number.NaN) })
    })
  })

/** `a ÷ b` as the benches print a ratio. */
export const times = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined || b === 0 ? "—" : `${(a / b).toFixed(2)}×`
