/**
 * The small start path of help and completion (bundled as dist/quick.cjs, plain Node, no Effect or CLI): the
 * launcher asks it first for a help page, `__complete …` and `completion bash|zsh|fish`. It renders with the CLI's
 * own code (argv.ts, help.ts, complete.ts, color.ts) over the command tree the build read from the CLI's
 * definitions, so its answer is the CLI's byte for byte; anything else (a usage error, another command, a
 * completion that needs names read from this machine) it leaves to the CLI.
 */
import { preprocess } from "./argv.js"
import { useColor } from "./color.js"
import { complete, renderCompletion, SHELLS, scriptOf } from "./complete.js"
import { render } from "./help.js"
import { type CommandSpec, find } from "./spec.js"

/** Set by the build from src/cli/treeData.ts. */
declare const AGENTSYNC_COMMAND_DATA: { readonly tree: CommandSpec; readonly kinds: ReadonlyArray<string> }

/** What the CLI prints for `args` (without node and script) when it is help, a script or a static completion. */
export const answer = (
  args: ReadonlyArray<string>,
  out: { readonly isTTY?: boolean; readonly columns?: number },
  env: NodeJS.ProcessEnv = process.env
): string | undefined => {
  const { tree, kinds } = AGENTSYNC_COMMAND_DATA
  if (args[0] === "__complete") {
    const c = complete(tree, args.slice(2), args[1] ?? "", kinds)
    return "needs" in c ? undefined : renderCompletion(c)
  }
  const parsed = preprocess(tree, args)
  if (parsed._tag === "Help")
    return render(find(tree, parsed.path) ?? tree, {
      width: out.isTTY ? (out.columns ?? 80) : 80,
      color: useColor(parsed.globals.color, out.isTTY === true, env)
    })
  if (parsed._tag !== "Ok" || parsed.argv.length !== 2 || parsed.argv[0] !== "completion") return undefined
  const shell = SHELLS.find((s) => s === parsed.argv[1])
  return shell === undefined ? undefined : `${scriptOf(shell).trimEnd()}\n`
}

/** Prints the answer for `args` and says true, or says false for the CLI to run. */
export const run = (args: ReadonlyArray<string>): boolean => {
  const page = answer(args, process.stdout)
  if (page === undefined) return false
  process.stdout.write(page)
  return true
}
