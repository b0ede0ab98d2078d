/**
 * The CLI process of a `files push | pull` the settled check left to the program (bundled as dist/files.cjs): the
 * same program and output as dist/cli.cjs, from a command tree of the `files` commands only, so that the run
 * loads and initialises none of the other commands. The launcher sends it nothing else. Its platform is
 * filesPlatform's layer (the build puts it in place of NodeContext): file system, path and terminal.
 */
import * as Command from "@effect/cli/Command"
import { files } from "./files.js"
import { runProcess } from "./process.js"
import { type CliGlobals, root } from "./root.js"
import { mainFor } from "./runner.js"

const command = root.pipe(Command.withSubcommands([files]))
// The tree needs nothing from the platform beyond what @effect/cli does (file system, path, terminal): a command
// that came to need more (a process executor, a worker) fails to compile here rather than at run time.
type Needs = typeof command extends Command.Command<string, infer R, infer _E, infer _A> ? R : never
export const needsOnlyGlobals: [Needs] extends [CliGlobals] ? true : never = true
runProcess(mainFor(command).run)
