/** The apply stage: download a pull's files into a private staging folder, verify them against the manifest, then swap them in with a backup. */
import { createHash, type Hash } from "node:crypto"
import * as nodePath from "node:path"
import { Effect, Exit, type Stream } from "effect"
import { CAPS, DOWNLOAD_FORMATS } from "../../domain/caps.js"
import { sha256 } from "../../domain/hash.js"
import type { FileEntry } from "../../domain/model.js"
import { type IoError, ioError, TarballUnsafe } from "../../errors.js"
import { stateOf } from "../../services/FileState.js"
import { StagedWriteFailed, type StageWriter } from "../../services/FileStateStage.js"
import { type Progress, silentProgress, withProgress } from "../../services/Progress.js"
import type { ReadingOptions, SyncApiError, Transient } from "../../services/SyncApi.js"
import { Workspace } from "../../services/Workspace.js"
import { readArchive } from "./archive.js"
import { type BackupPolicy, newRunId, pruneBackups, recordBackup } from "./backups.js"
import { recoverPull, swap } from "./swap.js"

export { recoverPull } from "./swap.js"

/**
 * How this stage reads a download (see `Download`): its pieces, and in a plain tar too (it verifies every file), so a
 * GET sent ahead for it must be read so too.
 */
export const READING = { reuse: true, formats: DOWNLOAD_FORMATS } satisfies ReadingOptions

/**
 * Fetches the archive of the paths `missing()` names (a retry asks again, for what is still missing) and
 * hands its body to `consume`; a body that breaks off fails with Transient and is fetched again. `reading` says how
 * `consume` uses the pieces: this stage's keeps none past its next pull but the views it holds (see `heldViews`).
 */
export type Download = <A, E>(
  missing: () => ReadonlyArray<string>,
  consume: (body: Stream.Stream<Uint8Array, Transient>) => Effect.Effect<A, E | Transient>,
  reading: ReadingOptions
) => Effect.Effect<A, E | SyncApiError>

export interface ApplyInput {
  readonly projectRoot: string
  readonly servicesPath: string
  /** Where the files of `write` come from: only they may be in the archive, each matching its entry. */
  readonly download: Download
  readonly write: ReadonlyArray<FileEntry>
  /** Files whose bytes are on disk already and whose executable bit changes: made so in place, nothing downloaded. */
  readonly chmod?: ReadonlyArray<FileEntry>
  readonly delete: ReadonlyArray<string>
  /** What the backup of this pull records as its cause (the revision pulled). */
  readonly cause?: string
  readonly backups?: BackupPolicy
  readonly progress?: Progress
  /**
   * Run once the swap is done, before an interrupt that came during it (the swap cannot be interrupted) is let in:
   * the caller's record that the files are in place (its interrupt line) is then true however the run ends.
   */
  readonly swapped?: Effect.Effect<void>
}

export interface ApplyResult {
  /** Files written, a mode changed in place included. */
  readonly written: number
  readonly deleted: number
  /** Where the replaced and deleted files were moved, when there were any. */
  readonly backup: string | undefined
  /** Backups removed by the policy. */
  readonly pruned: ReadonlyArray<string>
}

/** What the disk said about a staged file, as the pull's error: the file's path in the tree. */
const stagedError = (input: ApplyInput, path: string, cause: unknown) =>
  ioError(nodePath.join(input.servicesPath, path), "cannot write the staged file")(cause)

/**
 * Receives the files of `write` into `staging`, each verified against its manifest hash before the writer commits
 * it. Verified files stay across attempts: a download that breaks off is resumed with the files still missing.
 * The writer's calls are synchronous and throw what the disk throws (or what its thread met with an earlier file),
 * from inside the archive's reader: such a failure is the pull's IoError, never taken for an unsafe archive. Between
 * input chunks the reading waits for the writer's thread when it has too much in hand; once the download is read,
 * for every file it was given.
 */
