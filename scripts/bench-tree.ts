// Shared by the file sync benchmarks: the deterministic generated tree, listing it, and timed child processes.
import { spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"

/** A throwaway PostgreSQL (scripts/pg.mjs) and its tools. */
export interface Pg {
  readonly url: string
  readonly stop: () => void
}
export const { startPostgres, freePort, pgBinDir } = (await import(join(import.meta.dirname, "pg.mjs") as string)) as {
  startPostgres: () => Promise<Pg>
  freePort: () => Promise<number>
  pgBinDir: () => string
}

export const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

/** CPU seconds a process has used so far (itself and its reaped children), from /proc. */
export const procCpu = (pid: number) => {
  // Fields after the command name: utime, stime, cutime, cstime are the 12th to 15th.
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return [11, 12, 13, 14].reduce((n, i) => n + Number(fields[i]), 0) / 100
}

export const TOPS = ["agents", "skills", "content", "config"]

/** A deterministic pseudo-random generator, so every run measures the same tree. */
export const prng = (seed: number) => () => {
  // mulberry32: 32-bit integer arithmetic only, so no precision is lost.
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

/** Text that compresses like real prose and YAML (about 3-4×), `files` files of `totalBytes` in all, 100 a folder. */
export const generate = (root: string, files: number, totalBytes: number) => {
  const rand = prng(42)
  const words = Array.from({ length: 4000 }, (_, i) =>
    createHash("sha1")
      .update(String(i))
      .digest("base64")
      .slice(0, 3 + (i % 9))
      .toLowerCase()
  )
  const avg = totalBytes / files
  for (let i = 0; i < files; i++) {
    const top = TOPS[i % TOPS.length]!
    const dir = join(root, "services", top, `group-${Math.floor(i / 100)}`)
    mkdirSync(dir, { recursive: true })
    const size = Math.floor(avg * (0.5 + rand()))
    const parts: Array<string> = []
    let n = 0
    while (n < size) {
      const w = words[Math.floor(rand() * words.length)]!
      parts.push(w)
      n += w.length + 1
    }
    writeFileSync(join(dir, `item-${i}.md`), parts.join(rand() < 0.1 ? "\n" : " ").slice(0, size))
  }
}

export const listFiles = (dir: string, rel = ""): Array<string> =>
  readdirSync(join(dir, rel), { withFileTypes: true }).flatMap((e) => {
    const r = rel === "" ? e.name : `${rel}/${e.name}`
    return e.isDirectory() ? listFiles(dir, r) : [r]
  })

export interface Timed {
  readonly seconds: number
  /** User + system CPU seconds of the command and its children. */
  readonly cpu: number
  /** Of those, the system's (the kernel's work for it: creating files on ext4 swings by a second from run to run). */
  readonly sys: number
  readonly rssMb: number
  readonly stdout: string
}

/** Runs a command under /usr/bin/time: wall seconds, CPU seconds and peak RSS in MiB. */
export const timed = (
  cmd: string,
  args: ReadonlyArray<string>,
  options: { cwd: string; env?: Record<string, string>; timeoutMs?: number }
): Timed => {
  const started = process.hrtime.bigint()
  const r = spawnSync("/usr/bin/time", ["-f", "%U %S %M", cmd, ...args], {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    encoding: "utf8",
    maxBuffer: 1 << 30,
    ...(options.timeoutMs === undefined ? {} : { timeout: options.timeoutMs, killSignal: "SIGKILL" })
  })
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  if (r.error !== undefined) throw new Error(`${cmd} ${args.join(" ")}: ${r.error.message}`)
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}): ${r.stderr}`)
  const lines = r.stderr.trim().split("\n")
  const [user, sys, rssKb] = lines[lines.length - 1]!.split(" ").map(Number)
  return { seconds, cpu: user! + sys!, sys: sys!, rssMb: rssKb! / 1024, stdout: r.stdout }
}
