/**
 * The settled mark, read without Effect: a small record, kept in `.agentsync/`, that the local tree, the recorded
 * base and the remote head agreed at one revision, with the fingerprint of the listing (path, size, mtime of every
 * file) that agreed and of the configuration it was reached under. `checkSettled` is the whole no-change run on
 * plain Node (the launcher calls it before it loads the CLI): the same listing, an untouched base and
 * configuration, nothing left half done in `.agentsync/`, and a 304 from the server to the mark's revision mean
 * nothing changed on either side. Anything else, it says so and the full program runs (which makes its own
 * decision; this check only ever short-cuts to the answer the full run gives).
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as http from "node:http"
import * as nodePath from "node:path"
import { ARCHIVE_FORMATS_HEADER, ENTRY_KINDS_HEADER, UPLOAD_FORMS_HEADER } from "../../domain/capsHeaders.js"
import { updateText } from "../../domain/hash.js"
import { IGNORE_FILE, leftOutAtTop, type Membership, makeMembership } from "../../domain/membership.js"
import { locateProject, PROJECT_FILE } from "../../locate.js"
import {
  BASE_FILE,
  type HandedListing,
  HEAD_FILE,
  listingClock,
  type ManifestAnswer,
  readAhead,
  readRegularText,
  specialsOf,
  stateDir,
  type WorkspaceFile,
  walkTree
} from "../../services/state.js"
import { listTopSync } from "../../services/WorkspaceTop.js"

export const MARK_FILE = "files-settled.json"

export interface SettledMark {
  /** 3: the listing's digest as `imageOf` makes it and SHA-256 hashes it (a mark of version 2, its digest as text, is void). */
  readonly version: 3
  /** The API the agreement was reached with, and the services tree it holds for. */
  readonly url: string
  readonly root: string
  readonly tenant: string
  readonly revision: string
  /**
   * SHA-256 of the listing: every member file's path, size, mtime and execute bit (a link's target), in path order
   * (see `imageOf`).
   */
  readonly listing: string
  readonly local_files: number
  readonly remote_files: number
  /** The base file as written then: [size, mtimeMs]; any later write of it voids the mark. */
  readonly base: readonly [number, number]
  /**
   * The configuration the run had (see `configPrint`), or null when it could not be vouched for; `override`:
   * whether `--services` named the tree itself.
   */
  readonly config: string | null
  readonly override: boolean
  /** The conditional request that asks whether the head is still `revision`. */
  readonly check: { readonly url: string; readonly etag: string }
}

const isNum = (u: unknown): u is number => typeof u === "number" && Number.isFinite(u)
const isStr = (u: unknown): u is string => typeof u === "string"

/** A mark as kept, or undefined for anything else (an older version, a damaged file). */
export const parseMark = (text: string): SettledMark | undefined => {
  let u: unknown
  try {
    u = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof u !== "object" || u === null) return undefined
  const m = u as Record<string, unknown>
  const base = m.base
  const check = m.check as Record<string, unknown> | null | undefined
  const ok =
    m.version === 3 &&
    [m.url, m.root, m.tenant, m.revision, m.listing].every(isStr) &&
    isNum(m.local_files) &&
    isNum(m.remote_files) &&
    Array.isArray(base) &&
    base.length === 2 &&
    base.every(isNum) &&
    (m.config === null || isStr(m.config)) &&
    typeof m.override === "boolean" &&
    typeof check === "object" &&
    check !== null &&
    isStr(check.url) &&
    isStr(check.etag)
  return ok ? (m as unknown as SettledMark) : undefined
}

export const markPath = (projectRoot: string) => nodePath.join(stateDir(projectRoot), MARK_FILE)
const basePath = (projectRoot: string) => nodePath.join(stateDir(projectRoot), BASE_FILE)

/** [size, mtimeMs] of a file, undefined when there is none. */
export const statOf = (path: string): readonly [number, number] | undefined => {
  const st = fs.statSync(path, { throwIfNoEntry: false })
  return st === undefined ? undefined : [st.size, st.mtimeMs]
}

export const LISTING_FILE = "files-settled-listing.txt"

/**
 * What a listing's digest hashes (see `imageOf`): the text (count, paths, link targets) and the numbers (size,
 * mtime and kind per file), kept beside the mark as the mark's listing so that a later run can find which files
 * changed since without hashing or listing anything more.
 */
export interface ListingImage {
  readonly text: string
  readonly numbers: Float64Array
}

