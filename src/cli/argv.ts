/**
 * The command line before @effect/cli parses it: the global options taken from anywhere before `--`, and every
 * usage mistake (unknown command or option, missing value) named with a did-you-mean and the right choices.
 */
import { beforeFirst } from "../domain/text.js"
import type { CommandSpec, OptionSpec } from "./spec.js"

export const COLOR_MODES = ["auto", "always", "never"] as const
export type ColorMode = (typeof COLOR_MODES)[number]
export const LOG_LEVELS = ["all", "trace", "debug", "info", "warning", "error", "fatal", "none"] as const
export type LogLevelName = (typeof LOG_LEVELS)[number]

/** Whether `value` is one of `choices` (an option's value, checked against its choices before it is used). */
const isOneOf =
  <T extends string>(choices: ReadonlyArray<T>) =>
  (value: string | undefined): value is T =>
    choices.some((c) => c === value)
const isColorMode = isOneOf(COLOR_MODES)
const isLogLevel = isOneOf(LOG_LEVELS)

/** The global options, valid on every command. */
export interface Globals {
  readonly json: boolean
  readonly services: string | undefined
  readonly color: ColorMode
  readonly quiet: boolean
  readonly verbose: boolean
  readonly logLevel: LogLevelName | undefined
  readonly logFormat: "text" | "json"
}

export const defaultGlobals: Globals = {
  json: false,
  services: undefined,
  color: "auto",
  quiet: false,
  verbose: false,
  logLevel: undefined,
  logFormat: "text"
}

const opt = (name: string, description: string, more: Partial<OptionSpec> = {}): OptionSpec => ({
  name,
  aliases: [],
  value: undefined,
  choices: [],
  default: undefined,
  description,
  ...more
})

/** The global options as help and completions show them. */
export const GLOBAL_OPTIONS: ReadonlyArray<OptionSpec> = [
  opt("json", "print one JSON document on stdout, errors included; logs and progress go to stderr"),
  opt("services", "the services/ tree, or a project root holding agentsync.yaml", {
    value: "DIR",
    default: "./services"
  }),
  opt("color", "colour in help and output: auto is on a terminal without NO_COLOR", {
    value: "WHEN",
    choices: [...COLOR_MODES],
    default: "auto"
  }),
  opt("no-color", "the same as --color never"),
  opt("quiet", "print only errors and the result", { aliases: ["q"] }),
  opt("verbose", "say more: list every file, not only counts", { aliases: ["v"] }),
  opt("log-level", "the least important log lines shown, on stderr", { value: "LEVEL", choices: [...LOG_LEVELS] }),
  opt("log-format", "log lines as text or one JSON object each", {
    value: "FORMAT",
    choices: ["text", "json"],
    default: "text"
  })
]

/** Options @effect/cli handles itself, left where they are. */
const BUILT_IN: ReadonlyArray<OptionSpec> = [
  opt("help", "show help for a command", { aliases: ["h"] }),
  opt("version", "print the version"),
  opt("wizard", "build the command interactively")
]

export interface UsageProblem {
  readonly message: string
  /** More lines for a person: suggestions, the commands or values to choose from, where help is. */
  readonly details: ReadonlyArray<string>
  readonly suggestions: ReadonlyArray<string>
}

export type Parsed =
  | {
      readonly _tag: "Ok"
      readonly globals: Globals
      readonly argv: ReadonlyArray<string>
      readonly path: ReadonlyArray<string>
    }
  | { readonly _tag: "Help"; readonly globals: Globals; readonly path: ReadonlyArray<string> }
  | {
      readonly _tag: "Usage"
      readonly globals: Globals
      readonly problem: UsageProblem
      readonly path: ReadonlyArray<string>
    }

/** Levenshtein distance, for did-you-mean. */
const distance = (a: string, b: string): number => {
  // One row of the table at a time: row[j] is the distance from the part of `a` seen so far to b's first j units.
  let row = Array.from({ length: b.length + 1 }, (_, j) => j)
  let last = b.length
  for (const [i, ca] of a.split("").entries()) {
    let diagonal = i
    let left = i + 1
    const next = [left]
    for (const [j, up] of row.slice(1).entries()) {
      left = Math.min(up + 1, left + 1, diagonal + (ca === b[j] ? 0 : 1))
      next.push(left)
      diagonal = up
    }
    row = next
    last = left
  }
  return last
}

