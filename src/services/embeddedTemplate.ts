/** The embedded database's template: a fresh initdb's data directory in the user's cache, one per PGlite build, copied instead of running initdb again. */
import { createHash, randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as nodePath from "node:path"
import { Data, Effect, Option, Schema } from "effect"
import { agentsyncCacheDir } from "../cacheDir.js"
import { errnoCode } from "../errno.js"

/** Why a template was not made or not used: never the user's failure, the creation runs initdb instead. */
export class TemplateUnusable extends Data.TaggedError("TemplateUnusable")<{
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message() {
    return `embedded database template: ${this.reason}`
  }
}

const unusable = (reason: string) => (cause: unknown) =>
  new TemplateUnusable({ reason: `${reason}: ${cause instanceof Error ? cause.message : String(cause)}`, cause })

/** Where templates live: `pgdata-templates` in the cache folder the launcher uses. */
export const templatesDir = (env: NodeJS.ProcessEnv = process.env): string =>
  nodePath.join(agentsyncCacheDir(env), "pgdata-templates")

/** Changes with what the template holds or how it is laid out, so that no older template is read as a newer one. */
const FORMAT = "agentsync pgdata template 1"

/**
 * A template's name for the PGlite whose entry point is `entry` (`dist/index.cjs`), made by `recipe` (the code that
 * runs initdb): its version and a digest of what a data directory is made from and must match (Postgres and initdb
 * as WebAssembly, Postgres' share files: its catalog version and major with them; the entry point, which sets
 * initdb's arguments; the recipe). A PGlite without them has no name: its databases are made by initdb.
 */
export const templateKey = Effect.fn("EmbeddedTemplate.templateKey")((entry: string, recipe: string) =>
  Effect.tryPromise({
    try: async () => {
      const dist = nodePath.dirname(entry)
      const manifest: unknown = JSON.parse(await fs.readFile(nodePath.join(dist, "..", "package.json"), "utf8"))
      const version =
        typeof manifest === "object" && manifest !== null && "version" in manifest ? String(manifest.version) : "?"
      const digest = createHash("sha256").update(FORMAT).update("\0").update(recipe).update("\0")
      for (const file of ["pglite.wasm", "pglite.data", "initdb.wasm"])
        digest.update(await fs.readFile(nodePath.join(dist, file)))
      digest.update(await fs.readFile(entry))
      return `${version.replace(/[^0-9A-Za-z.-]/g, "_")}-${digest.digest("hex").slice(0, 16)}`
    },
    catch: unusable("cannot name the template of this PGlite")
  })
)

/** A path inside the template's data: relative, `/`-separated, no empty, `.` or `..` segment (nothing outside it). */
const RelPath = Schema.String.pipe(
  Schema.filter(
    (path) =>
      !nodePath.isAbsolute(path) &&
      !path.includes("\\") &&
      !path.includes("\0") &&
      path.split("/").every((segment) => segment !== "" && segment !== "." && segment !== ".."),
    { message: () => "a relative path inside the data directory" }
  )
)

/** What a complete template lists, written last: its folders and its files with their sizes, relative, sorted. */
const Manifest = Schema.Struct({
  format: Schema.Literal(FORMAT),
  key: Schema.String,
  dirs: Schema.Array(RelPath),
  files: Schema.Array(Schema.Tuple(RelPath, Schema.NonNegativeInt))
})
type Manifest = typeof Manifest.Type
const decodeManifest = Schema.decodeUnknownSync(Schema.parseJson(Manifest))

const MANIFEST = "manifest.json"
const DATA = "data"

/** The folders and files under `root` (a data directory holds nothing else), parents before children. */
const listTree = async (root: string): Promise<Pick<Manifest, "dirs" | "files">> => {
  const dirs: Array<string> = []
  const files: Array<[string, number]> = []
  const walk = async (rel: string): Promise<void> => {
    const entries = await fs.readdir(nodePath.join(root, rel), { withFileTypes: true })
    for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const path = rel === "" ? entry.name : `${rel}/${entry.name}`
      if (entry.isDirectory()) {
        dirs.push(path)
        await walk(path)
      } else if (entry.isFile()) files.push([path, (await fs.stat(nodePath.join(root, path))).size])
      else throw new Error(`${path} is neither a file nor a folder`)
    }
  }
  await walk("")
  return { dirs, files }
}

