/** What changed inside files (`-p`): a unified diff for text, size and hash for anything else, for files and local sync. */
import { createHash } from "node:crypto"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import { plan } from "../domain/localPlan.js"
import { fileMode, gitMode, isExecutableMode, type SyncKind } from "../domain/model.js"
import { isText, unified } from "../domain/patch.js"
import { DatabaseError } from "../errors.js"
import * as Repos from "../services/repos/index.js"
import type { SyncApiClientShape } from "../services/SyncApi.js"
import { Workspace, workspaceAt } from "../services/Workspace.js"
import { readArchive } from "../stages/files/archive.js"
import type { FileReportItem } from "./files.js"
import { readDiskFiles, readSides } from "./localSync/read.js"

/** Files larger than this are shown by size and hash only, as binaries are. */
export const PATCH_MAX_BYTES = 1024 * 1024

export interface FilePatch {
  readonly path: string
  /**
   * The unified diff (`--- a/… +++ b/… @@ … @@`), or one line naming both sides by size and hash; after git's
   * `diff --git`, `old mode` and `new mode` lines when the executable bit changed.
   */
  readonly patch: string
  readonly binary: boolean
  /** Both present when the executable bit changed: git's modes, `100644` or `100755`. */
  readonly old_mode?: string
  readonly new_mode?: string
}

/** The executable bit of each side of a file present on both, when file sync compares modes. */
export interface PatchModes {
  readonly before: boolean
  readonly after: boolean
}

const described = (bytes: Uint8Array | undefined) =>
  bytes === undefined
    ? "absent"
    : `${bytes.length} bytes, sha256 ${createHash("sha256").update(bytes).digest("hex").slice(0, 12)}`

/**
 * The patch from `before` to `after` for one path (either side absent when the file is added or removed). Text
 * is UTF-8 without NUL bytes and at most PATCH_MAX_BYTES on both sides.
 */
export const patchOf = (
  path: string,
  before: Uint8Array | undefined,
  after: Uint8Array | undefined,
  modes?: PatchModes
): FilePatch => {
  const body = contentPatch(path, before, after)
  if (modes === undefined || modes.before === modes.after) return body
  const [old_mode, new_mode] = [gitMode(fileMode(modes.before)), gitMode(fileMode(modes.after))]
  const head = `diff --git a/${path} b/${path}\nold mode ${old_mode}\nnew mode ${new_mode}\n`
  return { ...body, patch: head + body.patch, old_mode, new_mode }
}

const contentPatch = (path: string, before: Uint8Array | undefined, after: Uint8Array | undefined): FilePatch => {
  // The same bytes on both sides (a mode-only change): no content lines, binary or not.
  if (before !== undefined && after !== undefined && Buffer.from(before).equals(after))
    return { path, binary: false, patch: "" }
  const textual = (b: Uint8Array | undefined) => b === undefined || (b.length <= PATCH_MAX_BYTES && isText(b))
  if (!textual(before) || !textual(after)) {
    return {
      path,
      binary: true,
      patch: `Binary files ${before === undefined ? "/dev/null" : `a/${path}`} and ${after === undefined ? "/dev/null" : `b/${path}`} differ (${described(before)} → ${described(after)})\n`
    }
  }
  // A byte order mark is kept and shown, as git shows it: a change that adds or drops one is a changed first line.
  const decode = (b: Uint8Array | undefined) =>
    b === undefined ? "" : new TextDecoder("utf-8", { ignoreBOM: true }).decode(b).replace(/^\uFEFF/, "<U+FEFF>")
  return {
    path,
    binary: false,
    patch: unified(
      { old: before === undefined ? undefined : path, new: after === undefined ? undefined : path },
      decode(before),
      decode(after)
    )
  }
}

