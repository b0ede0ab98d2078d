/** The root `agentsync` command and the global options every subcommand reads (taken from argv by argv.ts). */
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as ValidationError from "@effect/cli/ValidationError"
import { Console, Context, Effect } from "effect"
import { loadConfig } from "../config.js"
import type { Globals } from "./argv.js"
import { errorLine } from "./color.js"

export const root = Command.make("agentsync")

/** The global options of this run, valid before or after the command path. */
export class CliGlobals extends Context.Tag("agentsync/cli/Globals")<CliGlobals, Globals>() {}

/** The global options as plain values. */
export const globals = CliGlobals

/** A usage error: shown once here, exit code 2 (main does not print validation errors again). */
export const usage = (message: string | ReadonlyArray<string>) =>
  Effect.zipRight(
    Effect.flatMap(globals, (g) => Console.error(errorLine(g, message))),
    Effect.fail(ValidationError.invalidValue(HelpDoc.p(typeof message === "string" ? message : message.join("\n"))))
  )

/** Which check of the services tree a command asks: any (true), a file sync run ("files"), or a pull. */
export type TreeCheck = boolean | "files" | "pull"

/**
 * Loads the project configuration with the global `--services` applied (or an explicit path). A malformed
 * `agentsync.yaml` is a usage error (exit 2): nothing runs on a configuration that does not read. With `tree`,
 * the services path must also exist and look like a project (exit 2 otherwise); `"pull"`: or be the empty folder a
 * first pull starts in; `"files"` and `"pull"`: a missing folder's message says how a first pull starts one.
 */
export const projectConfig = (path?: string, options: { readonly tree?: TreeCheck } = {}) =>
  Effect.flatMap(globals, (g) => loadConfig({ services: path ?? g.services })).pipe(
    Effect.catchTag("InvalidInput", (e) => usage(e.lines)),
    Effect.tap((config) =>
      options.tree !== undefined && options.tree !== false
        ? Effect.flatMap(
            Effect.promise(() => import("../services/Workspace.js")),
            (w) => w.checkServicesPath(config, { pull: options.tree === "pull", files: options.tree === "files" })
          )
        : Effect.void
    )
  )