/** A fault in the template itself (not in the folder it is copied into): the template is removed. */
class Damaged extends Error {}

/**
 * Copies what `tree` lists from `from` into `to` (made here), checking each source's and each copy's size against
 * the list: a source missing or of another size is `Damaged`.
 */
const copyTree = async (from: string, to: string, tree: Pick<Manifest, "dirs" | "files">): Promise<void> => {
  await fs.mkdir(to)
  for (const dir of tree.dirs) await fs.mkdir(nodePath.join(to, dir))
  let next = 0
  // A few copies at once: each waits on libuv's thread pool, and a data directory is a thousand small files.
  const copier = async (): Promise<void> => {
    for (let i = next++; i < tree.files.length; i = next++) {
      const [path, size] = tree.files[i] as [string, number]
      const source = await fs.stat(nodePath.join(from, path)).catch((e: unknown) => {
        if (errnoCode(e) === "ENOENT" || errnoCode(e) === "ENOTDIR") throw new Damaged(`${path} is missing`)
        throw e
      })
      if (source.size !== size) throw new Damaged(`${path} holds ${source.size} bytes, not ${size}`)
      await fs.copyFile(nodePath.join(from, path), nodePath.join(to, path))
      const copied = (await fs.stat(nodePath.join(to, path))).size
      if (copied !== size) throw new Error(`${path} holds ${copied} bytes, not ${size}`)
    }
  }
  await Promise.all(Array.from({ length: 8 }, copier))
}

/** Removes `dir`; a failure leaves it for a later sweep and is logged at debug, never the creation's failure. */
const removeQuietly = (dir: string) =>
  Effect.tryPromise({
    try: () => fs.rm(dir, { recursive: true, force: true }),
    catch: unusable(`cannot remove ${dir}`)
  }).pipe(Effect.catchAll((e) => Effect.logDebug(e.message)))

/**
 * Whether the cache folder `dir` may be used: a real folder (not a link) of this user's that no other user can read
 * or write. Absent: made (mode 0700) when `create`, else not trusted without a reason. Not trusted: the creation
 * neither reads nor writes a template.
 */
const cacheTrusted = async (dir: string, create: boolean): Promise<{ trusted: boolean; why?: string }> => {
  const lstat = () =>
    fs.lstat(dir).catch((e: unknown) => {
      if (errnoCode(e) === "ENOENT") return undefined
      throw e
    })
  let stat = await lstat()
  if (stat === undefined) {
    if (!create) return { trusted: false }
    await fs.mkdir(dir, { recursive: true, mode: 0o700 })
    stat = await lstat()
  }
  if (stat === undefined || !stat.isDirectory()) return { trusted: false, why: `${dir} is not a folder` }
  if (process.getuid !== undefined) {
    if (stat.uid !== process.getuid()) return { trusted: false, why: `${dir} is another user's` }
    if ((stat.mode & 0o077) !== 0) return { trusted: false, why: `${dir} is open to other users` }
  }
  return { trusted: true }
}

/** Checks the cache folder, logging (at debug) why it is not used. */
const useCache = (dir: string, create: boolean) =>
  Effect.tryPromise({ try: () => cacheTrusted(dir, create), catch: unusable(`cannot read ${dir}`) }).pipe(
    Effect.tap(({ trusted, why }) =>
      trusted || why === undefined ? Effect.void : Effect.logDebug(`embedded database template: ${why}: not used`)
    ),
    Effect.map(({ trusted }) => trusted)
  )

