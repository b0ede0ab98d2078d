/**
 * Where a project keeps its file sync state, and the walk of its services/ tree: plain code without Effect, so
 * that the settled check (stages/files/settledCheck.ts) can run before any runtime is loaded.
 */
import * as fs from "node:fs"
import * as nodePath from "node:path"
import type { Membership } from "../domain/membership.js"
import { errnoCode } from "../errno.js"

/** agentsync's own state folder in a project: hash cache, sync base, staging and backups. */
export const stateDir = (projectRoot: string) => nodePath.join(projectRoot, ".agentsync")

/** The last state both sides agreed on (see stages/files/plan.ts). */
export const BASE_FILE = "files-base.json"

/**
 * The text of a state file, undefined when it cannot be read (a missing or unreadable state file is only a
 * slower run). Synchronous: one call instead of the promise API's thread-pool round trips per chunk.
 */
export const readStateText = (file: string): string | undefined => {
  try {
    return fs.readFileSync(file, "utf8")
  } catch {
    return undefined
  }
}

// A file modified within this window of the scan may change again in the same mtime tick: never trust it.
export const RACY_MS = 2000

/** One listed file of the services/ tree. */
export interface WorkspaceFile {
  /** POSIX path relative to the services root. */
  readonly path: string
  readonly size: number
  readonly mtimeMs: number
  /** Permission bits (`0o755` for a script). */
  readonly mode: number
  /** A symbolic link's target text (then `size` is its byte length); absent for a regular file. */
  readonly link?: string
}

/**
 * Every member file and symbolic link under `absRoot` (none when it does not exist), sorted by path. A link is
 * listed with its target and never followed, whether it names a file or a folder. Synchronous calls: an async
 * stat per file costs thread-pool round trips that dominate for a tree of thousands of files already in the
 * page cache (10,000 files: ~400 ms async, a fraction of that here). Throws what the file system throws.
 */
export const walkTree = (absRoot: string, member: Membership): Array<WorkspaceFile> => {
  const out: Array<WorkspaceFile> = []
  const walk = (dir: string, rel: string): void => {
    let entries: Array<fs.Dirent>
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true })
    } catch (e) {
      if (rel === "" && errnoCode(e) === "ENOENT") return
      throw e
    }
    for (const d of entries) {
      const r = rel === "" ? d.name : `${rel}/${d.name}`
      if (d.isDirectory()) {
        if (rel === "" && !member.includes(`${r}/x`)) continue
        walk(`${dir}${nodePath.sep}${d.name}`, r)
        continue
      }
      if (d.isSymbolicLink()) {
        if (!member.includes(r)) continue
        const full = `${dir}${nodePath.sep}${d.name}`
        const st = fs.lstatSync(full)
        const link = fs.readlinkSync(full)
        out.push({ path: r, size: Buffer.byteLength(link), mtimeMs: st.mtimeMs, mode: st.mode & 0o777, link })
        continue
      }
      if (!d.isFile() || !member.includes(r)) continue
      const st = fs.statSync(`${dir}${nodePath.sep}${d.name}`)
      out.push({ path: r, size: st.size, mtimeMs: st.mtimeMs, mode: st.mode & 0o777 })
    }
  }
  walk(absRoot, "")
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
}

/**
 * A listing the settled check took before it left a run to the full program in the same process (the launcher
 * runs both), with the mark it was checked against: the head that answered 304 to `revision`, and the base file
 * as it was then. The program uses it in place of listing again only under the same mark (a pull that ran in
 * between rewrote the base), once.
 */
export interface HandedListing {
  readonly root: string
  readonly files: ReadonlyArray<WorkspaceFile>
  /** When the tree was listed (ms since the epoch). */
  readonly at: number
  /** The head revision the server confirmed just before the listing. */
  readonly revision: string
  /** The base file's [size, mtimeMs] under that mark. */
  readonly base: readonly [number, number]
  /** What the server's 304 said of itself, as the client learns it from any manifest answer. */
  readonly answer: ManifestAnswer
}

/** The headers of a manifest answer in which a server says what it reads and keeps (see domain/caps.ts). */
export interface ManifestAnswer {
  /** `x-agentsync-archive`: the archive formats it reads. */
  readonly formats: string | undefined
  /** `x-agentsync-entries`: the kinds of entries it keeps. */
  readonly entries: string | undefined
}

const HANDOFF = Symbol.for("agentsync.files.handedListing")
const slot = globalThis as { [HANDOFF]?: HandedListing }

/** Leaves a listing for the full program of this process (the settled start path only). */
export const handOff = (listing: HandedListing): void => {
  slot[HANDOFF] = listing
}

/** The listing handed off for `root`, taken once (undefined when there is none, or for another tree). */
export const takeHandedListing = (root: string): HandedListing | undefined => {
  const listing = slot[HANDOFF]
  delete slot[HANDOFF]
  return listing?.root === root ? listing : undefined
}
