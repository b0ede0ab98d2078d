/** The command tree: the root with every subcommand, and how a failure becomes a message and an exit code. */
import * as Command from "@effect/cli/Command"
import * as ValidationError from "@effect/cli/ValidationError"
import { Cause, ConfigError, Console, Effect, Exit } from "effect"
import { ExitCode, exitCodeOf, isSyncError } from "../errors.js"
import { db } from "./db.js"
import { demo } from "./demo.js"
import { deploy } from "./deploy.js"
import { files } from "./files.js"
import { jobs } from "./jobs.js"
import { local } from "./local.js"
import { root } from "./root.js"
import { serve } from "./serve.js"
import { skill } from "./skill.js"
import { sync } from "./sync.js"
import { tenant } from "./tenant.js"
import { token } from "./token.js"
import { validate } from "./validate.js"

export const VERSION = "0.1.0"

export const command = root.pipe(
  Command.withDescription("keep an AI-agent project's files, database, skills and servers in step"),
  Command.withSubcommands([validate, local, files, db, sync, serve, tenant, token, skill, deploy, jobs, demo])
)

export const cli = Command.run(command, { name: "agentsync", version: VERSION })

/** Runs the CLI on argv and resolves to the process exit code; errors are printed once, on stderr. */
export const main = (argv: ReadonlyArray<string>) =>
  cli(argv).pipe(
    Effect.exit,
    Effect.flatMap((exit) => {
      if (Exit.isSuccess(exit)) return Effect.succeed(ExitCode.Ok)
      const failure = Cause.failureOption(exit.cause)
      if (failure._tag === "Some") {
        const error = failure.value
        // @effect/cli has already shown usage errors with the help text.
        if (ValidationError.isValidationError(error)) return Effect.succeed(ExitCode.Usage)
        if (isSyncError(error)) return Effect.as(Console.error(`error: ${error.message}`), exitCodeOf(error))
        // A malformed environment variable read through Effect's Config: a usage problem, named.
        if (ConfigError.isConfigError(error)) {
          return Effect.as(Console.error(`error: invalid configuration: ${String(error)}`), ExitCode.Usage)
        }
      }
      return Effect.as(Console.error(`unexpected error: ${Cause.pretty(exit.cause)}`), ExitCode.Failure)
    })
  )