/** `global/pg_control`'s state (an int32 at byte 16): 1, shut down cleanly, is the only state a template may hold. */
const shutDownCleanly = async (dataDir: string): Promise<boolean> => {
  const control = await fs.readFile(nodePath.join(dataDir, "global", "pg_control"))
  return control.length >= 20 && control.readInt32LE(16) === 1
}

/** Left by a process killed while it wrote a template; one that old is no other's work in progress. */
const STALE_MS = 60 * 60 * 1000

/** How many templates of other keys are kept besides the current one, and how long an unused one is kept. */
const KEEP_OTHERS = 2
const UNUSED_MS = 30 * 24 * 60 * 60 * 1000
/** A template's last use is its manifest's modification time, touched by a copy at most once a day. */
const TOUCH_MS = 24 * 60 * 60 * 1000

/**
 * Tidies `dir`: removes the scratch folders older than an hour (a killed writer's) and the templates of other keys
 * (older PGlite builds) beyond the `KEEP_OTHERS` most recently used, or unused for 30 days; each renamed to a
 * scratch name first, so no creation reads it half-removed.
 */
const sweep = (dir: string, key: string) =>
  Effect.gen(function* () {
    const names = yield* Effect.tryPromise({ try: () => fs.readdir(dir), catch: unusable(`cannot list ${dir}`) })
    const others: Array<{ name: string; used: number }> = []
    for (const name of names) {
      const path = nodePath.join(dir, name)
      const stat = yield* Effect.tryPromise({ try: () => fs.lstat(path), catch: unusable(`cannot read ${path}`) })
      if (name.endsWith(".tmp")) {
        if (Date.now() - stat.mtimeMs > STALE_MS) yield* removeQuietly(path)
      } else if (name !== key && stat.isDirectory()) {
        const manifest = yield* Effect.promise(() =>
          fs.lstat(nodePath.join(path, MANIFEST)).then(
            (m) => m.mtimeMs,
            () => stat.mtimeMs
          )
        )
        others.push({ name, used: manifest })
      }
    }
    others.sort((a, b) => b.used - a.used)
    for (const [i, other] of others.entries())
      if (i >= KEEP_OTHERS || Date.now() - other.used > UNUSED_MS) yield* discard(other.name, dir)
  }).pipe(Effect.catchAll((e) => Effect.logDebug(e.message)))

/** Marks the template `template` as used now (its manifest's time), when it was last marked over a day ago. */
const touchUsed = (template: string) => {
  const manifest = nodePath.join(template, MANIFEST)
  return Effect.tryPromise({
    try: async () => {
      if (Date.now() - (await fs.lstat(manifest)).mtimeMs < TOUCH_MS) return
      const now = new Date()
      await fs.utimes(manifest, now, now)
    },
    catch: unusable(`cannot mark ${template} as used`)
  }).pipe(Effect.catchAll((e) => Effect.logDebug(e.message)))
}

/**
 * Keeps `fresh` (a data directory initdb has just made and closed, not opened since initdb: no one's data) as the
 * template `key`: copied to a name of this process's own, its manifest written last, then renamed into place. When
 * another process has put one there first, this copy is dropped.
 */
export const save = Effect.fn("EmbeddedTemplate.save")(function* (
  fresh: string,
  key: string,
  dir: string = templatesDir()
) {
  if (!(yield* useCache(dir, true))) return
  const target = nodePath.join(dir, key)
  const scratch = `${target}.${process.pid}-${randomBytes(4).toString("hex")}.tmp`
  yield* Effect.tryPromise({
    try: async () => {
      if (
        await fs.lstat(target).then(
          () => true,
          () => false
        )
      )
        return
      // A template is copied into every new database: only a data directory Postgres shut down cleanly is kept.
      if (!(await shutDownCleanly(fresh))) throw new Error(`${fresh} was not shut down cleanly`)
      const tree = await listTree(fresh)
      await fs.mkdir(scratch)
      await copyTree(fresh, nodePath.join(scratch, DATA), tree)
      const manifest: Manifest = { format: FORMAT, key, ...tree }
      await fs.writeFile(nodePath.join(scratch, MANIFEST), JSON.stringify(manifest))
      await fs.rename(scratch, target).catch((e: unknown) => {
        // Another process's template is in place (a non-empty folder cannot be renamed over): it is as good.
        if (errnoCode(e) !== "ENOTEMPTY" && errnoCode(e) !== "EEXIST") throw e
      })
    },
    catch: unusable("cannot keep a template")
  }).pipe(Effect.ensuring(removeQuietly(scratch)))
  yield* sweep(dir, key)
}, Effect.uninterruptible)

