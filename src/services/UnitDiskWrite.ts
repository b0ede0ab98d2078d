/** The local UnitDisk's writes: a unit made exactly its new content, each file atomically (temp file, flush, rename), a new folder unit staged whole beside it. */

import { randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as nodePath from "node:path"
import { Effect } from "effect"
import { held } from "../domain/held.js"
import { kindOf, type UnitFiles } from "../domain/skills/model.js"
import { type IoError, ioError as io } from "../errors.js"
import { removeFileAndPrune } from "./prune.js"
import { TEMP_PREFIX } from "./UnitDiskRead.js"

// One random prefix per process and a counter; opened exclusively, so an existing name is never reused.
const tempPrefix = `${TEMP_PREFIX}${randomBytes(6).toString("hex")}-`
let tempCounter = 0
const tempBeside = (full: string) =>
  nodePath.join(nodePath.dirname(full), `${tempPrefix}${(tempCounter++).toString(36)}`)

/** Writes one file (mode from its digest: executable or not, within the umask, as git does) or link at `path`, flushed. */
const place = async (path: string, digest: string, bytes: Uint8Array) => {
  if (kindOf(digest) === "link") {
    await fs.symlink(new TextDecoder().decode(bytes), path)
    return
  }
  const handle = await fs.open(path, "wx", kindOf(digest) === "exec" ? 0o777 : 0o666)
  try {
    await handle.writeFile(bytes)
    await handle.sync()
  } finally {
    await handle.close()
  }
}

export const rel2abs = (root: string, rel: string) => (rel === "" ? root : nodePath.join(root, ...rel.split("/")))

export interface UnitWrite {
  /** The unit root: a folder, or the file of a single-file unit. */
  readonly root: string
  readonly folder: boolean
  /** What the plan saw there (only these files are replaced or removed). */
  readonly previous: UnitFiles | undefined
  /** What the unit becomes; `undefined` removes it. */
  readonly content: UnitFiles | undefined
  /** The bytes of each file of `content` (a link's target for a link). */
  readonly bytes: ReadonlyMap<string, Uint8Array>
  /** Folders left empty are removed up to here, this one included unless `keepStopAt`. */
  readonly stopAt: string
  readonly keepStopAt?: boolean
}

/** A file of the new content with its bytes. */
interface Placed {
  readonly rel: string
  readonly digest: string
  readonly bytes: Uint8Array
}

/** Each file of `w.content` with its bytes; one given none is a fault of the caller (a defect), not a state of the disk. */
const placedOf = (w: UnitWrite): Effect.Effect<ReadonlyArray<Placed>> =>
  Effect.sync(() =>
    Object.entries(w.content ?? {}).map(([rel, digest]) => ({
      rel,
      digest,
      bytes: held(w.bytes.get(rel), `the bytes of ${rel} in a unit write of ${w.root}`)
    }))
  )

/** Makes the unit exactly `w.content` (see `UnitDiskShape.write`). */
export const writeUnit = (w: UnitWrite): Effect.Effect<void, IoError> =>
  Effect.flatMap(placedOf(w), (placed) => writePlaced(w, placed))

const writePlaced = (w: UnitWrite, placed: ReadonlyArray<Placed>): Effect.Effect<void, IoError> =>
  Effect.tryPromise({
    try: async () => {
      const content = w.content ?? {}
      const previous = w.previous ?? {}
      if (
        w.folder &&
        w.previous === undefined &&
        w.content !== undefined &&
        !(await fs.lstat(w.root).then(
          () => true,
          () => false
        ))
      ) {
        await fs.mkdir(nodePath.dirname(w.root), { recursive: true })
        const staging = tempBeside(w.root)
        await fs.mkdir(staging)
        try {
          for (const { rel, digest, bytes } of placed) {
            const full = rel2abs(staging, rel)
            await fs.mkdir(nodePath.dirname(full), { recursive: true })
            await place(full, digest, bytes)
          }
          await fs.rename(staging, w.root)
        } catch (e) {
          await fs.rm(staging, { recursive: true, force: true })
          throw e
        }
        return
      }
      for (const { rel, digest, bytes } of placed) {
        if (previous[rel] === digest) continue
        const full = rel2abs(w.root, rel)
        // A file of the old content where a folder is needed now goes first.
        const segs = rel.split("/")
        for (let i = 1; i < segs.length; i++) {
          const above = segs.slice(0, i).join("/")
          if (previous[above] !== undefined && content[above] === undefined)
            await fs.rm(rel2abs(w.root, above), { force: true })
        }
        await fs.mkdir(nodePath.dirname(full), { recursive: true })
        const tmp = tempBeside(full)
        try {
          await place(tmp, digest, bytes)
          await fs.rename(tmp, full)
        } catch (e) {
          await fs.rm(tmp, { force: true })
          throw e
        }
      }
      for (const rel of Object.keys(previous))
        if (content[rel] === undefined) await removeFileAndPrune(rel2abs(w.root, rel), w.stopAt, w.keepStopAt !== true)
    },
    catch: io(w.root, "cannot write")
  })
