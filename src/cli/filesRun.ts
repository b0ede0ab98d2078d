/**
 * The CLI process of a `files push | pull` the settled check left to the program (bundled as dist/files.cjs): the
 * same program and output as dist/cli.cjs, from a command tree of the `files` commands only, so that the run
 * loads and initialises none of the other commands. The launcher sends it nothing else.
 */
import * as Command from "@effect/cli/Command"
import { files } from "./files.js"
import { runProcess } from "./process.js"
import { root } from "./root.js"
import { mainFor } from "./runner.js"

runProcess(mainFor(root.pipe(Command.withSubcommands([files]))).run)