/**
 * Copies the template `key` into `into` (which must not exist) when there is a complete one of this user's: its
 * manifest names it, and every file it lists is there at its size. None: `Option.none()`. One that is there but
 * cannot be used is removed (a creation that runs initdb next makes it again) and fails.
 */
export const restore = Effect.fn("EmbeddedTemplate.restore")(function* (
  key: string,
  into: string,
  dir: string = templatesDir()
) {
  if (!(yield* useCache(dir, false))) return Option.none<string>()
  // A killed save's scratch folders and old builds' templates go with the next creation, whether it copies or saves.
  yield* sweep(dir, key)
  const template = nodePath.join(dir, key)
  return yield* Effect.tryPromise({
    try: async (): Promise<Option.Option<string>> => {
      const stat = await fs.lstat(template).catch((e: unknown) => {
        if (errnoCode(e) === "ENOENT") return undefined
        throw e
      })
      if (stat === undefined) return Option.none()
      // Only ever renamed into place as a folder: a link or a file by its name is not read.
      if (!stat.isDirectory()) throw new Damaged(`${template} is not a folder`)
      // A template is a cache of this user's: one another user could have written is not read.
      if (process.getuid !== undefined && stat.uid !== process.getuid())
        throw new Error(`${template} is another user's`)
      const text = await fs.readFile(nodePath.join(template, MANIFEST), "utf8").catch((e: unknown) => {
        if (errnoCode(e) === "ENOENT" || errnoCode(e) === "ENOTDIR") return undefined
        throw e
      })
      // A folder by the template's name is only ever renamed into place with its manifest: one without lost it.
      if (text === undefined) throw new Damaged(`${template} has no ${MANIFEST}`)
      let manifest: Manifest
      try {
        manifest = decodeManifest(text)
      } catch (e) {
        throw new Damaged(`${template}'s ${MANIFEST} cannot be read: ${e instanceof Error ? e.message : String(e)}`)
      }
      if (manifest.key !== key) throw new Damaged(`${template} names ${manifest.key}`)
      await copyTree(nodePath.join(template, DATA), into, manifest)
      return Option.some(template)
    },
    catch: unusable(`cannot use ${template}`)
  }).pipe(
    // Only a fault in the template removes it: one in the new database's folder (a missing parent, a full disk, a
    // read-only project) leaves a healthy template for the next creation.
    Effect.tapError((e) => (e.cause instanceof Damaged ? discard(key, dir) : Effect.void)),
    Effect.tap((copied) => (Option.isSome(copied) ? touchUsed(template) : Effect.void))
  )
}, Effect.uninterruptible)

/**
 * Removes the template `key` (a damaged one: one whose copy PGlite could not open is damaged in a way its sizes do
 * not show): renamed to a scratch name first, so no creation reads it half-removed, then removed.
 */
export const discard = (key: string, dir: string = templatesDir()) => {
  const template = nodePath.join(dir, key)
  const doomed = `${template}.${process.pid}-${randomBytes(4).toString("hex")}.tmp`
  return Effect.tryPromise({
    try: () => fs.rename(template, doomed),
    catch: unusable(`cannot remove ${template}`)
  }).pipe(
    Effect.matchEffect({
      onSuccess: () => removeQuietly(doomed),
      onFailure: (e) => Effect.logDebug(e.message).pipe(Effect.zipRight(removeQuietly(template)))
    })
  )
}
