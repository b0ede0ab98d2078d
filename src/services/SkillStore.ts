/** The SkillStore port: the skill manager's state under $AGENTSYNC_HOME (manifest, lock, cache clones, backups, run lock) and the tool homes. */
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as nodePath from "node:path"
import { Context, Effect, Layer } from "effect"
import { checkName } from "../domain/skills/guards.js"
import {
  emptyLock,
  emptyManifest,
  type Lock,
  type Manifest,
  parseLock,
  parseManifest,
  renderLock,
  renderManifest
} from "../domain/skills/model.js"
import { type InvalidInput, type IoError, ioError as io, ioKindOf, type SyncInProgress } from "../errors.js"
import * as ProcessLock from "./ProcessLock.js"
import { writeFileAtomic } from "./Workspace.js"

/** Tools whose home is known by default (`~/.<tool>`); any other safe name works the same way. */
export const KNOWN_TOOLS: ReadonlyArray<string> = ["claude", "codex", "cursor", "gemini", "opencode", "windsurf"]

export interface SkillStoreShape {
  /** `$AGENTSYNC_HOME`, default `~/.agentsync`. */
  readonly root: string
  readonly manifestPath: string
  readonly lockPath: string
  readonly readManifest: () => Effect.Effect<Manifest, InvalidInput | IoError>
  readonly writeManifest: (m: Manifest) => Effect.Effect<void, IoError>
  readonly readLock: () => Effect.Effect<Lock, InvalidInput | IoError>
  readonly writeLock: (l: Lock) => Effect.Effect<void, IoError>
  /** The cache clone of a source. */
  readonly cacheDir: (source: string) => string
  /** Where replaced copies are kept: a folder per run under `$AGENTSYNC_HOME/backups`. */
  readonly backupsDir: string
  /** The home of a tool: `AGENTSYNC_TOOL_HOME_<TOOL>` or `~/.<tool>`. */
  readonly toolHome: (tool: string) => Effect.Effect<string, InvalidInput>
  /** Runs `effect` holding the run lock, so that two runs never interleave; a held lock is `SyncInProgress`. */
  readonly withLock: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | SyncInProgress | IoError, R>
}

export class SkillStore extends Context.Tag("agentsync/SkillStore")<SkillStore, SkillStoreShape>() {}

const readText = (path: string) =>
  Effect.tryPromise({
    try: () =>
      fs.readFile(path, "utf8").catch((e: unknown) => {
        if (ioKindOf(e) === "NotFound") return undefined
        throw e
      }),
    catch: io(path, "cannot read")
  })

export interface StoreOptions {
  readonly root?: string | undefined
  readonly env?: Readonly<Record<string, string | undefined>> | undefined
}

export const make = (options: StoreOptions = {}): SkillStoreShape => {
  const env = options.env ?? process.env
  const userHome = env["HOME"] ?? os.homedir()
  const root = nodePath.resolve(options.root ?? env["AGENTSYNC_HOME"] ?? nodePath.join(userHome, ".agentsync"))
  const manifestPath = nodePath.join(root, "manifest.yaml")
  const lockPath = nodePath.join(root, "lock.yaml")
  const runLock = nodePath.join(root, "cache", ".sync.lock")

  const readManifest = Effect.fn("SkillStore.readManifest")(function* () {
    const text = yield* readText(manifestPath)
    if (text === undefined) return emptyManifest
    return yield* parseManifest(manifestPath, text)
  })

  const readLock = Effect.fn("SkillStore.readLock")(function* () {
    const text = yield* readText(lockPath)
    if (text === undefined) return emptyLock
    return yield* parseLock(lockPath, text)
  })

  const writeManifest = Effect.fn("SkillStore.writeManifest")((m: Manifest) =>
    writeFileAtomic(manifestPath, renderManifest(m))
  )
  const writeLock = Effect.fn("SkillStore.writeLock")((l: Lock) => writeFileAtomic(lockPath, renderLock(l)))

  const toolHome = Effect.fn("SkillStore.toolHome")(function* (tool: string) {
    const name = yield* checkName("tool", tool)
    const override = env[`AGENTSYNC_TOOL_HOME_${name.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`]
    return nodePath.resolve(override !== undefined && override !== "" ? override : nodePath.join(userHome, `.${name}`))
  })

  const withLock = <A, E, R>(effect: Effect.Effect<A, E, R>) => ProcessLock.withLock(runLock, "skill sync", effect)

  return {
    root,
    manifestPath,
    lockPath,
    readManifest,
    writeManifest,
    readLock,
    writeLock,
    cacheDir: (source) => nodePath.join(root, "cache", source),
    backupsDir: nodePath.join(root, "backups"),
    toolHome,
    withLock
  }
}

export const layer = (options: StoreOptions = {}): Layer.Layer<SkillStore> =>
  Layer.sync(SkillStore, () => make(options))
