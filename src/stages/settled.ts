/**
 * The settled mark: a small record, kept in `.agentsync/`, that the local tree, the recorded base and the remote
 * head agreed at one revision, with the fingerprint of the listing (path, size, mtime of every file) that
 * agreed. A later run whose listing has the same fingerprint, whose base file is untouched and whose server
 * answers 304 to that revision has nothing to do: it reads no hash cache, base or kept manifest and plans
 * nothing. The fingerprint trusts size and mtime exactly as the hash cache does (no file modified within the
 * racy window is ever vouched for).
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { Effect, Schema } from "effect"
import type { IoError } from "../errors.js"
import { type WorkspaceFile, writeFileAtomic } from "../services/Workspace.js"
import { RACY_MS, stateDir } from "./bundle.js"
import { BASE_FILE } from "./diff.js"

const MARK_FILE = "files-settled.json"

const Mark = Schema.Struct({
  version: Schema.Literal(1),
  /** The API the agreement was reached with, and the services tree it holds for. */
  url: Schema.String,
  root: Schema.String,
  tenant: Schema.String,
  revision: Schema.String,
  /** SHA-256 of the listing: every member file's path, size and mtime, in path order. */
  listing: Schema.String,
  local_files: Schema.Number,
  remote_files: Schema.Number,
  /** The base file as written then: [size, mtimeMs]; any later write of it voids the mark. */
  base: Schema.Tuple(Schema.Number, Schema.Number)
})
export type SettledMark = typeof Mark.Type

const markPath = (projectRoot: string) => nodePath.join(stateDir(projectRoot), MARK_FILE)
const basePath = (projectRoot: string) => nodePath.join(stateDir(projectRoot), BASE_FILE)

/** The fingerprint of a listing (sorted by path, as `listFiles` returns it). */
export const listingDigest = (files: ReadonlyArray<WorkspaceFile>): string => {
  const hash = createHash("sha256")
  let chunk = ""
  for (const f of files) {
    chunk += `${f.path}\0${f.size}\0${f.mtimeMs}\n`
    if (chunk.length > 65536) {
      hash.update(chunk)
      chunk = ""
    }
  }
  return hash.update(chunk).digest("hex")
}

const statOf = (path: string): readonly [number, number] | undefined => {
  const st = fs.statSync(path, { throwIfNoEntry: false })
  return st === undefined ? undefined : [st.size, st.mtimeMs]
}

/** The mark for this API and tree, if one is kept, intact, and its base file untouched since. */
export const readMark = (projectRoot: string, url: string, root: string): Effect.Effect<SettledMark | undefined> =>
  Effect.sync(() => {
    let text: string
    try {
      text = fs.readFileSync(markPath(projectRoot), "utf8")
    } catch {
      return undefined
    }
    const decoded = Schema.decodeUnknownOption(Schema.parseJson(Mark))(text)
    if (decoded._tag === "None") return undefined
    const mark = decoded.value
    if (mark.url !== url || mark.root !== root) return undefined
    const base = statOf(basePath(projectRoot))
    return base !== undefined && base[0] === mark.base[0] && base[1] === mark.base[1] ? mark : undefined
  })

/** Whether the listing still is the one the mark was made from. */
export const matches = (mark: SettledMark, files: ReadonlyArray<WorkspaceFile>) =>
  mark.local_files === files.length && mark.listing === listingDigest(files)

/**
 * Records that the tree as `listed` (at `listedAt`), the base just written and the head `revision` agree.
 * Nothing is recorded when a file was modified within the racy window of its listing (its mtime could hide a
 * later change), and any kept mark is removed, so a mark never outlives the agreement it records.
 */
export const writeMark = (
  projectRoot: string,
  fields: Omit<SettledMark, "version" | "listing" | "local_files" | "base">,
  listed: ReadonlyArray<WorkspaceFile>,
  listedAt: number
): Effect.Effect<void, IoError> =>
  Effect.suspend(() => {
    const base = statOf(basePath(projectRoot))
    const racy = listed.some((f) => listedAt - f.mtimeMs <= RACY_MS)
    if (base === undefined || racy) return clearMark(projectRoot)
    const mark: SettledMark = {
      version: 1,
      ...fields,
      listing: listingDigest(listed),
      local_files: listed.length,
      base
    }
    return writeFileAtomic(markPath(projectRoot), JSON.stringify(mark))
  })

/** Forgets the mark: the next run plans in full. */
export const clearMark = (projectRoot: string): Effect.Effect<void> =>
  Effect.sync(() => fs.rmSync(markPath(projectRoot), { force: true }))