// A listing's image and digest are taken when it is checked and again when a mark is written from it: computed
// once, also across the two bundles of one process (the settled check hands its listing to the program).
const IMAGES = Symbol.for("agentsync.files.listingImages")
const shared = globalThis as {
  [IMAGES]?: WeakMap<ReadonlyArray<WorkspaceFile>, { readonly image: ListingImage; readonly digest: string }>
}
shared[IMAGES] ??= new WeakMap()
const images = shared[IMAGES]

const imaged = (files: ReadonlyArray<WorkspaceFile>) => {
  const known = images.get(files)
  if (known !== undefined) return known
  const image = imageOf(files)
  const made = { image, digest: digestOfImage(image) }
  images.set(files, made)
  return made
}

/** The fingerprint of a listing (sorted by path, as `walkTree` returns it). */
export const listingDigest = (files: ReadonlyArray<WorkspaceFile>): string => imaged(files).digest

/** The image of a listing (see `ListingImage`). */
export const listingImage = (files: ReadonlyArray<WorkspaceFile>): ListingImage => imaged(files).image

/** A file's kind as the digest takes it: 0 a plain file, 1 executable, 2 a link. */
export const kindOf = (f: WorkspaceFile): number => (f.link !== undefined ? 2 : (f.mode & 0o100) !== 0 ? 1 : 0)

/**
 * The count, the paths (NUL-separated: no path holds a NUL), each link's target (NUL-ended, in path order), and
 * per file its size, mtime and kind (`kindOf`) as 64-bit floats. The numbers go in as the bytes of one
 * Float64Array, not as decimal text: printing 10,000 fractional mtimes cost most of the digest of version 2 (a third
 * of the time now). The mark's version says which digest it holds.
 */
const imageOf = (files: ReadonlyArray<WorkspaceFile>): ListingImage => {
  const n = files.length
  const numbers = new Float64Array(n * 3)
  const paths: Array<string> = new Array(n)
  let targets = ""
  let k = 0
  for (const f of files) {
    const i = 3 * k
    paths[k++] = f.path
    numbers[i] = f.size
    numbers[i + 1] = f.mtimeMs
    // A chmod leaves the mtime alone: the execute bit is part of the fingerprint, as is a link's target.
    if (f.link !== undefined) {
      numbers[i + 2] = 2
      targets += `${f.link}\0`
    } else if ((f.mode & 0o100) !== 0) numbers[i + 2] = 1
  }
  return { text: `${n}\0${paths.join("\0")}\0\0${targets}`, numbers }
}

/** SHA-256 over an image's text (UTF-8) and then its numbers' bytes. */
const digestOfImage = (image: ListingImage): string =>
  updateText(createHash("sha256"), image.text).update(image.numbers).digest("hex")

/**
 * The mark's listing as kept (`LISTING_FILE`): the numbers' bytes in base64 on the first line, the image's text
 * after it. Text, so that it is written as every state file is; its digest is the mark's, so a file left from
 * another mark is never taken for this one.
 */
export const listingText = (image: ListingImage): string => listingPieces(image).join("")

/** The mark's listing as kept (see `listingText`), in pieces: the image's text is not copied into a new string. */
export const listingPieces = (image: ListingImage): ReadonlyArray<string> => [
  Buffer.from(image.numbers.buffer, image.numbers.byteOffset, image.numbers.byteLength).toString("base64"),
  "\n",
  image.text
]

/**
 * The listing a mark was made from, as kept: path `k`'s size, mtime and kind (`kindOf`) at `numbers[3k..3k+2]`,
 * each link's target by its index.
 */
export interface ListedThen {
  readonly paths: ReadonlyArray<string>
  readonly numbers: Float64Array
  readonly links: ReadonlyMap<number, string>
}

/**
 * The listing a mark was made from, from its kept text, when that text is the image whose digest the mark holds
 * (else undefined: no such file, another mark's, damaged).
 */
export const parseListing = (text: string, digest: string): ListedThen | undefined => {
  const nl = text.indexOf("\n")
  if (nl < 0) return undefined
  const bytes = Buffer.from(text.slice(0, nl), "base64")
  if (bytes.length % 24 !== 0) return undefined
  // Copied out: a Float64Array wants its bytes aligned, which a decoded buffer's need not be.
  const numbers = new Float64Array(bytes.length / 8)
  new Uint8Array(numbers.buffer).set(bytes)
  const image = { text: text.slice(nl + 1), numbers }
  if (digestOfImage(image) !== digest) return undefined
  const n = numbers.length / 3
  const head = image.text.indexOf("\0")
  const end = image.text.indexOf("\0\0", head)
  if (Number(image.text.slice(0, head)) !== n || end < 0) return undefined
  const paths = n === 0 ? [] : image.text.slice(head + 1, end).split("\0")
  if (paths.length !== n) return undefined
  const targets = image.text.slice(end + 2).split("\0")
  const links = new Map<number, string>()
  for (let k = 0, t = 0; k < n; k++) if (numbers[3 * k + 2] === 2) links.set(k, targets[t++] ?? "")
  return { paths, numbers, links }
}

