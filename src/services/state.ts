/**
 * Where a project keeps its file sync state, and the walk of its services/ tree: plain code without Effect, so
 * that the settled check (stages/files/settledCheck.ts) can run before any runtime is loaded.
 */
import { isAscii } from "node:buffer"
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { MEMBERSHIP, type Membership } from "../domain/membership.js"
import { builtinSegment, ignoreRulesOf } from "../domain/membershipWalk.js"
import { errnoCode } from "../errno.js"
import {
  type Entry,
  entriesByBytes,
  escapeName,
  mayHoldUnreadable,
  UNREADABLE_NAME,
  UnreadableName,
  type UnreadName
} from "./nameBytes.js"

/** agentsync's own state folder in a project: hash cache, sync base, staging and backups. */
export const stateDir = (projectRoot: string) => nodePath.join(projectRoot, ".agentsync")

/** The last state both sides agreed on (see stages/files/plan.ts). */
export const BASE_FILE = "files-base.json"
/** The kept copy of the head manifest (see stages/files/remote.ts). */
export const HEAD_FILE = "remote-manifest.json"

/**
 * The text of a state file, undefined when it cannot be read (a missing or unreadable state file is only a
 * slower run). Synchronous: one call instead of the promise API's thread-pool round trips per chunk. A file of
 * ASCII only (the state files are JSON of ASCII paths as a rule) is decoded as latin1, which reads it as UTF-8 does
 * at a fraction of the cost (a 1.2 MB hash cache: 1-2 ms instead of 6-10); any other byte, as UTF-8.
 */
export const readStateText = (file: string): string | undefined => {
  const bytes = readStateBytes(file)
  return bytes === undefined ? undefined : stateText(bytes)
}

/** A state file's bytes, undefined when it cannot be read (see `readStateText`). */
export const readStateBytes = (file: string): Buffer | undefined => {
  try {
    return fs.readFileSync(file)
  } catch {
    return undefined
  }
}

/** A state file's bytes as its text: latin1 when ASCII (the same text, at a fraction of the cost), else UTF-8. */
export const stateText = (bytes: Buffer) => (isAscii(bytes) ? bytes.toString("latin1") : bytes.toString("utf8"))

/** A state file's bytes read ahead, with the identity of the file they were read from. */
interface ReadAhead {
  readonly bytes: Buffer
  readonly ino: number
  readonly size: number
  readonly mtimeMs: number
}

// State files read ahead by path, also across the two bundles of one process (see `readAhead`).
const AHEAD = Symbol.for("agentsync.files.readAhead")
const ahead = globalThis as { [AHEAD]?: Map<string, Promise<ReadAhead | undefined>> }
ahead[AHEAD] ??= new Map()

/**
 * Starts reading `files` on libuv's thread pool, for `takeStateText` to take later in this process: the settled
 * start path calls it once it leaves a run to the program, so that the reads (their system calls and page faults,
 * a few tens of milliseconds for the ~3 MB a push reads) run beside the files bundle's loading on the main thread.
 * Each read is of one open file, its identity (inode, size, mtime) taken from that descriptor; an error is only a
 * read the program makes itself. The map holds one run's reads at most: an entry goes when it is taken, when its
 * file is written or removed (`forgetReadAhead`), and when a later call reads ahead again, so that a process that
 * runs many pushes (a library's) never keeps the bytes of a read nobody took.
 */
export const readAhead = (files: ReadonlyArray<string>): void => {
  ahead[AHEAD]?.clear()
  for (const file of files) {
    // Opened and sized here, read in one request to the pool: a chain of callbacks would wait for the main thread,
    // which is busy loading the bundle.
    let fd: number
    let st: fs.Stats
    try {
      fd = fs.openSync(file, "r")
    } catch {
      continue
    }
    try {
      st = fs.fstatSync(fd)
    } catch {
      fs.close(fd, () => undefined)
      continue
    }
    const bytes = Buffer.allocUnsafe(st.size)
    ahead[AHEAD]?.set(
      file,
      new Promise((resolve) =>
        fs.read(fd, bytes, 0, st.size, 0, (e, n) => {
          let got: ReadAhead | undefined
          try {
            // A short read of a regular file is rare: the rest is read here.
            let at = e === null ? n : -1
            while (at >= 0 && at < st.size) {
              const more = fs.readSync(fd, bytes, at, st.size - at, at)
              at = more === 0 ? -1 : at + more
            }
            if (at === st.size) got = { bytes, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs }
          } catch {
            // Only a read the program makes itself.
          }
          fs.close(fd, () => resolve(got))
        })
      )
    )
  }
}

