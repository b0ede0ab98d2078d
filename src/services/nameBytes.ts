/** Names on disk that are not UTF-8: how a walk finds them, shows them, and refuses them. Plain code, no Effect. */
import { isUtf8 } from "node:buffer"
import * as fs from "node:fs"
import { byteShown, isHidden } from "../domain/text.js"

/** What a walk asks of one folder entry (a `Dirent` read as text, or one read as bytes and decoded). */
export interface Entry {
  readonly name: string
  isDirectory(): boolean
  isFile(): boolean
  isSymbolicLink(): boolean
  isFIFO(): boolean
  isSocket(): boolean
  isBlockDevice(): boolean
  isCharacterDevice(): boolean
}

/**
 * Whether a folder's entries, read as text, may hold a name that is not UTF-8: `readdir` decodes each invalid byte as
 * U+FFFD, so a folder without one holds none (a string test per name, the only cost a walk pays for this).
 */
export const mayHoldUnreadable = (entries: ReadonlyArray<Entry>): boolean => {
  for (const e of entries) if (e.name.includes("\uFFFD")) return true
  return false
}

/**
 * A name's bytes as text that shows them, one to one: printable ASCII and UTF-8 characters as they are, any other
 * byte as `\xNN`, and so is each byte of `\`, `"` and of a control, format or separator character, so that no name
 * shows as another (a real `a\xe9` is `a\x5cxe9`) and a quoted name cannot end its quotes or reorder its line.
 */
export const escapeName = (raw: Uint8Array): string => {
  let out = ""
  let at = 0
  while (at < raw.length) {
    const b = raw[at] ?? 0
    // The longest valid UTF-8 sequence starting here (1 to 4 bytes), else the byte alone, escaped.
    const len = b < 0x80 ? 1 : b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc2 ? 2 : 0
    const seq = len === 0 ? undefined : raw.subarray(at, at + len)
    const text =
      seq === undefined || seq.length !== len
        ? undefined
        : len === 1
          ? b >= 0x20 && b < 0x7f && b !== 0x5c && b !== 0x22
            ? String.fromCharCode(b)
            : undefined
          : isUtf8(seq)
            ? Buffer.from(seq).toString("utf8")
            : undefined
    // A character that would change how the line around it reads (`isHidden`) is shown by its bytes though UTF-8.
    if (text !== undefined && !isHidden(text)) {
      out += text
      at += len
    } else {
      // A character shown by its bytes is shown by all of them; a byte that starts none, alone.
      const n = text === undefined ? 1 : len
      for (let i = at; i < at + n; i++) out += byteShown(raw[i] ?? 0)
      at += n
    }
  }
  return out
}

/**
 * A walk's path of UTF-8 names (the folder holding a name it refused or left out), each name shown as `escapeName`
 * shows one, so that a control character in a folder's name reaches no terminal raw either.
 */
export const escapePath = (path: string): string =>
  path
    .split("/")
    .map((name) => escapeName(Buffer.from(name)))
    .join("/")

/** How to fix a name that is not UTF-8 where file sync takes it. */
export const UNREADABLE_FIX =
  "rename it, or leave it out in .agentsyncignore (where `*` matches the bytes that are not UTF-8)"

/** What to do about a name the walk cannot carry (see `UnreadableName`). */
export const UNREADABLE_NAME = `no synced path can hold it; ${UNREADABLE_FIX}`

/**
 * What a name `walkTree` left out unread (see its `unread`, and `UnreadName`) holds up, as `validate` and `doctor` warn of it: the
 * commands that refuse it, and what to do.
 */
export const UNREAD_NAME = `files push, pull and diff refuse to run while it is there (no synced path can hold it); ${UNREADABLE_FIX}`

/**
 * A name in a walked folder whose bytes are not UTF-8. No path can name it (paths are UTF-8 on the wire and in the
 * database; decoded, each bad byte is a U+FFFD that names another file or none), so a walk that would take it refuses
 * the whole run rather than leave it out, which would delete on the other side whatever it was renamed from.
 */
export class UnreadableName extends Error {
  constructor(
    /** The folder holding it, as the walk shows it (relative to where the walk started). */
    readonly folder: string,
    /** The name as text that shows its bytes (`escapeName`). */
    readonly shown: string,
    /** What the walk cannot do with it, and what to do. */
    readonly reason: string
  ) {
    super(`${folder}: the name "${shown}" is not UTF-8: ${reason}`)
    this.name = "UnreadableName"
  }
}

/**
 * A name that is not UTF-8 which a walk left out unread because its caller does not read it (local sync, `validate`),
 * though file sync's walk takes it and so refuses its run there (see `walkTree`).
 */
export interface UnreadName {
  /** The folder holding it, as the walk shows it (relative to where the walk started). */
  readonly folder: string
  /** The name as text that shows its bytes (`escapeName`). */
  readonly shown: string
  /** Whether it names a folder (some path below it is taken). */
  readonly isFolder: boolean
}

/**
 * A folder's entries read again as bytes: each UTF-8 name decoded, each other name handed to `unreadable` (which
 * throws to refuse it, or returns to leave it out) and not returned. Called only when `mayHoldUnreadable` says so.
 */
export const entriesByBytes = (dir: string, unreadable: (raw: Buffer, entry: Entry) => void): Array<Entry> => {
  const out: Array<Entry> = []
  for (const d of fs.readdirSync(dir, { withFileTypes: true, encoding: "buffer" })) {
    const raw = d.name
    const entry: Entry = {
      name: raw.toString("utf8"),
      isDirectory: () => d.isDirectory(),
      isFile: () => d.isFile(),
      isSymbolicLink: () => d.isSymbolicLink(),
      isFIFO: () => d.isFIFO(),
      isSocket: () => d.isSocket(),
      isBlockDevice: () => d.isBlockDevice(),
      isCharacterDevice: () => d.isCharacterDevice()
    }
    if (isUtf8(raw)) out.push(entry)
    else unreadable(raw, entry)
  }
  return out
}
