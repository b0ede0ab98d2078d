/** ProcessLock: one process at a time on a lock file; a lock whose process is gone is taken over, atomically, by exactly one run. */
import { createHash, randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { Effect, type Scope } from "effect"
import { errnoCode, IoError, ioKindOf, SyncInProgress } from "../errors.js"

/** Who holds a lock: the process (id, start time, host) and what it is doing. */
export interface LockOwner {
  readonly pid: number
  readonly host: string
  /** When the process started (ms since the epoch), when the system tells; a reused process id then differs. */
  readonly started: number | null
  readonly token: string
  readonly what: string
}

/** A lock file as read: its raw text, its owner when the text is one, and when it was written. */
interface Seen {
  readonly raw: string
  readonly owner: LockOwner | undefined
  readonly mtimeMs: number
}

let bootMs: number | undefined | null = null
/** When the system booted (ms since the epoch), from /proc/stat; undefined off Linux. */
const bootTime = (): number | undefined => {
  if (bootMs === null) {
    try {
      const m = /^btime (\d+)$/m.exec(fs.readFileSync("/proc/stat", "utf8"))
      bootMs = m ? Number(m[1]) * 1000 : undefined
    } catch {
      bootMs = undefined
    }
  }
  return bootMs
}

/** When a process started (ms since the epoch, to the second), from /proc on Linux; undefined where unknown. */
export const processStart = (pid: number): number | undefined => {
  const boot = bootTime()
  if (boot === undefined) return undefined
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    // Fields after the command name (which may hold spaces), starting at field 3; start time is field 22.
    const ticks = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19])
    // Clock ticks are 100 a second on every Linux this runs on (USER_HZ).
    return Number.isFinite(ticks) ? boot + ticks * 10 : undefined
  } catch {
    return undefined
  }
}

/** Whether a process with this id runs on this host (one of another user counts). */
export const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return errnoCode(e) === "EPERM"
  }
}

/** This process as the owner of a lock. */
const self = (what: string): LockOwner => ({
  pid: process.pid,
  host: os.hostname(),
  started: processStart(process.pid) ?? null,
  token: randomBytes(8).toString("hex"),
  what
})

// Slack between two readings of a start time (the boot time has whole seconds) and for a lock being written.
const SLACK_MS = 3000

/**
 * Whether the process that wrote a lock is gone: not running, or the process id now belongs to a process
 * that started at another time (reused). A lock from another host cannot be judged and counts as held.
 */
export const isStale = (seen: Seen, now = Date.now()): boolean => {
  const owner = seen.owner
  if (owner === undefined) {
    // An older lock holding only a process id, or one being written this instant.
    const pid = Number(seen.raw.trim())
    if (!Number.isInteger(pid) || pid <= 0) return now - seen.mtimeMs > SLACK_MS
    if (!isAlive(pid)) return true
    const start = processStart(pid)
    return start !== undefined && start > seen.mtimeMs + SLACK_MS
  }
  if (owner.host !== os.hostname()) return false
  if (!isAlive(owner.pid)) return true
  const start = processStart(owner.pid)
  return start !== undefined && owner.started !== null && Math.abs(start - owner.started) > SLACK_MS
}

const read = (path: string): Seen | undefined => {
  let raw: string
  let st: fs.Stats
  try {
    raw = fs.readFileSync(path, "utf8")
    st = fs.statSync(path)
  } catch (e) {
    if (ioKindOf(e) === "NotFound") return undefined
    throw e
  }
  let owner: LockOwner | undefined
  try {
    const v = JSON.parse(raw) as Partial<LockOwner>
    if (typeof v.pid === "number" && typeof v.host === "string" && typeof v.token === "string") {
      owner = {
        pid: v.pid,
        host: v.host,
        started: typeof v.started === "number" ? v.started : null,
        token: v.token,
        what: String(v.what ?? "")
      }
    }
  } catch {
    owner = undefined
  }
  return { raw, owner, mtimeMs: st.mtimeMs }
}

/** A host name as a temp file's name carries it. */
const inName = (host: string) => host.replace(/[^A-Za-z0-9.-]/g, "_")

/**
 * The temp file an owner writes before linking or renaming it into place. Its name carries the process id, so
 * one left empty by a run killed between creating and writing it still tells who made it (and on which host).
 */
const tempOf = (path: string, owner: LockOwner): string =>
  `${path}.${inName(owner.host)}.${owner.pid}-${owner.token}.tmp`
// The host and the process id a temp file's name carries.
const TEMP_OWNER = /^\.([A-Za-z0-9._-]+)\.(\d+)-[0-9a-f]+\.tmp$/

/**
 * Creates `path` holding `owner`, only if nothing is there: the content is written to a temp file first and
 * linked into place, so a reader never sees a half-written lock. Returns false when the path exists.
 */
const create = (path: string, owner: LockOwner): boolean => {
  const tmp = tempOf(path, owner)
  fs.writeFileSync(tmp, JSON.stringify(owner), { flag: "wx" })
  try {
    fs.linkSync(tmp, path)
    return true
  } catch (e) {
    if (errnoCode(e) === "EEXIST") return false
    // A file system without hard links: an exclusive create (readers give a just-made, empty lock a moment).
    try {
      fs.writeFileSync(path, JSON.stringify(owner), { flag: "wx" })
      return true
    } catch (e2) {
      if (errnoCode(e2) === "EEXIST") return false
      throw e2
    }
  } finally {
    fs.rmSync(tmp, { force: true })
  }
}