/**
 * A state file's text as `readStateText` gives it: from its read ahead when there is one for `file` (taken once)
 * and the file at that path is still the one read (same inode, size and mtime: state files are replaced by rename,
 * never written in place), else read now.
 */
export const takeStateText = async (file: string): Promise<string | undefined> => {
  const bytes = await takeStateBytes(file)
  return bytes === undefined ? undefined : stateText(bytes)
}

/** A state file's bytes as `readStateBytes` gives them, from its read ahead as `takeStateText` takes it. */
export const takeStateBytes = async (file: string): Promise<Buffer | undefined> => {
  const pending = ahead[AHEAD]?.get(file)
  if (pending === undefined) return readStateBytes(file)
  ahead[AHEAD]?.delete(file)
  const got = await pending
  const st = got === undefined ? undefined : fs.statSync(file, { throwIfNoEntry: false })
  return got !== undefined &&
    st !== undefined &&
    st.ino === got.ino &&
    st.size === got.size &&
    st.mtimeMs === got.mtimeMs
    ? got.bytes
    : readStateBytes(file)
}

/** Drops the read ahead of `file`, if any: the file is being replaced or removed, so its bytes are no longer its text. */
export const forgetReadAhead = (file: string): void => {
  ahead[AHEAD]?.delete(file)
}

/** Whether a read ahead of `file` is pending (the program then waits for it rather than reading again). */
export const readingAhead = (file: string): boolean => ahead[AHEAD]?.has(file) === true

/**
 * How far behind the process clock a listing's stamp is put when the file system's clock cannot be read (see
 * `listingClock`): wider than the coarsest mtime tick (two seconds on FAT).
 */
export const RACY_MS = 2000

/** The file written to read the file system's clock (see `listingClock`): one byte, rewritten each time. */
export const CLOCK_FILE = "clock"

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

/** What a special file is, as a report names it. */
export type SpecialKind = "FIFO" | "socket" | "device"

/**
 * A member path of the tree that is neither a regular file, a folder nor a symbolic link: a FIFO, a socket or a
 * device node. Listed apart (see `specialsOf`) and never opened: an open of a FIFO for reading waits for a writer
 * forever, and one of a socket fails.
 */
export interface SpecialFile {
  readonly path: string
  readonly kind: SpecialKind
}

/** A directory entry's special kind, or undefined for a regular file, a folder or a link. */
export const specialKind = (d: {
  isFIFO(): boolean
  isSocket(): boolean
  isBlockDevice(): boolean
  isCharacterDevice(): boolean
}): SpecialKind | undefined =>
  d.isFIFO() ? "FIFO" : d.isSocket() ? "socket" : d.isBlockDevice() || d.isCharacterDevice() ? "device" : undefined

/** How a report names a special kind: "a FIFO", "a socket", "a device". */
export const specialName = (kind: SpecialKind): string => `a ${kind}`

/**
 * The text of a file the tree's rules are read from (`.agentsyncignore`), or undefined when there is none. Opened
 * without blocking and read only when it is a regular file: a FIFO there would otherwise wait for a writer forever
 * (a socket fails to open: said the same way). One open and one fstat: it is read once a run.
 */
export const readRegularText = (path: string): string | undefined => {
  let fd: number
  try {
    fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK)
  } catch (e) {
    const code = errnoCode(e)
    if (code === "ENOENT") return undefined
    if (code === "ENXIO") throw new Error(NOT_REGULAR)
    throw e
  }
  try {
    if (!fs.fstatSync(fd).isFile()) throw new Error(NOT_REGULAR)
    return fs.readFileSync(fd, "utf8")
  } finally {
    fs.closeSync(fd)
  }
}

const NOT_REGULAR =
  "not a regular file (a FIFO, a socket or a device): never opened to read; make it a file or remove it"

// The special files of each listing `walkTree` made, beside it (also across the two bundles of one process): the
// listing itself holds only what file sync reads, so that nothing that takes a listing can open one.
const SPECIALS = Symbol.for("agentsync.files.listingSpecials")
const heldSpecials = globalThis as { [SPECIALS]?: WeakMap<ReadonlyArray<WorkspaceFile>, ReadonlyArray<SpecialFile>> }
heldSpecials[SPECIALS] ??= new WeakMap()
const specials = heldSpecials[SPECIALS]

