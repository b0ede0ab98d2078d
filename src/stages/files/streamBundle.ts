/** A first upload's archive: each listed file read once, hashed as it is archived (equal content sent once, its other paths named by the trailer), and the trailer made of what was read, sent last. */
import { Effect, Option, Stream } from "effect"
import { identity } from "effect/Function"
import { sha256 } from "../../domain/hash.js"
import { type FileEntry, fileEntry, isExecutableMode, linkEntry } from "../../domain/model.js"
import type { IoError, TarballUnsafe } from "../../errors.js"
import { type Progress, silentProgress } from "../../services/Progress.js"
import { type WorkspaceFile, type WorkspaceShape, workspaceAt } from "../../services/Workspace.js"
import type { ReadInto } from "../../services/WorkspaceRead.js"
import { bufferPool, type Compression, compress, LINK_LEVEL, recordBatch, tarOf } from "./archive.js"
import { batched, changed, linkTargets, POOLED_BYTES, readOf } from "./bundle.js"

export interface StreamBundleOptions {
  readonly servicesPath: string
  /** The files to carry as listed (regular files and links the tree carries), sorted by path. */
  readonly files: ReadonlyArray<WorkspaceFile>
  /** Records placed before the files (an upload's lead entry). */
  readonly prelude: ReadonlyArray<Uint8Array>
  /** The record placed after the files, made from their entries as read (in the order of `files`). */
  readonly trailer: (entries: ReadonlyArray<FileEntry>) => Uint8Array
  /**
   * What any earlier attempt read (`entries` of the last attempt's `streamBundle`, which start from its own pins):
   * a file read otherwise this time fails the bundle, as a changed file does, so that a retry never names other
   * content than any attempt it repeats, however far each got.
   */
  readonly pinned?: ReadonlyArray<FileEntry | undefined>
  readonly progress?: Progress
  /** The format and level (see `compressionFor`); default gzip at `LINK_LEVEL`. */
  readonly compression?: Compression
  /** Where stored members' buffers come from (see `BundleOptions.members`). */
  readonly members?: (size: number) => Buffer
}

export interface StreamedBundle {
  readonly stream: Stream.Stream<Uint8Array, IoError | TarballUnsafe>
  /**
   * Files whose records the stream has carried so far: a regular file whose bytes an earlier record of the same stream
   * carried is named by the trailer only (see `streamBundle`).
   */
  readonly sent: () => number
  /**
   * `entries[i]`: `files[i]` as read and archived, or as pinned (an earlier attempt read it); filled as the stream
   * is consumed, whole once it has ended.
   */
  readonly entries: ReadonlyArray<FileEntry | undefined>
}

/**
 * A reproducible archive of the listed files, as `bundle` makes (same records, batches and compression), except
 * that no hash is known before: each file is read straight into its record and hashed there, so the bytes sent
 * are exactly the bytes hashed. A file whose size is not the listed one, or a link whose target is not, fails it.
 */
export const streamBundle = (options: StreamBundleOptions): StreamedBundle => {
  // A pinned file counts as read from the start: an attempt cut short carries what earlier ones read to the next.
  const entries: Array<FileEntry | undefined> =
    options.pinned === undefined ? new Array(options.files.length) : [...options.pinned]
  const counts = { sent: 0 }
  const stream = Stream.unwrap(
    Effect.map(workspaceAt(options.servicesPath), (workspace) => streamFrom(workspace, options, entries, counts))
  )
  return { stream, entries, sent: () => counts.sent }
}

/**
 * The batch's records without those of `dropped` files (regular files whose bytes an earlier record carried): the
 * others laid again in a buffer of their own, their bytes copied over; the batch's buffer goes back to the pool.
 */
const without = (
  laid: ReadonlyArray<RecordOf>,
  made: { readonly buffer: Buffer; readonly slots: ReadonlyArray<Buffer> },
  dropped: ReadonlyArray<boolean>,
  pool: ReturnType<typeof bufferPool>
): Buffer | undefined => {
  const kept = laid.filter((_, i) => dropped[i] !== true)
  const from = made.slots.filter((_, i) => dropped[i] !== true)
  // Taken before the batch's buffer goes back, so the two are never one.
  const again = kept.length === 0 ? undefined : recordBatch(kept, pool.take)
  again?.slots.forEach((slot, i) => {
    from[i]?.copy(slot)
  })
  pool.release(made.buffer)
  return again?.buffer
}

