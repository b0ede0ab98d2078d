/**
 * The settled mark in a program: read, kept and forgotten (its format and the check without Effect live in
 * settledCheck.ts). A later run whose listing has the same fingerprint, whose base file is untouched and whose
 * server answers 304 to the mark's revision has nothing to do: it reads no hash cache, base or kept manifest and
 * plans nothing. The fingerprint trusts size and mtime exactly as the hash cache does (no file modified at or after
 * its listing's stamp is ever vouched for).
 */
import * as nodePath from "node:path"
import { Effect, Either } from "effect"
import { PROJECT_FILE, ProjectFile, type SyncConfig } from "../../config.js"
import { decodeYamlFile } from "../../domain/formats.js"
import type { IoError } from "../../errors.js"
import { stateOf } from "../../services/FileState.js"
import { BASE_FILE, type WorkspaceFile } from "../../services/state.js"
import {
  configPrint,
  LISTING_FILE,
  type ListedThen,
  listingDigest,
  listingImage,
  listingPieces,
  MARK_FILE,
  parseListing,
  projectText,
  readMarkSync,
  type SettledMark
} from "./settledCheck.js"

export { matches, type SettledMark, settledReport } from "./settledCheck.js"

/** The mark for this API and tree, if one is kept, intact, and its base file untouched since. */
export const readMark = (projectRoot: string, url: string, root: string): Effect.Effect<SettledMark | undefined> =>
  Effect.sync(() => readMarkSync(projectRoot, url, root))

/**
 * The print of the configuration this run had, when the project file on disk still reads as the one it was
 * loaded from (else null: the settled check then leaves every run to the program).
 */
const printOf = (config: Pick<SyncConfig, "projectRoot" | "project">): string | null => {
  const file = nodePath.join(config.projectRoot, PROJECT_FILE)
  const text = projectText(config.projectRoot)
  const now = text === undefined ? Either.right({}) : decodeYamlFile(ProjectFile, { path: file, text })
  return Either.isRight(now) && JSON.stringify(now.right) === JSON.stringify(config.project)
    ? configPrint(config.projectRoot, text, process.env)
    : null
}

/**
 * Whether a file of the listing was modified at or after the listing's stamp (see `listingClock`): in the tick a
 * later write of the same size could share, so no mark vouches for the listing.
 */
export const racyListing = (listed: ReadonlyArray<WorkspaceFile>, stamp: number): boolean =>
  listed.some((f) => f.mtimeMs >= stamp)

/**
 * Records that the tree as `listed` (stamped `listedAt`), the base just written and the head `revision` agree,
 * under `config`. Nothing is recorded when a file of the listing is racy (its mtime could hide a later change),
 * and any kept mark is removed, so a mark never outlives the agreement it records.
 */
export const writeMark = (
  config: Pick<SyncConfig, "projectRoot" | "servicesPath" | "project">,
  fields: Pick<SettledMark, "url" | "tenant" | "revision" | "remote_files" | "check">,
  listed: ReadonlyArray<WorkspaceFile>,
  listedAt: number
): Effect.Effect<void, IoError> =>
  Effect.gen(function* () {
    const state = yield* stateOf(config.projectRoot)
    const base = yield* state.stat(BASE_FILE)
    if (base === undefined || racyListing(listed, listedAt)) return yield* state.remove(MARK_FILE)
    const root = nodePath.resolve(config.servicesPath)
    const mark: SettledMark = {
      version: 3,
      ...fields,
      root,
      listing: listingDigest(listed),
      local_files: listed.length,
      base,
      config: printOf(config),
      override: root !== nodePath.resolve(config.projectRoot, config.project.services ?? "services")
    }
    // The listing first: a mark is only ever read with the listing its digest names (see `readMarkListing`).
    yield* state.write(LISTING_FILE, listingPieces(listingImage(listed)))
    return yield* state.write(MARK_FILE, JSON.stringify(mark))
  })

/**
 * The listing `mark` was made from, kept beside it, when intact (undefined otherwise: only a slower run, which
 * compares nothing with it).
 */
export const readMarkListing = (projectRoot: string, mark: SettledMark): Effect.Effect<ListedThen | undefined> =>
  Effect.flatMap(stateOf(projectRoot), (state) =>
    Effect.map(state.read(LISTING_FILE), (text) => {
      const listing = text === undefined ? undefined : parseListing(text, mark.listing)
      return listing?.paths.length === mark.local_files ? listing : undefined
    })
  )

/** Forgets the mark: the next run plans in full. */
export const clearMark = (projectRoot: string): Effect.Effect<void, IoError> =>
  Effect.flatMap(stateOf(projectRoot), (state) => Effect.zipRight(state.remove(MARK_FILE), state.remove(LISTING_FILE)))