/** The member paths `walkTree` found to be special files when it made `listing`, sorted (none for another listing). */
export const specialsOf = (listing: ReadonlyArray<WorkspaceFile>): ReadonlyArray<SpecialFile> =>
  specials.get(listing) ?? []

const SEP = Buffer.from(nodePath.sep)

// How a walk takes a path: not at all, carried by file sync but not read by the caller, or read (see `walkTree`).
const NONE = 0
const CARRIED = 1
const READ = 2
type Taking = typeof NONE | typeof CARRIED | typeof READ

/**
 * Every member file and symbolic link under `absRoot` (none when it does not exist), sorted by path. A link is
 * listed with its target and never followed, whether it names a file or a folder. Synchronous calls: an async
 * stat per file costs thread-pool round trips that dominate for a tree of thousands of files already in the
 * page cache (10,000 files: ~400 ms async, a fraction of that here). Throws what the file system throws, and
 * `UnreadableName` for a name that is not UTF-8 where the walk would take it (a folder: where it would take a
 * file or link below it) and `reads` says the caller reads it (every member path when not given: file sync's own
 * walk); one the caller does not read is left out unread, as a non-member is, and handed to `unread` when file
 * sync's walk would take it (and so refuse its run): what `validate` and `doctor` warn of. Finding them costs
 * nothing more on a tree without such a name (see `mayHoldUnreadable`).
 */
export const walkTree = (
  absRoot: string,
  member: Membership,
  reads?: (path: string, link: boolean) => boolean,
  unread?: (name: UnreadName) => void
): Array<WorkspaceFile> => {
  const out: Array<WorkspaceFile> = []
  const odd: Array<SpecialFile> = []
  // The device every entry is on, or -1 once two differ (see `listingClock`).
  let device: number | undefined
  const on = (dev: number) => {
    if (device === undefined) device = dev
    else if (device !== dev) device = -1
  }
  // Only the membership folders are entered, whatever the ignore file says: its rules decide each file, and a rule
  // may leave out a folder's every path but one it re-includes (`agents/` then `!agents/a.md`), so no made-up path
  // below a folder stands for all of them. Below the top, a file is asked by its name and the rules alone: its top
  // folder passed, and no folder a built-in ignore names is entered, since nothing below one travels
  // (`isMemberPath`), whatever the ignore file says.
  const rules = ignoreRulesOf.get(member)
  const below =
    rules === undefined
      ? (path: string) => member.includes(path)
      : (path: string, name: string) => !builtinSegment(name) && rules(path)
  // How a file or link at `path` is taken: not at all, by file sync only (`CARRIED`), or read by the caller too.
  const taking = (path: string, name: string, link: boolean): Taking =>
    !below(path, name) ? NONE : reads === undefined || reads(path, link) ? READ : CARRIED
  // How the rules take the entry `d` named `name` at `abs` (bytes), shown as `r`: a file or link by its path, a folder
  // by the most any path the walk would list below it takes, were its names UTF-8 (each byte that is not as U+FFFD,
  // which `*` matches), whichever of them the rules re-include. A folder a built-in ignore names is not entered, as in
  // `walk`.
  const takingOf = (abs: Buffer, r: string, name: string, d: Entry | fs.Dirent<Buffer>): Taking =>
    d.isDirectory()
      ? builtinSegment(name)
        ? NONE
        : takesAny(abs, r)
      : d.isFile() || d.isSymbolicLink()
        ? taking(r, name, d.isSymbolicLink())
        : NONE
  const takesAny = (abs: Buffer, rel: string): Taking => {
    let most: Taking = NONE
    for (const d of fs.readdirSync(abs, { withFileTypes: true, encoding: "buffer" })) {
      const name = d.name.toString("utf8")
      const t = takingOf(Buffer.concat([abs, SEP, d.name]), `${rel}/${name}`, name, d)
      if (t === READ) return READ
      if (t > most) most = t
    }
    return most
  }
  // A name that is not UTF-8, refused where the walk would take it and the caller read it (see `UnreadableName`),
  // else left out unread (and told to `unread` where file sync takes it): a file or link by its own path, a folder by
  // every path below it.
  const unreadable = (dir: string, rel: string) => (raw: Buffer, d: Entry) => {
    if (rel === "") return
    const taken = takingOf(Buffer.concat([Buffer.from(dir), SEP, raw]), `${rel}/${d.name}`, d.name, d)
    if (taken === READ) throw new UnreadableName(rel, escapeName(raw), UNREADABLE_NAME)
    if (taken === CARRIED) unread?.({ folder: rel, shown: escapeName(raw), isFolder: d.isDirectory() })
  }
  const walk = (dir: string, rel: string): void => {
    let entries: Array<Entry>
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true })
    } catch (e) {
      if (rel === "" && errnoCode(e) === "ENOENT") return
      throw e
    }
    if (mayHoldUnreadable(entries)) entries = entriesByBytes(dir, unreadable(dir, rel))
    const top = rel === ""
    for (const d of entries) {
      // One flat string: a template (`${rel}/${name}`) makes the path of cons cells, and V8 hands each `<` on such a
      // string (the sort below: ~100,000 for 10,000 paths) to its runtime, flattening it there first.
      const r = top ? d.name : [rel, d.name].join("/")
      if (d.isDirectory()) {
        if (top ? !MEMBERSHIP.includes(d.name) : builtinSegment(d.name)) continue
        walk(`${dir}${nodePath.sep}${d.name}`, r)
        continue
      }
      if (d.isSymbolicLink()) {
        if (top ? !member.includes(r) : !below(r, d.name)) continue
        const full = `${dir}${nodePath.sep}${d.name}`
        const st = fs.lstatSync(full)
        const link = fs.readlinkSync(full)
        on(st.dev)
        out.push({ path: r, size: Buffer.byteLength(link), mtimeMs: st.mtimeMs, mode: st.mode & 0o777, link })
        continue
      }
      if (!d.isFile()) {
        // Never opened nor stat'ed through: named apart, as file sync reports it.
        const kind = specialKind(d)
        if (kind !== undefined && (top ? member.includes(r) : below(r, d.name))) odd.push({ path: r, kind })
        continue
      }
      if (top ? !member.includes(r) : !below(r, d.name)) continue
      const st = fs.statSync(`${dir}${nodePath.sep}${d.name}`)
      on(st.dev)
      out.push({ path: r, size: st.size, mtimeMs: st.mtimeMs, mode: st.mode & 0o777 })
    }
  }
  walk(absRoot, "")
  out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  if (device !== undefined) devices.set(out, device)
  if (odd.length > 0)
    specials.set(
      out,
      odd.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    )
  return out
}

