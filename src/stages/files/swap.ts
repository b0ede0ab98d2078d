/** The swap of a pull: verified files renamed into the tree, what they replace or delete kept in a backup first, every path old or new at every instant. */

import * as nodePath from "node:path"
import { Effect, Schema } from "effect"
import { IoError, ioError as io } from "../../errors.js"
import { type ProjectFileState, stateOf } from "../../services/FileState.js"
import { Journal } from "../../services/FileStateSwap.js"

export { Journal, makeDirs } from "../../services/FileStateSwap.js"

const JOURNAL = "pull-journal.json"

/** The error of a swap that cannot be finished: it names the command that puts the old files back. */
const unfinished = (state: ProjectFileState, journal: Journal) => (e: IoError) =>
  io(
    journal.servicesPath,
    `cannot finish the pull (journal ${state.path(JOURNAL)}); fix the cause and run it again, or put back the files it replaced with \`agentsync files restore ${nodePath.basename(journal.backup)}\``
  )(e.cause ?? e)

/** Runs the swap of a journal whose files are kept, then removes the journal and the staging folder. */
const finish = (state: ProjectFileState, journal: Journal): Effect.Effect<void, IoError> =>
  state
    .swapIn(journal)
    .pipe(
      Effect.mapError(unfinished(state, journal)),
      Effect.zipRight(state.remove(JOURNAL)),
      Effect.zipRight(state.removeStaging(journal.staging))
    )

/**
 * Finishes a swap that a killed or failed pull left half done (the journal is written before anything is kept or
 * renamed), so the tree converges to the pulled state. Returns whether there was anything to finish. When it
 * cannot be finished, the error names the command that puts the old files back.
 */
export const recoverPull = Effect.fn("swap.recover")(function* (projectRoot: string) {
  const state = yield* stateOf(projectRoot)
  const text = yield* state.read(JOURNAL)
  if (text === undefined) return false
  const journal = yield* Schema.decodeUnknown(Schema.parseJson(Journal))(text).pipe(
    Effect.mapError(
      (e) =>
        new IoError({
          path: state.path(JOURNAL),
          reason: `damaged pull journal (remove it and pull again): ${e.message}`
        })
    )
  )
  yield* Effect.mapError(state.keep(journal), unfinished(state, journal))
  yield* finish(state, journal)
  return true
})

/**
 * Writes the journal, keeps what the swap replaces or deletes in the backup, then swaps: uninterruptible, so an
 * interruption never leaves a journal without its staging. A backup that cannot be written (a full disk) refuses
 * the pull before any file of the tree has changed: the journal and the partial backup go, the error names the
 * backup, and the staging folder goes with its scope.
 */
export const swap = (projectRoot: string, journal: Journal): Effect.Effect<void, IoError> =>
  Effect.uninterruptible(
    Effect.gen(function* () {
      const state = yield* stateOf(projectRoot)
      yield* state.write(JOURNAL, JSON.stringify(journal))
      yield* state.keep(journal).pipe(
        Effect.catchAll((e) =>
          state.remove(JOURNAL).pipe(
            Effect.zipRight(state.removeBackup(nodePath.basename(journal.backup))),
            Effect.zipRight(
              Effect.fail(
                new IoError({
                  path: journal.backup,
                  reason: `cannot keep the files the pull would replace, so it changed nothing: ${e.reason} (${e.path})`,
                  cause: e.cause ?? e
                })
              )
            )
          )
        )
      )
      yield* finish(state, journal)
    })
  )