/**
 * The fingerprint of what a run's configuration is made of, apart from `--services`: the project root, the
 * text of `agentsync.yaml` (or its absence) and every `AGENTSYNC_` variable but the token (the endpoint, the
 * timeouts and retries, which the full run refuses when malformed). The same print means the same API URL,
 * services tree and settings as the run that wrote the mark, which accepted them.
 */
export const configPrint = (
  projectRoot: string,
  projectText: string | undefined,
  env: Readonly<Record<string, string | undefined>>
): string => {
  const settings = Object.entries(env)
    .filter(([k, v]) => k.startsWith("AGENTSYNC_") && k !== "AGENTSYNC_TOKEN" && v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return createHash("sha256")
    .update(JSON.stringify([projectRoot, projectText ?? null, settings]))
    .digest("hex")
}

/** The text of the project file, undefined when there is none. */
export const projectText = (projectRoot: string): string | undefined => {
  try {
    return fs.readFileSync(nodePath.join(projectRoot, PROJECT_FILE), "utf8")
  } catch (e) {
    if ((e as { code?: unknown }).code === "ENOENT") return undefined
    throw e
  }
}

/** The mark for this API and tree, if one is kept, intact, and its base file untouched since. */
export const readMarkSync = (projectRoot: string, url?: string, root?: string): SettledMark | undefined => {
  let text: string
  try {
    text = fs.readFileSync(markPath(projectRoot), "utf8")
  } catch {
    return undefined
  }
  const mark = parseMark(text)
  if (mark === undefined || (url !== undefined && mark.url !== url) || (root !== undefined && mark.root !== root))
    return undefined
  const base = statOf(basePath(projectRoot))
  return base !== undefined && base[0] === mark.base[0] && base[1] === mark.base[1] ? mark : undefined
}

/** Whether the listing still is the one the mark was made from. */
export const matches = (mark: SettledMark, files: ReadonlyArray<WorkspaceFile>) =>
  mark.local_files === files.length && mark.listing === listingDigest(files)

/** The report of a run the settled mark answered: every file unchanged on both sides. */
export const settledReport = (command: "diff" | "push" | "pull", dryRun: boolean, mark: SettledMark) => ({
  command,
  dry_run: dryRun,
  remote_revision: mark.revision,
  revision: mark.revision,
  counts: { added: 0, modified: 0, removed: 0, unchanged: mark.local_files },
  actions: {},
  conflicts: [] as Array<string>,
  files: [] as Array<never>,
  local_files: mark.local_files,
  remote_files: mark.remote_files,
  files_hashed: 0,
  remote_manifest: "cached" as const,
  ...(command === "push" && !dryRun ? { bytes_sent: 0, files_sent: 0 } : {})
})

/**
 * What at the top of the services tree file sync leaves out unasked (see `leftOutAtTop`), from one `readdir` of
 * it; none when there is no tree: the settled run's answer (the full run asks its Workspace, `Workspace.leftOut`).
 */
export const leftOutSync = (root: string, membership: Membership): Array<string> =>
  leftOutAtTop(membership, listTopSync(root))

/** `report` with what the run leaves out at the top of the tree (the field only when there is something). */
export const withLeftOut = <R extends object>(
  report: R,
  leftOut: ReadonlyArray<string>
): R & { readonly left_out?: ReadonlyArray<string> } =>
  leftOut.length === 0 ? report : { ...report, left_out: leftOut }

/**
 * What a push or pull finishes or waits for before it plans (programs/files/prepare.ts `recover` and the files lock): a
 * lock, a pull's journal, staging folders, temp files. With any of them present the full program runs.
 */
const UNSETTLED = /^(files\.lock|pull-journal\.json|staging-|\.agentsync-tmp-)/

/**
 * How long the settled check waits for the server (at most the exchange deadline) before leaving the question to
 * the full run: generous, since a loaded server is slow, not gone; a server that is gone refuses at once.
 */
const CHECK_MS = 10_000

/** A header's one value (Node gives a list only for headers that repeat). */
const one = (value: string | ReadonlyArray<string> | undefined) => (typeof value === "string" ? value : value?.[0])

/** A conditional request under way: its answer, and when the request has been handed to the socket. */
interface Asked {
  /** The server's 304 with what it says of itself, or undefined for any other answer or a failure. */
  readonly answer: Promise<ManifestAnswer | undefined>
  /** Settles once the request is written out (or has failed): the server works on it from then on. */
  readonly sent: Promise<void>
}

/**
 * Asks for the head conditionally on the mark's revision: one attempt, no retry (the full run retries).
 */
const notModified = async (mark: SettledMark, token: string, ms: number): Promise<Asked> => {
  // TLS is loaded only for an https API (it is a tenth of this path's start).
  const get = mark.check.url.startsWith("https:") ? (await import("node:https")).get : http.get
  let written: () => void = () => undefined
  const sent = new Promise<void>((resolve) => {
    written = resolve
  })
  const answer = new Promise<ManifestAnswer | undefined>((resolve) => {
    const settle = (a: ManifestAnswer | undefined) => {
      written()
      resolve(a)
    }
    try {
      const req = get(
        mark.check.url,
        { agent: false, headers: { authorization: `Bearer ${token}`, "if-none-match": mark.check.etag } },
        (res) => {
          res.resume()
          settle(
            res.statusCode === 304
              ? {
                  formats: one(res.headers[ARCHIVE_FORMATS_HEADER]),
                  entries: one(res.headers[ENTRY_KINDS_HEADER]),
                  uploads: one(res.headers[UPLOAD_FORMS_HEADER])
                }
              : undefined
          )
        }
      )
      req.on("finish", written)
      req.setTimeout(ms, () => req.destroy())
      req.on("error", () => settle(undefined))
    } catch {
      // A token no header can carry: the full run says so.
      settle(undefined)
    }
  })
  return { answer, sent }
}

export interface SettledInput {
  readonly command: "push" | "pull"
  readonly dryRun: boolean
  readonly cwd: string
  /** `--services`, as given. */
  readonly services: string | undefined
  readonly env: Readonly<Record<string, string | undefined>>
  /** Given the listing when the head answered 304 but the tree moved, for the full program to plan from. */
  readonly onListing?: (listing: HandedListing) => void
}

/** The report of a no-change run when the settled mark answers it, else undefined (the full program decides). */
export const checkSettled = async (input: SettledInput) => {
  try {
    const { projectRoot, servicesOverride } = locateProject(input.cwd, input.services)
    const names = fs.readdirSync(stateDir(projectRoot))
    if (names.some((n) => UNSETTLED.test(n))) return undefined
    const mark = readMarkSync(projectRoot)
    const token = input.env.AGENTSYNC_TOKEN?.trim()
    if (mark === undefined || mark.config === null || token === undefined || token === "") return undefined
    if (configPrint(projectRoot, projectText(projectRoot), input.env) !== mark.config) return undefined
    if (servicesOverride === undefined ? mark.override : servicesOverride !== mark.root) return undefined
    // The exchange deadline (TRANSFER_ENV in domain/caps.ts), valid: the print vouches for the run that took it.
    const exchange = Number(input.env.AGENTSYNC_TIMEOUT_MS?.trim() || CHECK_MS)
    const asked = await notModified(mark, token, Math.min(CHECK_MS, exchange))
    // The request written out, the tree is walked while the server answers (its 304 takes about as long as the
    // walk of 10,000 files): the check takes the longer of the two, not their sum. A moved head wastes the walk.
    await asked.sent
    let ignore: string | undefined
    try {
      ignore = readRegularText(nodePath.join(mark.root, IGNORE_FILE))
    } catch {
      // Left to the full run, which says why it cannot be read.
      return undefined
    }
    const membership = makeMembership(ignore ?? "")
    const files = walkTree(mark.root, membership)
    const answer = await asked.answer
    if (answer === undefined) return undefined
    // An empty tree is left to the full run, which checks that the services path is there at all; so is one with a
    // special file, which the full run names as not carried.
    if (files.length === 0 || specialsOf(files).length > 0 || !matches(mark, files)) {
      // Stamped before the program reads any file of it (see `listingClock`).
      const { onListing } = input
      if (onListing !== undefined) {
        const at = listingClock(projectRoot, files)
        onListing({ root: mark.root, files, at, revision: mark.revision, base: mark.base, answer })
        // What the program reads first from the mark's revision, read on the thread pool while it loads.
        const dir = stateDir(projectRoot)
        readAhead([HEAD_FILE, BASE_FILE, LISTING_FILE].map((name) => nodePath.join(dir, name)))
      }
      return undefined
    }
    return withLeftOut(settledReport(input.command, input.dryRun, mark), leftOutSync(mark.root, membership))
  } catch {
    return undefined
  }
}
