/**
 * The small start path of `files push | pull` (bundled alone as dist/settled.cjs, without Effect or the CLI):
 * the launcher runs it first, and when the settled mark answers the run (nothing changed on either side) it
 * prints the same report the full CLI would and the CLI is never loaded. Any other command line, or any doubt,
 * and it leaves the run to the CLI.
 */
import type { FilesReport } from "../programs/files.js"
import { handOff } from "../services/state.js"
import { checkSettled } from "../stages/files/settledCheck.js"
import { noPaint } from "./color.js"
import { human, leftOutLine } from "./filesText.js"
import { holdStartSignals, releaseStartSignals } from "./startSignals.js"

export interface SettledArgs {
  readonly command: "push" | "pull"
  readonly dryRun: boolean
  readonly json: boolean
  /** `--quiet`: no note on stderr. */
  readonly quiet: boolean
  readonly services: string | undefined
}

const FLAGS = new Set(["--json", "--quiet", "-q", "--verbose", "-v", "--no-color", "--dry-run", "--delete", "--force"])
const COLORS = new Set(["auto", "always", "never"])

/**
 * `files push|pull` with only options that cannot change a settled run's output (the globals, --dry-run,
 * --delete, --force), else undefined: help, completions, anything unknown or malformed is the CLI's to handle.
 */
export const parseSettledArgs = (args: ReadonlyArray<string>): SettledArgs | undefined => {
  const words: Array<string> = []
  let json = false
  let dryRun = false
  let quiet = false
  let services: string | undefined
  // One iterator: an option's value is taken from it where the option is read.
  const rest = args.values()
  for (const a of rest) {
    if (!a.startsWith("-")) words.push(a)
    else if (FLAGS.has(a)) {
      if (a === "--json") json = true
      if (a === "--dry-run") dryRun = true
      if (a === "--quiet" || a === "-q") quiet = true
    } else if (a === "--services" || a === "--color") {
      const v = rest.next().value
      if (v === undefined || v.startsWith("-") || (a === "--color" && !COLORS.has(v))) return undefined
      if (a === "--services") services = v
    } else if (a.startsWith("--services=") && a.length > 11) services = a.slice(11)
    else if (!(a.startsWith("--color=") && COLORS.has(a.slice(8)))) return undefined
  }
  if (words.length !== 2 || words[0] !== "files" || (words[1] !== "push" && words[1] !== "pull")) return undefined
  return { command: words[1], dryRun, json, quiet, services }
}

const INTERRUPTED = { SIGINT: 130, SIGTERM: 143 } as const

/**
 * Runs `agentsync ARGS` when the settled mark answers it: prints the report and resolves true (exit code 0).
 * Resolves false, having printed nothing, when the CLI must run it; its signal handlers then stay installed, and the
 * caller must load the CLI, whose `runProcess` releases them once its own are in (else a later signal is answered
 * with "nothing changed yet" and exit 130, skipping the program's cleanup).
 */
export const run = async (args: ReadonlyArray<string>): Promise<boolean> => {
  const parsed = parseSettledArgs(args)
  if (parsed === undefined) return false
  // An interrupt here is one of the full run's: the same line and exit code (nothing has been changed).
  const onSignal = (signal: keyof typeof INTERRUPTED) => () => {
    process.stderr.write(
      `interrupted by ${signal}: ${parsed.command}: reading the local tree and the remote head; nothing changed yet\n`
    )
    process.exit(INTERRUPTED[signal])
  }
  // Held past this check when it leaves the run to the program: the launcher then loads the files bundle (a few
  // hundred ms), whose CLI process takes over the signals once its own handlers are in (cli/process.ts).
  holdStartSignals([
    ["SIGINT", onSignal("SIGINT")],
    ["SIGTERM", onSignal("SIGTERM")]
  ])
  let answered = true
  try {
    const report = await checkSettled({
      command: parsed.command,
      dryRun: parsed.dryRun,
      cwd: process.cwd(),
      services: parsed.services,
      env: process.env,
      // The full program, run next in this process, plans from this listing instead of listing again.
      onListing: handOff
    })
    if (report === undefined) {
      answered = false
      return false
    }
    // The note the full CLI prints (cli/files.ts), before the report as there.
    const line = parsed.quiet ? undefined : leftOutLine(report)
    if (line !== undefined) process.stderr.write(`${line}\n`)
    process.stdout.write(`${parsed.json ? JSON.stringify(report, null, 2) : human(report as FilesReport)(noPaint)}\n`)
    process.exitCode = 0
    return true
  } finally {
    if (answered) releaseStartSignals()
  }
}
