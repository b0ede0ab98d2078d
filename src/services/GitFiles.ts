/** The Git port's synchronous reads of a clone's `.git` without running git: its origin, the lock files a killed git left, and whether a git process works in it. */
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { groups } from "../domain/text.js"

/**
 * `remote.origin.url` as `git clone` writes it in `.git/config`; `undefined` when the file says it some other way
 * (quoted, escaped, included), so that git itself is asked.
 */
export const originInConfig = (gitDir: string): string | undefined => {
  let text: string
  try {
    text = fs.readFileSync(nodePath.join(gitDir, "config"), "utf8")
  } catch {
    return undefined
  }
  if (/^\s*\[include/im.test(text)) return undefined
  let inOrigin = false
  let url: string | undefined
  for (const line of text.split("\n")) {
    const section = groups(/^\s*\[([^\]]*)\]\s*$/, line, 1)
    if (section) inOrigin = section[0].trim() === 'remote "origin"'
    else if (inOrigin) {
      const m = /^\s*url\s*=\s*(.*?)\s*$/.exec(line)
      if (m) url = m[1]
    }
  }
  return url === undefined || /["\\;#]/.test(url) ? undefined : url
}

/** The lock files git leaves behind when it is killed: the index, HEAD, config, packed refs and any ref. */
export const findLocks = (gitDir: string): ReadonlyArray<string> => {
  const out: Array<string> = []
  for (const name of [
    "index.lock",
    "HEAD.lock",
    "ORIG_HEAD.lock",
    "FETCH_HEAD.lock",
    "config.lock",
    "packed-refs.lock",
    "shallow.lock"
  ]) {
    const p = nodePath.join(gitDir, name)
    if (fs.existsSync(p)) out.push(p)
  }
  const walk = (dir: string) => {
    let entries: Array<fs.Dirent>
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true })
    } catch {
      return
    }
    for (const e of entries) {
      const p = nodePath.join(dir, e.name)
      if (e.isDirectory()) walk(p)
      else if (e.name.endsWith(".lock")) out.push(p)
    }
  }
  walk(nodePath.join(gitDir, "refs"))
  return out
}

/**
 * Whether a git process works inside `dir` (its working directory is there; `git -C` changes to it): read from
 * /proc, so `undefined` where there is none.
 */
export const gitRunningIn = (dir: string): boolean | undefined => {
  let pids: Array<string>
  try {
    pids = fs.readdirSync("/proc")
  } catch {
    return undefined
  }
  const real = fs.realpathSync(dir)
  for (const pid of pids) {
    if (!/^\d+$/.test(pid)) continue
    try {
      const cwd = fs.readlinkSync(`/proc/${pid}/cwd`)
      if (cwd !== real && !cwd.startsWith(`${real}/`)) continue
      const comm = fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim()
      if (comm === "git" || comm.startsWith("git-")) return true
    } catch {
      // A process that ended meanwhile, or one of another user: not ours to see.
    }
  }
  return false
}