const receive = (input: ApplyInput, writer: StageWriter, progress: Progress) =>
  Effect.suspend(() => {
    const expected = new Map(input.write.map((e) => [e.path, e]))
    const staged = new Set<string>()
    const missing = () => input.write.filter((e) => !staged.has(e.path)).map((e) => e.path)
    const consume = (body: Stream.Stream<Uint8Array, Transient>) => {
      let disk: IoError | undefined
      /** Runs a call of the writer; what the disk throws is kept, and the archive's reading stopped. */
      const onDisk = <A>(path: string, f: () => A): A => {
        try {
          return f()
        } catch (e) {
          disk = e instanceof StagedWriteFailed ? stagedError(input, e.path, e.cause) : stagedError(input, path, e)
          throw new TarballUnsafe({ reason: "stopped: the staged file could not be written", entry: path })
        }
      }
      return readArchive(
        body,
        {
          file: (path, _size, executable, link) => {
            const entry = expected.get(path)
            if (entry === undefined || staged.has(path))
              throw new TarballUnsafe({ reason: "file not asked for in this pull", entry: path })
            // The archive carries the mode the manifest promised, as it carries its bytes.
            if (executable !== (entry.executable === true))
              throw new TarballUnsafe({ reason: "mode does not match the manifest entry", entry: path })
            if (link !== (entry.link === true))
              throw new TarballUnsafe({
                reason: link ? "a symbolic link where the manifest has a file" : "a file where the manifest has a link",
                entry: path
              })
            const sink = onDisk(path, () => writer.open(entry))
            // A file whose bytes come in one piece (most small ones) is hashed in one call, without a Hash object.
            let hash: Hash | undefined
            let whole: string | undefined
            let size = 0
            return {
              write: (chunk) => {
                size += chunk.length
                if (size > entry.size)
                  throw new TarballUnsafe({ reason: "file larger than its manifest entry", entry: path })
                if (size === chunk.length && size === entry.size) whole = sha256(chunk)
                else {
                  hash ??= createHash("sha256")
                  hash.update(chunk)
                }
                onDisk(path, () => sink.write(chunk))
                progress.advance(chunk.length)
              },
              end: () => {
                if (size !== entry.size || (whole ?? (hash ?? createHash("sha256")).digest("hex")) !== entry.sha256)
                  throw new TarballUnsafe({ reason: "content does not match the manifest hash", entry: path })
                onDisk(path, sink.commit)
                staged.add(path)
              }
            }
          },
          flush: () => writer.room,
          // Every file is checked above: its path asked for, its mode and kind, its size and SHA-256.
          verifiesContent: true
        },
        CAPS,
        // What the download asks for, from the one place the request takes it: the reader never takes a format
        // (a plain tar) that was not asked for.
        READING.formats
      ).pipe(
        Effect.catchTag("TarballUnsafe", (e) => Effect.fail(disk ?? e)),
        // A file open when an attempt ends (a large one, arriving) is closed and removed; onExit runs on
        // interruption too.
        Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : writer.abandon))
      )
    }
    // What the reading keeps past a pull (the stored reader's member, a small file until verified) it holds.
    return input.download(missing, consume, READING).pipe(
      Effect.zipRight(Effect.mapError(writer.drain, (e) => stagedError(input, e.path, e.cause))),
      Effect.zipRight(
        Effect.suspend(() => {
          const left = missing()
          const [first] = left
          return first === undefined
            ? Effect.void
            : Effect.fail(
                new TarballUnsafe({
                  reason: `${left.length} file(s) of the manifest missing from the archive`,
                  entry: first
                })
              )
        })
      )
    )
  })

/**
 * What on disk stands in the way of a pull's writes that the plan does not remove (see `Workspace.obstacles`):
 * checked before any download, so such a pull is refused whole rather than left half done.
 */
export const obstacles = (
  write: ReadonlyArray<string>,
  deleted: ReadonlySet<string>
): Effect.Effect<ReadonlyArray<string>, IoError, Workspace> =>
  Effect.flatMap(Workspace, (workspace) => workspace.obstacles(write, deleted))

/**
 * Refuses writes below a symbolic link the same pull makes (a server could send `a` → `b` and then `a/x`): the
 * staging folder and the tree are only ever written through real folders. A tree the server accepts never has
 * them (a link is a file there), so only a hostile or broken server sends one.
 */
const belowALink = (write: ReadonlyArray<FileEntry>) =>
  Effect.suspend(() => {
    const links = new Set(write.filter((e) => e.link === true).map((e) => e.path))
    if (links.size === 0) return Effect.void
    for (const e of write) {
      for (let at = e.path.indexOf("/"); at !== -1; at = e.path.indexOf("/", at + 1)) {
        const ancestor = e.path.slice(0, at)
        if (links.has(ancestor))
          return Effect.fail(
            new TarballUnsafe({
              reason: `${ancestor} is a symbolic link in the pulled tree, and ${e.path} would be written below it`,
              entry: e.path
            })
          )
      }
    }
    return Effect.void
  })

/**
 * Streams the pull's files into a private staging folder under `.agentsync/`, accepting only the expected
 * regular files, each verified against its manifest hash; only when all of it checks out are they swapped into
 * the tree (see `swap`), what they replace or delete kept in a backup, and backups beyond the policy pruned.
 * A rejected or interrupted download leaves the tree untouched and no staging folder behind.
 */
export const apply = Effect.fn("apply")(function* (input: ApplyInput) {
  const progress = input.progress ?? silentProgress
  const servicesPath = nodePath.resolve(input.servicesPath)
  yield* belowALink(input.write)
  yield* recoverPull(input.projectRoot)
  const id = newRunId()
  const state = yield* stateOf(input.projectRoot)
  const backup = nodePath.join(state.backups, id)
  const write = input.write.map((e) => e.path)
  const chmod = (input.chmod ?? []).map((e) => ({ path: e.path, executable: e.executable === true }))
  // The staging folder lives as long as this scope, however it ends, unless the journal names it by then.
  yield* Effect.scoped(
    Effect.flatMap(state.staging(id), (staging) =>
      Effect.zipRight(
        write.length === 0
          ? Effect.void
          : withProgress(
              progress,
              "download",
              input.write.reduce((n, e) => n + e.size, 0),
              "bytes",
              Effect.flatMap(state.stageWriter(staging), (writer) => receive(input, writer, progress))
            ),
        Effect.uninterruptible(
          Effect.zipRight(
            swap(input.projectRoot, {
              staging,
              backup,
              servicesPath,
              write,
              delete: [...input.delete],
              ...(chmod.length === 0 ? {} : { chmod })
            }),
            input.swapped ?? Effect.void
          )
        )
      )
    )
  )
  const backedUp = yield* recordBackup(input.projectRoot, backup, `pull of ${input.cause ?? "a revision"}`)
  const pruned = backedUp && input.backups !== undefined ? yield* pruneBackups(input.projectRoot, input.backups) : []
  return {
    written: write.length + chmod.length,
    deleted: input.delete.length,
    backup: backedUp ? backup : undefined,
    pruned
  } satisfies ApplyResult
})
