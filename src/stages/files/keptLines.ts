/** The kept head manifest's version 4: its text, how a copy is read and checked, and a push's next head spliced from it. */
/*
 * `.agentsync/remote-manifest.json`, version 4: a sealed header line, then the manifest checksum's own lines
 * (`checksumLine`, in path order), so a push's next head, with its checksum, is this file's bytes with the changed
 * lines spliced in.
 *
 *   {"version":4,"url":U,"tenant":T,"revision":R,"checksum":C,"files":N,"seal":S}\n
 *   path\0size\0sha256\n            (a plain file; `\0x` before the newline for an executable, `\0l` for a link)
 *   …
 *
 * S is the SHA-256 of the header's text before `,"seal"`, C the SHA-256 of every byte after the header's newline
 * (the manifest checksum, by its definition), N the number of lines. The copy is checked against its own header's
 * checksum, which is the server's when a run wrote it: the seal and the checksum catch damage, not forgery. A copy
 * whose seal, checksum, line count or any line is not as the checksum's own form has it (lowercase hex, a size
 * without leading zeros, a valid path, strictly in path order) is not used (the head is fetched whole): never a
 * wrong plan.
 */
import { isAscii } from "node:buffer"
import { createHash } from "node:crypto"
import { Option, Schema } from "effect"
import { RemoteManifest } from "../../api/files.js"
import { strictlySortedBy } from "../../domain/diff.js"
import { byPath, checksumLine, sha256 } from "../../domain/hash.js"
import { type FileEntry, isRelPath, Sha256 } from "../../domain/model.js"
import { hasLoneSurrogate } from "../../domain/text.js"

const OPEN = '{"version":4,'
const SEAL = ',"seal":"'
/** The shortest line: a one-byte path, a one-digit size, a hash, three separators. */
const SHORTEST_LINE = 68
/** Lines are handed on in batches of about this many UTF-16 units (one piece per line costs more than the lines). */
const BATCH = 65536

export interface KeptHeader {
  readonly url: string
  readonly tenant: string
  readonly revision: string
  readonly checksum: string
  readonly files: number
}

/** The header line of a version 4 copy, its newline included. */
export const keptHeader = (h: KeptHeader): string => {
  const sealed = `${OPEN}"url":${JSON.stringify(h.url)},"tenant":${JSON.stringify(h.tenant)},"revision":${JSON.stringify(h.revision)},"checksum":${JSON.stringify(h.checksum)},"files":${h.files}`
  return `${sealed}${SEAL}${sha256(sealed)}"}\n`
}

const lineOf = (e: FileEntry) =>
  checksumLine(e.path, e.size, e.sha256, e.link === true ? "link" : e.executable === true ? "executable" : "file")

/** The lines of a tree, in path order (the checksum's order), as a few large pieces. */
export const linesOf = (entries: ReadonlyArray<FileEntry>): ReadonlyArray<string> => {
  const sorted = strictlySortedBy(entries, (e) => e.path) ? entries : [...entries].sort(byPath)
  const pieces: Array<string> = []
  let batch = ""
  for (const e of sorted) {
    batch += lineOf(e)
    if (batch.length >= BATCH) {
      pieces.push(batch)
      batch = ""
    }
  }
  if (batch !== "") pieces.push(batch)
  return pieces
}

/** Whether a kept copy's bytes are of version 4. */
export const isKeptLines = (bytes: Buffer): boolean =>
  bytes.length > OPEN.length && bytes.toString("latin1", 0, OPEN.length) === OPEN

const decodeHeader = Schema.decodeUnknownOption(
  Schema.parseJson(
    Schema.Struct({
      version: Schema.Literal(4),
      url: Schema.String,
      tenant: Schema.String,
      revision: Schema.String,
      checksum: Sha256,
      files: Schema.NonNegativeInt
    })
  )
)

/** Whether texts (paths, or a copy's text pieces) can be kept as UTF-8: a tree with a path that cannot has no copy. */
export const keepable = (paths: Iterable<string>): boolean => {
  // A lone surrogate would read back from UTF-8 as another path (U+FFFD).
  for (const p of paths) if (hasLoneSurrogate(p)) return false
  return true
}

/** Whether the 64 characters of `text` from `at` are lowercase hex digits. */
const isHexAt = (text: string, at: number) => {
  for (let i = at; i < at + 64; i++) {
    const c = text.charCodeAt(i)
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false
  }
  return true
}

/** The body of a version 4 copy and where each entry's line starts (one more: the end), for `splicedHead`. */
interface Lines {
  readonly body: Buffer
  readonly starts: Uint32Array
}

// The lines of each head read from a version 4 copy.
const held = new WeakMap<RemoteManifest, Lines>()

/**
 * The entries of `files` lines, and the byte offset where each starts (one more: the end); undefined for anything but
 * that many lines as `checksumLine` makes them, of valid paths in strict path order (so the copy's bytes are the
 * lines `linesOf` would make of its entries, and its checksum theirs). Read from the body's text, decoded once (latin1 when ASCII, where a character is a
 * byte): a path or hash is then a slice of it, where a decode per field took twice the time of the whole JSON of
 * version 3.
 */
