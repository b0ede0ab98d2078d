/**
 * Canonical hashing: SHA-256 over a canonical encoding of an item's synced fields, of bytes, and of manifests; and text
 * held as pieces (`Text`), hashed or written as UTF-8 a chunk at a time.
 */
import * as crypto from "node:crypto"
import type { AccessRule, Agent, Content, FileEntry, Skill } from "./model.js"
import { isRecord } from "./record.js"

/** JSON with object keys sorted at every depth and `undefined` fields left out: one encoding per value. */
export const canonicalJson = (value: unknown): string => {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`
  if (isRecord(value)) {
    const keys = Object.keys(value)
      .filter((k) => value[k] !== undefined)
      .sort()
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(",")}}`
  }
  if (typeof value === "number" && !Number.isFinite(value)) throw new TypeError("non-finite number")
  return JSON.stringify(value) ?? "null"
}

/**
 * One-shot `crypto.hash` where Node has it (20.12 and later): no Hash object per call, about half the cost for the
 * few-KiB files of a tree, hashed one by one by the tens of thousands.
 */
export const sha256: (data: string | Uint8Array) => string =
  typeof crypto.hash === "function"
    ? (data) => crypto.hash("sha256", data, "hex")
    : (data) => crypto.createHash("sha256").update(data).digest("hex")

/** The UTF-16 units `eachUtf8Chunk` encodes at a time, into one buffer kept for it (three bytes a unit at most). */
const TEXT_CHUNK = 16_384
const textBytes = Buffer.allocUnsafe(3 * TEXT_CHUNK)

/**
 * A text as one string or as pieces in order (the text is their concatenation): a state file of a MB or so is made
 * of a few large strings, and handed on in pieces it is never concatenated, so V8 never copies it whole into one
 * flat string (a fresh MB each time a concatenation is read).
 */
export type Text = string | ReadonlyArray<string>

const isHigh = (unit: number) => unit >= 0xd800 && unit <= 0xdbff
const isLow = (unit: number) => unit >= 0xdc00 && unit <= 0xdfff

/**
 * Hands `sink` the UTF-8 bytes of `text`, a chunk at a time, through one buffer kept for it: the bytes of the
 * concatenated text, lone surrogates as U+FFFD as `Buffer.from` has them (a pair is encoded whole, within a piece or
 * across two). `sink` must be done with a chunk before it returns (the buffer is written again). `Buffer.from(text)`
 * and `hash.update(text)` each take fresh memory the size of the text, whose first touch costs 4-15 ms per MB where
 * page faults are dear (a VM); this costs under 1 ms per MB (Node 20 and 22).
 */
export const eachUtf8Chunk = (text: Text, sink: (bytes: Uint8Array) => void): void => {
  const pieces = typeof text === "string" ? [text] : text
  const encode = (s: string) => sink(textBytes.subarray(0, textBytes.write(s, 0, "utf8")))
  // A high surrogate that ended the piece before, encoded with the low one that may begin this piece.
  let carry = ""
  for (let k = 0; k < pieces.length; k++) {
    const piece = pieces[k] ?? ""
    if (piece.length === 0) continue
    let at = 0
    if (carry !== "") {
      if (isLow(piece.charCodeAt(0))) {
        encode(`${carry}${piece[0]}`)
        at = 1
      } else encode(carry)
      carry = ""
    }
    let to = piece.length
    if (k < pieces.length - 1 && to > at && isHigh(piece.charCodeAt(to - 1))) {
      carry = piece.slice(to - 1)
      to--
    }
    while (at < to) {
      let end = Math.min(at + TEXT_CHUNK, to)
      // A surrogate pair is encoded whole: a chunk never ends between its halves (each alone would be U+FFFD).
      if (end < to && isHigh(piece.charCodeAt(end - 1))) end--
      encode(piece.slice(at, end))
      at = end
    }
  }
  if (carry !== "") encode(carry)
}

/**
 * Feeds a text to a hash as its UTF-8 bytes, the same digest as `hash.update(text)` (of the pieces joined), a chunk at
 * a time (see `eachUtf8Chunk`). A push hashes several MB of text at once: the listing's image and the kept head (the
 * manifest checksum's batches of 64 KiB are no dearer as text).
 */
export const updateText = (hash: crypto.Hash, text: Text): crypto.Hash => {
  eachUtf8Chunk(text, (bytes) => hash.update(bytes))
  return hash
}

/** The hash of an item of one kind: the kind is part of the input so equal fields of two kinds differ. */
const hashOf = (kind: string, fields: unknown): string => sha256(`${kind}\n${canonicalJson(fields)}`)

const plain = <A extends object>(a: A): { [K in keyof A]: A[K] } => ({ ...a })

// The text an item was read from (`original`, `head`) is not one of its fields: two files that say the same
// thing in different words are the same item. Where an item lives (`form`, `path`, `format`) is. Its file's mode
// is compared on its own (a column read beside the key), so hashes stored before modes were kept still hold.
export const agentHash = (a: Agent): string => hashOf("agent", { ...plain(a), original: undefined, mode: undefined })
export const skillHash = (s: Skill): string => hashOf("skill", { ...plain(s), original: undefined, mode: undefined })
export const contentHash = (c: Content): string => hashOf("content", { ...plain(c), head: undefined, mode: undefined })
export const accessRuleHash = (r: AccessRule): string => hashOf("access_rule", plain(r))

/** The key of a content item: its source and slug. */
export const contentKey = (c: Pick<Content, "source" | "slug">): string => `${c.source}/${c.slug}`

/** The key of an access rule: one declaration per entity and access. */
export const accessRuleKey = (r: {
  readonly entity_type: string
  readonly entity_id: string
  readonly access: string
}): string => `${r.entity_type}:${r.entity_id}:${r.access}`

/** Orders file entries by path, as manifests are kept. */
export const byPath = (a: FileEntry, b: FileEntry) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)

/**
 * One entry's line of a manifest checksum: `path\0size\0sha256\n`, with `\0x` before the newline for an executable
 * file and `\0l` for a symbolic link (so a tree of plain files sums as it did before modes and links travelled, and a
 * server that would drop either refuses the push).
 */
export const checksumLine = (path: string, size: number, sha256: string, kind: "file" | "executable" | "link") =>
  kind === "link"
    ? `${path}\0${size}\0${sha256}\0l\n`
    : kind === "executable"
      ? `${path}\0${size}\0${sha256}\0x\n`
      : `${path}\0${size}\0${sha256}\n`

/** A manifest's checksum: over its entries sorted by path, one `checksumLine` each. */
export const manifestChecksum = (entries: ReadonlyArray<FileEntry>): string => {
  let sorted = true
  let previous = ""
  for (const e of entries) {
    if (e.path < previous) {
      sorted = false
      break
    }
    previous = e.path
  }
  const hash = crypto.createHash("sha256")
  // Lines are fed in batches: one update per line costs more than the hashing itself.
  let batch = ""
  for (const e of sorted ? entries : [...entries].sort(byPath)) {
    batch += checksumLine(
      e.path,
      e.size,
      e.sha256,
      e.link === true ? "link" : e.executable === true ? "executable" : "file"
    )
    if (batch.length >= 65536) {
      hash.update(batch)
      batch = ""
    }
  }
  return hash.update(batch).digest("hex")
}