/** The candidates close to `word`: a prefix of it, or a few edits away; nearest first. */
export const closest = (word: string, candidates: ReadonlyArray<string>): ReadonlyArray<string> =>
  candidates
    .map((c) => ({ c, d: c.startsWith(word) && word.length >= 2 ? 0 : distance(word, c) }))
    .filter(({ c, d }) => d <= Math.max(1, Math.min(2, Math.floor(c.length / 3))))
    .sort((x, y) => x.d - y.d)
    .map(({ c }) => c)

const names = (o: OptionSpec) => [o.name, ...o.aliases]
const dashed = (name: string) => (name.length === 1 ? `-${name}` : `--${name}`)
const matches = (o: OptionSpec, flag: string) => names(o).some((n) => dashed(n) === flag)
/** `--x=v` → `--x`. */
const flagOf = (token: string) => beforeFirst(token, "=")

/** Where help is, the last line of a usage error. */
export const helpHint = (path: ReadonlyArray<string>) => `Run '${path.join(" ")} --help' for usage.`

const didYouMean = (suggestions: ReadonlyArray<string>) =>
  suggestions.length === 0 ? [] : ["", "Did you mean this?", ...suggestions.map((s) => `\t${s}`)]

/** `--completions SHELL` anywhere before `--`: the older spelling of `completion SHELL` (`sh` is bash). */
const completionsAlias = (args: ReadonlyArray<string>): ReadonlyArray<string> => {
  const end = args.indexOf("--")
  const k = args.findIndex((a, i) => (end < 0 || i < end) && (a === "--completions" || a.startsWith("--completions=")))
  const arg = args[k]
  if (arg === undefined) return args
  const shell = arg.includes("=") ? arg.slice(arg.indexOf("=") + 1) : args[k + 1]
  return shell === undefined ? ["completion"] : ["completion", shell === "sh" ? "bash" : shell]
}