const parseLines = (body: Buffer, files: number): { entries: Array<FileEntry>; starts: Uint32Array } | undefined => {
  if (files * SHORTEST_LINE > body.length) return undefined
  const ascii = isAscii(body)
  const text = ascii ? body.toString("latin1") : body.toString("utf8")
  const entries: Array<FileEntry> = new Array(files)
  const starts = new Uint32Array(files + 1)
  let at = 0
  // Where `at` is in bytes: the same but past a character of more than one byte.
  let byte = 0
  let previous = ""
  for (let i = 0; i < files; i++) {
    starts[i] = byte
    const nul = text.indexOf("\0", at)
    if (nul <= at) return undefined
    let size = 0
    let k = nul + 1
    for (let c = text.charCodeAt(k); c >= 48 && c <= 57 && k - nul <= 15; c = text.charCodeAt(++k))
      size = size * 10 + c - 48
    // After the size: a NUL, 64 hex digits and the line's end (one character at least).
    if (k === nul + 1 || text.charCodeAt(k) !== 0 || k + 66 > text.length) return undefined
    // No leading zero: `String(size)` is the size's only form.
    if (k - nul > 2 && text.charCodeAt(nul + 1) === 48) return undefined
    const end = k + 65
    if (!isHexAt(text, k + 1)) return undefined
    const path = text.slice(at, nul)
    if (!isRelPath(path) || (i > 0 && !(previous < path))) return undefined
    previous = path
    const sha256 = text.slice(k + 1, end)
    const c = text.charCodeAt(end)
    const kind = c === 0 && text.charCodeAt(end + 2) === 10 ? text.charCodeAt(end + 1) : -1
    if (c === 10) entries[i] = { path, size, sha256 }
    else if (kind === 120) entries[i] = { path, size, sha256, executable: true }
    else if (kind === 108) entries[i] = { path, size, sha256, link: true }
    else return undefined
    const next = c === 10 ? end + 1 : end + 3
    byte += ascii ? next - at : Buffer.byteLength(path) + (next - nul)
    at = next
  }
  if (at !== text.length || byte !== body.length) return undefined
  starts[files] = byte
  return { entries, starts }
}

/** The head a version 4 copy keeps, if it is intact and of this API (see the module's comment); else undefined. */
export const readKeptLines = (bytes: Buffer, url: string): RemoteManifest | undefined => {
  const newline = bytes.indexOf(10)
  if (newline < 0) return undefined
  const line = bytes.toString("utf8", 0, newline)
  const at = line.lastIndexOf(SEAL)
  if (at < 0 || !line.endsWith('"}') || sha256(line.slice(0, at)) !== line.slice(at + SEAL.length, -2)) return undefined
  const header = Option.getOrUndefined(decodeHeader(line))
  if (header === undefined || header.url !== url) return undefined
  const body = bytes.subarray(newline + 1)
  if (sha256(body) !== header.checksum) return undefined
  const lines = parseLines(body, header.files)
  if (lines === undefined) return undefined
  const { tenant, revision, checksum } = header
  const manifest = new RemoteManifest(
    { tenant, revision, entries: lines.entries, checksum },
    { disableValidation: true }
  )
  held.set(manifest, { body, starts: lines.starts })
  return manifest
}

/**
 * The checksum of `head`'s tree with `set` put in and `deleted` taken out (a path in both is set, as
 * `resultingTree` has it), and that tree's lines as pieces, from the bytes of the version 4 copy `head` was read
 * from: the changed lines made, every other byte the copy's own, hashed as they are. Undefined for a head not read
 * so (fetched, or from an older copy), or for a set path that cannot be kept (`keepable`): `manifestChecksum` and
 * `keptTextFor` then make both from the entries.
 */
export const splicedHead = (
  head: RemoteManifest,
  set: ReadonlyArray<FileEntry>,
  deleted: ReadonlyArray<string>
): { readonly checksum: string; readonly lines: ReadonlyArray<Uint8Array> } | undefined => {
  const kept = held.get(head)
  if (kept === undefined || !keepable(set.map((e) => e.path))) return undefined
  const entries = head.entries
  const changes = new Map<string, FileEntry | undefined>()
  for (const path of deleted) changes.set(path, undefined)
  for (const e of set) changes.set(e.path, e)
  // By UTF-16 code units, as `<` orders paths.
  const paths = [...changes.keys()].sort()
  const pieces: Array<Uint8Array> = []
  let from = 0 // the body's bytes before this are in the pieces
  let low = 0 // every entry before this sorts before the next change
  for (const path of paths) {
    let hi = entries.length
    while (low < hi) {
      const mid = (low + hi) >>> 1
      if ((entries[mid]?.path ?? "") < path) low = mid + 1
      else hi = mid
    }
    const start = kept.starts[low] ?? kept.body.length
    if (start > from) pieces.push(kept.body.subarray(from, start))
    from = start
    if (entries[low]?.path === path) from = kept.starts[++low] ?? kept.body.length
    const entry = changes.get(path)
    if (entry !== undefined) pieces.push(Buffer.from(lineOf(entry), "utf8"))
  }
  if (from < kept.body.length) pieces.push(kept.body.subarray(from))
  const hash = createHash("sha256")
  for (const piece of pieces) hash.update(piece)
  return { checksum: hash.digest("hex"), lines: pieces }
}

/**
 * A version 4 copy's text from a header and lines as `splicedHead` gives them, made once the revision is known (the
 * header is the part that names it).
 */
export const keptOfLines =
  (
    url: string,
    head: { readonly tenant: string; readonly checksum: string; readonly files: number },
    lines: ReadonlyArray<Uint8Array>
  ) =>
  (revision: string): ReadonlyArray<string | Uint8Array> => [keptHeader({ url, revision, ...head }), ...lines]
