/** The root `agentsync` command and its global options, read by every subcommand. */
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import { Console, Effect, Option } from "effect"
import { loadConfig } from "../config.js"

const services = Options.text("services").pipe(
  Options.withDescription("the services/ tree, or a project root holding agentsync.yaml (default: ./services)"),
  Options.optional
)

const json = Options.boolean("json").pipe(
  Options.withDescription("print one JSON document on stdout; logs and progress go to stderr")
)

export const root = Command.make("agentsync", { services, json })

/** The global options as plain values. */
export const globals = Effect.map(root, (r) => ({ services: Option.getOrUndefined(r.services), json: r.json }))

/** A usage error: shown once here, exit code 2 (main does not print validation errors again). */
export const usage = (message: string) =>
  Effect.zipRight(Console.error(`error: ${message}`), Effect.fail(ValidationError.invalidValue(HelpDoc.p(message))))

/**
 * Loads the project configuration with the global `--services` applied (or an explicit path). A malformed
 * `agentsync.yaml` is a usage error (exit 2): nothing runs on a configuration that does not read. With `tree`,
 * the services path must also exist and look like a project (exit 2 otherwise).
 */
export const projectConfig = (path?: string, options: { readonly tree?: boolean } = {}) =>
  Effect.flatMap(globals, (g) => loadConfig({ services: path ?? g.services })).pipe(
    Effect.catchTag("InvalidInput", (e) => usage(e.message)),
    Effect.tap((config) =>
      options.tree === true
        ? Effect.flatMap(
            Effect.promise(() => import("../services/Workspace.js")),
            (w) => w.checkServicesPath(config)
          )
        : Effect.void
    )
  )
