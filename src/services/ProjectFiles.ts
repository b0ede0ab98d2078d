/** The ProjectFiles port: a project's own files outside `services/` and `.agentsync/` (the settings file, the build context, the skeleton `init` writes) and private temp folders for the tools a command runs. */
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { Context, Effect, type Scope } from "effect"
import { type IoError, ioError as io, isMissing } from "../errors.js"

/** What stands at a path, links followed. */
export type PathKind = "file" | "dir" | "other" | "absent"

export interface ProjectFilesShape {
  readonly kind: (path: string) => Effect.Effect<PathKind, IoError>
  /** A file's text; `undefined` when there is none. */
  readonly readText: (path: string) => Effect.Effect<string | undefined, IoError>
  /** Writes a new file (and the folders above it); a file that is there already is never replaced. */
  readonly create: (path: string, text: string) => Effect.Effect<void, IoError>
  /** A private (`0700`) temp folder for the scope, removed with everything in it however the scope ends. */
  readonly tempDir: (prefix: string) => Effect.Effect<string, IoError, Scope.Scope>
}

/** The local disk; each call is one small synchronous step. */
export const make = (): ProjectFilesShape => ({
  kind: Effect.fn("ProjectFiles.kind")((path: string) =>
    Effect.try({
      try: (): PathKind => {
        let st: fs.Stats
        try {
          st = fs.statSync(path)
        } catch (e) {
          if (isMissing(e)) return "absent"
          throw e
        }
        return st.isFile() ? "file" : st.isDirectory() ? "dir" : "other"
      },
      catch: io(path, "cannot read")
    })
  ),
  readText: Effect.fn("ProjectFiles.readText")((path: string) =>
    Effect.try({
      try: () => {
        try {
          return fs.readFileSync(path, "utf8")
        } catch (e) {
          if (isMissing(e)) return undefined
          throw e
        }
      },
      catch: io(path, "cannot read")
    })
  ),
  create: Effect.fn("ProjectFiles.create")((path: string, text: string) =>
    Effect.try({
      try: () => {
        fs.mkdirSync(nodePath.dirname(path), { recursive: true })
        // `wx`: a file that appeared meanwhile is never replaced.
        fs.writeFileSync(path, text, { flag: "wx" })
      },
      catch: io(path, "cannot write")
    })
  ),
  tempDir: (prefix: string) =>
    Effect.acquireRelease(
      Effect.try({
        try: () => fs.mkdtempSync(nodePath.join(os.tmpdir(), prefix)),
        catch: io(os.tmpdir(), `cannot create a temporary folder ${prefix}…`)
      }),
      (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
    ).pipe(Effect.withSpan("ProjectFiles.tempDir"))
})

/**
 * A project's own files; by default the local disk, so library callers and the programs' tests need not provide it
 * (a test may provide another).
 */
export class ProjectFiles extends Context.Reference<ProjectFiles>()("agentsync/ProjectFiles", {
  defaultValue: make
}) {}