/**
 * Replaces a stale lock with `owner`. Those who saw the same stale content compete for one takeover file
 * named after it, created exclusively; the winner replaces the lock only if it still holds that content, so
 * two runs can never both take it over. A takeover file left by a run that died is itself taken over the same
 * way.
 */
const takeOver = (path: string, stale: Seen, owner: LockOwner, depth = 0): boolean => {
  if (depth > 3) return false
  const mutex = `${path}.takeover-${createHash("sha256").update(stale.raw).digest("hex").slice(0, 16)}`
  if (!create(mutex, owner)) {
    const holder = read(mutex)
    if (holder === undefined || !isStale(holder) || !takeOver(mutex, holder, owner, depth + 1)) return false
  }
  try {
    const now = read(path)
    if (now === undefined) return create(path, owner)
    if (now.raw !== stale.raw) return false
    const tmp = tempOf(path, owner)
    fs.writeFileSync(tmp, JSON.stringify(owner), { flag: "wx" })
    fs.renameSync(tmp, path)
    return true
  } finally {
    const held = read(mutex)
    if (held?.owner?.token === owner.token) fs.rmSync(mutex, { force: true })
  }
}

const describe = (seen: Seen): string => {
  const o = seen.owner
  const since = new Date(seen.mtimeMs).toISOString()
  return o === undefined
    ? `written ${since}`
    : `held by process ${o.pid} on ${o.host}${o.what === "" ? "" : ` (${o.what})`} since ${since}`
}

/**
 * Removes what crashed takers left beside the lock (temp and takeover files): at once when the process that
 * wrote one is gone (a run killed between writing its temp file and removing it; for a temp file left empty,
 * the process its name carries), else once old enough to be nobody's (a file that names no owner, or one from
 * another host).
 */
const tidy = (path: string) => {
  const dir = nodePath.dirname(path)
  const base = `${nodePath.basename(path)}.`
  const now = Date.now()
  for (const name of fs.readdirSync(dir)) {
    if (!name.startsWith(base) || !(name.endsWith(".tmp") || name.includes(".takeover-"))) continue
    const full = nodePath.join(dir, name)
    const seen = read(full)
    if (seen === undefined) continue
    // An empty one is judged by the process its name carries, when that process is of this host.
    const named = seen.owner === undefined ? TEMP_OWNER.exec(name.slice(base.length - 1)) : null
    const namedPid = named !== null && named[1] === inName(os.hostname()) ? named[2] : undefined
    const dead =
      seen.owner !== undefined
        ? seen.owner.host === os.hostname() && isStale(seen, now)
        : namedPid !== undefined && seen.raw === "" && isStale({ ...seen, raw: namedPid }, now)
    if (dead || now - seen.mtimeMs > 60_000) fs.rmSync(full, { force: true })
  }
}

/** Takes the lock at `path` for `what`, or fails with SyncInProgress naming the file and its holder. */
const take = (path: string, what: string): Effect.Effect<LockOwner, SyncInProgress | IoError> =>
  Effect.try({
    try: (): { readonly taken: LockOwner } | { readonly held: Seen | undefined } => {
      fs.mkdirSync(nodePath.dirname(path), { recursive: true })
      const owner = self(what)
      let last: Seen | undefined
      for (let attempt = 0; attempt < 5; attempt++) {
        if (create(path, owner)) {
          tidy(path)
          return { taken: owner }
        }
        const seen = read(path)
        if (seen === undefined) continue // released meanwhile
        last = seen
        if (!isStale(seen)) return { held: seen }
        if (takeOver(path, seen, owner)) {
          tidy(path)
          return { taken: owner }
        }
      }
      return { held: last }
    },
    catch: (cause) =>
      new IoError({
        path,
        reason: `cannot take the lock: ${cause instanceof Error ? cause.message : String(cause)}`,
        cause
      })
  }).pipe(
    Effect.flatMap((got) =>
      "taken" in got
        ? Effect.succeed(got.taken)
        : Effect.fail(
            new SyncInProgress({ lock: path, ...(got.held === undefined ? {} : { holder: describe(got.held) }) })
          )
    )
  )

/** Removes the lock if it is still ours. */
const release = (path: string, owner: LockOwner) =>
  Effect.sync(() => {
    try {
      if (read(path)?.owner?.token === owner.token) fs.rmSync(path, { force: true })
    } catch {
      // a lock that cannot be read back is left for the next run to judge
    }
  })

/**
 * Holds the lock file `path` for the scope: one process at a time. A lock left by a process that is gone (or
 * whose id was reused) is taken over; one held by a live process fails with SyncInProgress naming the file.
 */
export const acquire = (path: string, what: string): Effect.Effect<LockOwner, SyncInProgress | IoError, Scope.Scope> =>
  Effect.acquireRelease(take(path, what), (owner) => release(path, owner))

/** Runs `effect` holding the lock at `path`. */
export const withLock = <A, E, R>(path: string, what: string, effect: Effect.Effect<A, E, R>) =>
  Effect.scoped(Effect.zipRight(acquire(path, what), effect))

/** How a lock file stands, without taking it: absent, held by a running process (or another host's), or stale. */
export const inspect = (path: string): Effect.Effect<LockState, IoError> =>
  Effect.try({
    try: (): LockState => {
      const seen = read(path)
      if (seen === undefined) return { state: "absent" }
      return { state: isStale(seen) ? "stale" : "held", description: describe(seen) }
    },
    catch: (cause) => new IoError({ path, reason: "cannot read the lock file", cause })
  })

export type LockState =
  | { readonly state: "absent" }
  | { readonly state: "held" | "stale"; readonly description: string }