// The device of each listing `walkTree` made (-1: more than one), also across the two bundles of one process.
const DEVICES = Symbol.for("agentsync.files.listingDevices")
const held = globalThis as { [DEVICES]?: WeakMap<ReadonlyArray<WorkspaceFile>, number> }
held[DEVICES] ??= new WeakMap()
const devices = held[DEVICES]

/**
 * The stamp of a listing just taken: the time by the clock that stamps its files, as git takes its index's mtime. A
 * file whose mtime is at or after the stamp is racy: a write in the same tick, before or after the stamp, may
 * leave the same size and mtime, so neither the hash cache nor a settled mark vouches for it. One that is older
 * was last written in an earlier tick, and any later write gives it an mtime at or after the stamp: the bytes read
 * once the stamp is taken are the ones its size and mtime stand for. The clock is the mtime of a byte written to
 * `.agentsync/clock` (the file system's clock and its tick: a jiffy on Linux, a second or two on others) when
 * that folder is on the device of every file of the listing (as `walkTree` saw them); otherwise (no state folder,
 * a tree on another device or on several, a listing not from `walkTree`, an error) the process clock less
 * RACY_MS. Taken after the listing and before any file is read to hash it.
 */
export const listingClock = (projectRoot: string, listing: ReadonlyArray<WorkspaceFile>): number => {
  const fallback = Date.now() - RACY_MS
  const device = devices.get(listing)
  if (device === undefined || device < 0) return fallback
  let fd: number | undefined
  try {
    // Without creating the folder: a dry run on a project that has none leaves none.
    fd = fs.openSync(nodePath.join(stateDir(projectRoot), CLOCK_FILE), "w")
    fs.writeSync(fd, "x")
    const st = fs.fstatSync(fd)
    fs.closeSync(fd)
    return st.dev === device ? st.mtimeMs : fallback
  } catch {
    // The clock could not be read: the process clock's stamp, which is only more cautious. The descriptor is
    // closed in the background; a failure to close it changes nothing more.
    if (fd !== undefined) fs.close(fd, () => undefined)
    return fallback
  }
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
  /** The listing's stamp (see `listingClock`). */
  readonly at: number
  /** The head revision the server confirmed while the tree was listed. */
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
  /**
   * `x-agentsync-upload`: the upload forms it reads beyond the header form. Required, so that every place that makes
   * an answer passes it on (a missing one reads as "the header form only").
   */
  readonly uploads: string | undefined
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