/** The patches of the files a files diff found changed: the remote head's bytes (a/) against the local ones (b/). */
export const filePatches = Effect.fn("Patches.files")(function* (
  client: SyncApiClientShape,
  servicesPath: string,
  report: { readonly remote_revision: string | null; readonly files: ReadonlyArray<FileReportItem> }
) {
  const changed = report.files.filter((f) => f.status !== "Unchanged")
  const wanted = changed.filter((f) => f.remote_sha256 !== undefined).map((f) => f.path)
  const remote = new Map<string, Uint8Array>()
  if (report.remote_revision !== null && wanted.length > 0) {
    yield* client.download(
      report.remote_revision,
      () => wanted.filter((p) => !remote.has(p)),
      (body) =>
        readArchive(body, {
          file: (path) => {
            const chunks: Array<Uint8Array> = []
            return { write: (c) => void chunks.push(c), end: () => void remote.set(path, Buffer.concat(chunks)) }
          }
        })
    )
  }
  const ws = yield* workspaceAt(servicesPath)
  return yield* Effect.forEach(changed, (f) =>
    Effect.map(
      // A link's content is its target text, as the archive carries it.
      f.local_sha256 === undefined
        ? Effect.succeed(undefined)
        : f.local_link === true
          ? ws.readLink(f.path)
          : ws.readFile(f.path),
      (local) =>
        patchOf(
          f.path,
          remote.get(f.path),
          local,
          // Modes are compared where both sides hold a file (a link has none).
          f.local_sha256 === undefined ||
            f.remote_sha256 === undefined ||
            f.local_link === true ||
            f.remote_link === true
            ? undefined
            : { before: f.remote_executable === true, after: f.local_executable === true }
        )
    )
  )
})

/**
 * The patches of a local diff: the database's items rendered as files (a/) against the files on disk (b/), read
 * in one read-only transaction; what a sync to disk would write or remove, seen from the disk's side.
 */
export const localPatches = Effect.fn("Patches.local")(function* (kinds: ReadonlyArray<SyncKind>) {
  const files = yield* readDiskFiles(kinds)
  const sql = yield* SqlClient.SqlClient
  const plans = yield* sql
    .withTransaction(
      Effect.map(readSides(files, kinds, true), ({ disk, db }) =>
        plan({ direction: "ToDisk", dryRun: true, deleteOrphans: true }, disk, db, kinds)
      )
    )
    .pipe(
      Effect.mapError((e) =>
        e instanceof SqlError ? new DatabaseError({ reason: `cannot read the database: ${e.message}`, cause: e }) : e
      )
    )
  const ops = plans.flatMap((p) => p.disk)
  const shas = ops.flatMap((o) => (o._tag === "WriteBlob" ? [o.sha] : []))
  const blobs = shas.length > 0 ? yield* (yield* Repos.ItemFilesRepo).blobs(shas) : new Map<string, Uint8Array>()
  const ws = yield* Workspace
  const onDisk = (path: string) =>
    ws.readFile(path).pipe(
      Effect.map((b): Uint8Array | undefined => b),
      Effect.catchIf(
        (e) => e.kind === "NotFound",
        () => Effect.succeed(undefined)
      )
    )
  // Modes as the tree was read; a written file's mode is the one the sync would give it (0644 unless it says).
  const diskModes = new Map(files.raw.map((f) => [f.path, f.mode ?? 0o644]))
  const patches = yield* Effect.forEach(ops, (o) =>
    Effect.map(onDisk(o.path), (disk) => {
      const mode = o._tag === "Remove" ? undefined : (o.mode ?? 0o644)
      const there = diskModes.get(o.path)
      return patchOf(
        o.path,
        o._tag === "WriteText"
          ? new TextEncoder().encode(o.text)
          : o._tag === "WriteBlob"
            ? blobs.get(o.sha)
            : undefined,
        disk,
        mode === undefined || there === undefined || disk === undefined
          ? undefined
          : { before: isExecutableMode(mode), after: isExecutableMode(there) }
      )
    })
  )
  return patches.filter((p) => p.patch !== "")
})
