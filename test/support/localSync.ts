/** Test support for local sync on the real PostgreSQL: a tree written from a map, a run on a services folder. */
import { createHash } from "node:crypto"
import { mkdirSync, statSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { Effect, Redacted } from "effect"
import { LocalSync, type LocalSyncOptions, type LocalSyncPorts } from "../../src/programs/localSync.js"
import { walk } from "./tree.js"

/** Writes `files` (path below `root` → text) and gives `root`. */
export const writeTree = (root: string, files: Record<string, string>) => {
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true })
    writeFileSync(join(root, path), text)
  }
  return root
}

/** Runs a local-sync program on the services folder `services` against the database at `url`. */
export const localRun = <A, E>(
  url: string,
  services: string,
  effect: Effect.Effect<A, E, LocalSync | LocalSyncPorts>
) =>
  effect.pipe(
    Effect.provide(
      LocalSync.layer({ servicesPath: services, projectRoot: dirname(services), databaseUrl: Redacted.make(url) })
    )
  )
export const localSync = (url: string, services: string, options: LocalSyncOptions) =>
  localRun(url, services, LocalSync.sync(options))

export const sha = (text: string) => createHash("sha256").update(text).digest("hex")
export const mtimes = (root: string) => Object.fromEntries(walk(root).map((p) => [p, statSync(join(root, p)).mtimeMs]))
export const errorsOf = (r: { results: ReadonlyArray<{ errors: ReadonlyArray<{ message: string }> }> }) =>
  r.results.flatMap((x) => x.errors.map((e) => e.message))