type RecordOf = Parameters<typeof recordBatch>[0][number]

const streamFrom = (
  workspace: WorkspaceShape,
  options: StreamBundleOptions,
  entries: Array<FileEntry | undefined>,
  counts: { sent: number }
) => {
  const progress = options.progress ?? silentProgress
  let first = 0
  const batches = batched(options.files).map((b) => {
    const at = first
    first += b.files.length
    return { ...b, at }
  })
  const pool = bufferPool(POOLED_BYTES)
  // The content of the regular files this stream has carried, by hash: the same bytes under another path are named by
  // the trailer and not sent again, which every server of the trailer form takes (content it received under another
  // path, at the same size, as a header upload's content it holds).
  const carried = new Set<string>()
  /** Takes `entry` as `files[i]`, unless an earlier attempt read that file otherwise. */
  const take = (i: number, entry: FileEntry) => {
    const was = options.pinned?.[i]
    if (
      was !== undefined &&
      (was.sha256 !== entry.sha256 ||
        was.size !== entry.size ||
        was.executable !== entry.executable ||
        was.link !== entry.link)
    )
      return false
    entries[i] = entry
    return true
  }
  const readBatch = ({ files, bytes, at }: (typeof batches)[number]) => {
    // Not a link any more, gone, or pointing elsewhere than listed: changed since.
    const targets = linkTargets(workspace, files, (f) =>
      f.link === undefined ? undefined : (target: string) => target === f.link
    )
    return Effect.flatMap(targets, (read) => {
      const laid = read.map((f) =>
        "target" in f ? f : { path: f.path, size: f.size, executable: isExecutableMode(f.mode) }
      )
      const { buffer, slots } = recordBatch(laid, pool.take)
      const reads: Array<ReadInto & { readonly into: Buffer }> = []
      files.forEach((f, i) => {
        const into = slots[i]
        if (f.link === undefined && into !== undefined) reads.push(readOf(f.path, into))
      })
      return Effect.flatMap(workspace.readInto(reads), (whole) => {
        let r = 0
        let dropped: Array<boolean> | undefined
        for (let i = 0; i < files.length; i++) {
          const f = files[i]
          if (f === undefined) continue
          if (f.link !== undefined) {
            if (!take(at + i, linkEntry(f.path, f.size, sha256(f.link)))) return Effect.fail(changed(workspace, f.path))
            continue
          }
          const slot = reads[r]
          // The file held exactly its listed size: what is hashed is what its record carries.
          if (slot === undefined || whole[r++] !== true) return Effect.fail(changed(workspace, f.path))
          const digest = sha256(slot.into)
          if (!take(at + i, fileEntry(f.path, f.size, digest, isExecutableMode(f.mode))))
            return Effect.fail(changed(workspace, f.path))
          if (!carried.has(digest)) carried.add(digest)
          else {
            dropped ??= new Array(files.length)
            dropped[i] = true
          }
        }
        progress.advance(bytes)
        const sent = dropped === undefined ? buffer : without(laid, { buffer, slots }, dropped, pool)
        counts.sent += files.length - (dropped?.filter((d) => d).length ?? 0)
        return Effect.succeed<Option.Option<Uint8Array>>(Option.fromNullable(sent))
      })
    })
  }
  const records = Stream.fromIterable(batches).pipe(Stream.mapEffect(readBatch), Stream.filterMap(identity))
  // Pulled only once every batch has been read: each entry is then set.
  const last = Stream.suspend(() => {
    const all = entries.filter((e): e is FileEntry => e !== undefined)
    return all.length === entries.length
      ? Stream.succeed(options.trailer(all))
      : Stream.dieMessage(`the archive read ${all.length} files of ${entries.length}`)
  })
  const body = Stream.concat(Stream.fromIterable(options.prelude), Stream.concat(records, last))
  const compression = options.compression ?? { format: "gzip", level: LINK_LEVEL }
  return compress(tarOf(body), compression, pool.release, options.members)
}