/** Walks the arguments (without node and script) along the command tree. */
export const preprocess = (tree: CommandSpec, argv: ReadonlyArray<string>): Parsed => {
  const args = completionsAlias(argv)
  let globals: Globals = { ...defaultGlobals }
  let at = tree
  let positionals = 0
  const out: Array<string> = []
  let i = 0
  let help = false
  // The global options after a mistake still count (`--json` says how to report it).
  const fail = (problem: UsageProblem): Parsed => ({
    _tag: "Usage",
    globals: args.slice(i).reduce((g, token, k, rest) => {
      const o = GLOBAL_OPTIONS.find((x) => matches(x, flagOf(token)))
      if (o === undefined) return g
      const value = token.includes("=") ? token.slice(token.indexOf("=") + 1) : rest[k + 1]
      return o.value === undefined || (value !== undefined && (o.choices.length === 0 || o.choices.includes(value)))
        ? withGlobal(g, o.name, value)
        : g
    }, globals),
    problem,
    path: at.path
  })
  const known = (token: string) => {
    const flag = flagOf(token)
    return [...GLOBAL_OPTIONS, ...BUILT_IN, ...at.options].some((o) => matches(o, flag))
  }
  /** The value of `flag` at `i` (inline `--x=v` or the next word), or a problem. */
  const readValue = (
    o: OptionSpec,
    flag: string,
    inline: string | undefined,
    i: number
  ): { value: string; next: number } | UsageProblem => {
    const value = inline ?? args[i + 1]
    if (value === undefined || (inline === undefined && value.startsWith("-") && value !== "-" && known(value))) {
      const choose = o.choices.length > 0 ? [`choose one of: ${o.choices.join(", ")}`] : []
      return {
        message: `option ${flag} needs a value (${o.value})`,
        details: [...choose, helpHint(at.path)],
        suggestions: []
      }
    }
    if (o.choices.length > 0 && !o.choices.includes(value)) {
      const suggestions = closest(value, o.choices)
      return {
        message: `invalid value ${JSON.stringify(value)} for ${flag}`,
        details: [...didYouMean(suggestions), "", `choose one of: ${o.choices.join(", ")}`, helpHint(at.path)],
        suggestions
      }
    }
    // `N` is a number's placeholder (see spec.ts): @effect/cli would say only "'x' is not a integer".
    if (o.value === "N" && !/^[-+]?\d+(\.\d+)?$/.test(value))
      return {
        message: `invalid value ${JSON.stringify(value)} for ${flag}: not a number`,
        details: [helpHint(at.path)],
        suggestions: []
      }
    return { value, next: inline === undefined ? i + 2 : i + 1 }
  }

  for (let token = args[i]; token !== undefined; token = args[i]) {
    if (token === "--") {
      out.push(...args.slice(i))
      break
    }
    if (token.startsWith("-") && token !== "-") {
      const eq = token.startsWith("--") ? token.indexOf("=") : -1
      const flag = eq > 0 ? token.slice(0, eq) : token
      const inline = eq > 0 ? token.slice(eq + 1) : undefined
      if (flag === "--help" || flag === "-h") {
        help = true
        i++
        continue
      }
      const global = GLOBAL_OPTIONS.find((o) => matches(o, flag))
      const local = at.options.find((o) => matches(o, flag)) ?? BUILT_IN.find((o) => matches(o, flag))
      const o = global ?? local
      if (o === undefined) {
        const candidates = [...at.options, ...GLOBAL_OPTIONS].flatMap((x) => names(x).map(dashed))
        const suggestions = closest(
          flag,
          candidates.filter((c) => c.startsWith("--") === flag.startsWith("--"))
        )
        return fail({
          message: `unknown option ${flag} for '${at.path.join(" ")}'`,
          details: [...didYouMean(suggestions), "", helpHint(at.path)],
          suggestions
        })
      }
      let next = i + 1
      let value: string | undefined
      if (o.value !== undefined) {
        const v = readValue(o, flag, inline, i)
        if ("message" in v) return fail(v)
        value = v.value
        next = v.next
      } else if (inline !== undefined) {
        return fail({ message: `option ${flag} takes no value`, details: [helpHint(at.path)], suggestions: [] })
      }
      if (global !== undefined) globals = withGlobal(globals, global.name, value)
      else out.push(flag, ...(value === undefined ? [] : [value]))
      i = next
      continue
    }
    if (at.subcommands.length > 0 && positionals === 0) {
      const sub = at.subcommands.find((c) => c.name === token)
      if (sub !== undefined) {
        at = sub
        out.push(token)
        i++
        continue
      }
      if (at.args.length === 0) {
        const suggestions = closest(
          token,
          at.subcommands.map((c) => c.name)
        )
        const width = Math.max(...at.subcommands.map((c) => c.name.length))
        return fail({
          message: `unknown command ${JSON.stringify(token)} for '${at.path.join(" ")}'`,
          details: [
            ...didYouMean(suggestions),
            "",
            `Commands of '${at.path.join(" ")}':`,
            ...at.subcommands.map((c) => `  ${c.name.padEnd(width)}  ${c.description}`),
            "",
            helpHint(at.path)
          ],
          suggestions
        })
      }
    }
    positionals++
    out.push(token)
    i++
  }
  // A group without its command (`agentsync local`) shows its help, as --help does.
  const group = at.subcommands.length > 0 && at.options.length === 0 && at.args.length === 0
  if (help || (group && !out.includes("--version") && !out.includes("--wizard")))
    return { _tag: "Help", globals, path: at.path }
  return { _tag: "Ok", globals, argv: out, path: at.path }
}

const withGlobal = (g: Globals, name: string, value: string | undefined): Globals => {
  switch (name) {
    case "json":
      return { ...g, json: true }
    case "services":
      return { ...g, services: value }
    case "color":
      return isColorMode(value) ? { ...g, color: value } : g
    case "no-color":
      return { ...g, color: "never" }
    case "quiet":
      return { ...g, quiet: true }
    case "verbose":
      return { ...g, verbose: true }
    case "log-level":
      return isLogLevel(value) ? { ...g, logLevel: value } : g
    case "log-format":
      return { ...g, logFormat: value === "json" ? "json" : "text" }
    default:
      return g
  }
}
