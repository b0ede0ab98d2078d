/** The SkillStore port: the skill manager's state under $AGENTSYNC_HOME (manifest, lock, cache clones, run lock) and the tool homes. */
import * as fsSync from "node:fs"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as nodePath from "node:path"
import { Context, Effect, Layer } from "effect"
import { checkName } from "../domain/skills/guards.js"
import { emptyLock, emptyManifest, type Lock, type Manifest, parseLock, parseManifest, renderLock, renderManifest } from "../domain/skills/model.js"
import { type InvalidInput, IoError, type SyncInProgress } from "../errors.js"
import { sha256 } from "../domain/hash.js"
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
  /** The home of a tool: `AGENTSYNC_TOOL_HOME_<TOOL>` or `~/.<tool>`. */
  readonly toolHome: (tool: string) => Effect.Effect<string, InvalidInput>
  /** Runs `effect` holding the run lock, so that two runs never interleave; a held lock is `SyncInProgress`. */
  readonly withLock: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | SyncInProgress | IoError, R>
}

/** A unit's files on disk: SHA-256 by path relative to the unit root (`""` for a single-file unit). */
export type DiskFiles = Record<string, string>

/** Litter that never belongs to a unit: editor swap files, OS metadata, interrupted atomic writes. */
const isLitter = (name: string) => name === ".DS_Store" || name === ".git" || name.startsWith(".agentsync-tmp-") || name.endsWith(".swp") || name.endsWith("~")

/** Hashes a unit on disk (see `snapshotUnit`), synchronously; throws what the file system throws. */
export const snapshotUnitSync = (abs: string, folder: boolean): DiskFiles | undefined => {
  if (!folder) {
    try {
      return { "": sha256(fsSync.readFileSync(abs)) }
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      if (code === "ENOENT" || code === "ENOTDIR") return undefined
      throw e
    }
  }
  const out: DiskFiles = {}
  let found = false
  const walk = (dir: string, rel: string): void => {
    let entries: Array<import("node:fs").Dirent>
    try {
      entries = fsSync.readdirSync(dir, { withFileTypes: true })
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      if (rel === "" && (code === "ENOENT" || code === "ENOTDIR")) return
      throw e
    }
    for (const d of entries) {
      if (isLitter(d.name)) continue
      const r = rel === "" ? d.name : `${rel}/${d.name}`
      if (d.isDirectory()) walk(nodePath.join(dir, d.name), r)
      else if (d.isFile()) {
        out[r] = sha256(fsSync.readFileSync(nodePath.join(dir, d.name)))
        found = true
      }
    }
  }
  walk(abs, "")
  return found ? out : undefined
}

/**
 * Hashes a unit on disk: a folder unit is every regular file under `abs` (symlinks are not followed), a file unit
 * is the file itself; `undefined` when absent. Synchronous on purpose: thousands of small files hash several times
 * faster without the thread pool round trips.
 */
export const snapshotUnit = (abs: string, folder: boolean): Effect.Effect<DiskFiles | undefined, IoError> =>
  Effect.try({ try: () => snapshotUnitSync(abs, folder), catch: io(abs, "cannot read") })

/** Snapshots the home side of many units in one pass; each tool entry names the absolute tool home. */
export const snapshotHomes = <
  U extends {
    readonly layout: { readonly homeRoot: string; readonly folder: boolean }
    readonly tools: ReadonlyArray<{ readonly tool: string; readonly home: string; readonly base: DiskFiles | undefined }>
  }
>(
  units: ReadonlyArray<U>
): Effect.Effect<Array<Omit<U, "layout" | "tools"> & { readonly tools: Array<{ tool: string; base: DiskFiles | undefined; home: DiskFiles | undefined }> }>, IoError> =>
  Effect.suspend(() => {
    const out: Array<Omit<U, "layout" | "tools"> & { readonly tools: Array<{ tool: string; base: DiskFiles | undefined; home: DiskFiles | undefined }> }> = []
    for (const u of units) {
      const tools: Array<{ tool: string; base: DiskFiles | undefined; home: DiskFiles | undefined }> = []
      for (const t of u.tools) {
        const abs = nodePath.join(t.home, u.layout.homeRoot)
        try {
          tools.push({ tool: t.tool, base: t.base, home: snapshotUnitSync(abs, u.layout.folder) })
        } catch (e) {
          return Effect.fail(io(abs, "cannot read")(e))
        }
      }
      const { layout: _, tools: __, ...rest } = u
      out.push({ ...rest, tools })
    }
    return Effect.succeed(out)
  })

export const readBytes = (abs: string): Effect.Effect<Uint8Array, IoError> =>
  Effect.tryPromise({ try: () => fs.readFile(abs), catch: io(abs, "cannot read") })

/** Removes a file and the folders it leaves empty, up to (and including) `stopAt` when it ends up empty. */
export const removeUnitFile = (abs: string, stopAt: string): Effect.Effect<void, IoError> =>
  Effect.tryPromise({
    try: async () => {
      await fs.rm(abs, { force: true })
      let dir = nodePath.dirname(abs)
      while (dir === stopAt || dir.startsWith(stopAt + nodePath.sep)) {
        try {
          await fs.rmdir(dir)
        } catch {
          break // not empty: stop climbing
        }
        dir = nodePath.dirname(dir)
      }
    },
    catch: io(abs, "cannot remove")
  })

/** Whether a path exists. */
export const exists = (abs: string): Effect.Effect<boolean> =>
  Effect.promise(() => fs.access(abs).then(() => true, () => false))

/** Every regular file under a folder, as sorted POSIX paths (for `local:` sources); `.git` is skipped. */
export const listTreeFiles = (root: string): Effect.Effect<ReadonlyArray<string>, IoError> =>
  Effect.tryPromise({
    try: async () => {
      const out: Array<string> = []
      const walk = async (dir: string, rel: string): Promise<void> => {
        const entries = await fs.readdir(dir, { withFileTypes: true })
        await Promise.all(
          entries.map(async (d) => {
            if (isLitter(d.name)) return
            const r = rel === "" ? d.name : `${rel}/${d.name}`
            if (d.isDirectory()) return walk(nodePath.join(dir, d.name), r)
            if (d.isFile()) out.push(r)
          })
        )
      }
      await walk(root, "")
      return out.sort()
    },
    catch: io(root, "cannot list")
  })

export class SkillStore extends Context.Tag("agentsync/SkillStore")<SkillStore, SkillStoreShape>() {}

const io = (path: string, what: string) => (cause: unknown) =>
  new IoError({ path, reason: `${what}: ${cause instanceof Error ? cause.message : String(cause)}`, cause })

const readText = (path: string) =>
  Effect.tryPromise({
    try: () =>
      fs.readFile(path, "utf8").catch((e: NodeJS.ErrnoException) => {
        if (e.code === "ENOENT") return undefined
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

  const writeManifest = Effect.fn("SkillStore.writeManifest")((m: Manifest) => writeFileAtomic(manifestPath, renderManifest(m)))
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
    toolHome,
    withLock
  }
}

export const layer = (options: StoreOptions = {}): Layer.Layer<SkillStore> => Layer.sync(SkillStore, () => make(options))
