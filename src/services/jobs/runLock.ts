/** The single-machine scheduler's run lock: one file created exclusively, held for a scope, taken over only from a dead process. */
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as nodePath from "node:path"
import { Effect, type Scope } from "effect"
import { IoError, SyncInProgress } from "../../errors.js"
import { isAlive } from "../ProcessLock.js"

/** A takeover in progress this long is one whose taker died: it may be cleared. */
const TAKEOVER_STALE_MS = 10_000

/** The holder of a lock file is gone: a process of this host that no longer runs. A lock of another host is held. */
const isStale = async (path: string): Promise<boolean> => {
  const [pid, host] = (await fs.readFile(path, "utf8").catch(() => "")).split("\n")
  const n = Number(pid)
  if (!Number.isInteger(n) || n <= 0) {
    // Being written by its owner right now, or left empty by a crash: stale only once old.
    const st = await fs.stat(path).catch(() => undefined)
    return st !== undefined && Date.now() - st.mtimeMs > TAKEOVER_STALE_MS
  }
  return host === os.hostname() && !isAlive(n)
}

const create = async (path: string): Promise<boolean> => {
  try {
    await fs.writeFile(path, `${process.pid}\n${os.hostname()}\n`, { flag: "wx" })
    return true
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false
    throw e
  }
}

/**
 * Takes over a stale lock: only the process that creates `<lock>.takeover` exclusively may remove the stale lock
 * and create its own, so two processes that both saw it stale cannot both end up holding it.
 */
const takeOver = async (path: string): Promise<boolean> => {
  const marker = `${path}.takeover`
  if (!(await create(marker))) {
    if (await isStale(marker)) await fs.rm(marker, { force: true })
    return false
  }
  try {
    if (!(await isStale(path))) return false
    await fs.rm(path, { force: true })
    return await create(path)
  } finally {
    await fs.rm(marker, { force: true })
  }
}

/** Holds the lock at `path` until the scope closes; held by a live process (or one of another host): `SyncInProgress`. */
export const acquire = (path: string): Effect.Effect<void, SyncInProgress | IoError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        await fs.mkdir(nodePath.dirname(path), { recursive: true })
        return (await create(path)) || ((await isStale(path)) && (await takeOver(path)))
      },
      catch: (cause) => new IoError({ path, reason: "cannot take the run lock", cause })
    }).pipe(Effect.filterOrFail((held) => held, () => new SyncInProgress({ lock: path }))),
    () => Effect.promise(() => fs.rm(path, { force: true }))
  ).pipe(Effect.asVoid)
