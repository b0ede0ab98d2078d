/** The command tree: the root with every subcommand, run on argv (see runner.ts). */
import * as Command from "@effect/cli/Command"
import { Effect } from "effect"
import { ExitCode } from "../errors.js"
import { completeWords, completion } from "./completion.js"
import { config } from "./config.js"
import { db } from "./db.js"
import { demo } from "./demo.js"
import { deploy } from "./deploy.js"
import { doctor } from "./doctor.js"
import { files } from "./files.js"
import { init } from "./init.js"
import { jobs } from "./jobs.js"
import { local } from "./local.js"
import { root } from "./root.js"
import { mainFor, VERSION } from "./runner.js"
import { serve } from "./serve.js"
import { skill } from "./skill.js"
import { status } from "./status.js"
import { sync } from "./sync.js"
import { tenant } from "./tenant.js"
import { token } from "./token.js"
import { validate } from "./validate.js"

export { VERSION }

export const command = root.pipe(
  Command.withDescription("keep an AI-agent project's files, database, skills and servers in step"),
  Command.withSubcommands([
    init,
    status,
    doctor,
    validate,
    local,
    files,
    db,
    sync,
    config,
    serve,
    tenant,
    token,
    skill,
    deploy,
    jobs,
    demo,
    completion
  ])
)

/** The full command line: help, usage, completion (`__complete`) and every command. */
const full = mainFor(command)

/**
 * Runs the CLI on argv and resolves to the process exit code. Global options are taken from anywhere before
 * `--`; errors are printed once, on stderr, and with --json as one document on stdout.
 */
export const main = (argv: ReadonlyArray<string>) =>
  argv[2] === "__complete" ? Effect.as(completeWords(full.tree, argv.slice(3)), ExitCode.Ok) : full.run(argv)
