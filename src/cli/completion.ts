/**
 * Shell completion, from the command tree: what fits the word under the cursor (`agentsync __complete CURRENT
 * WORDS…`, which the scripts call), the bash, zsh and fish scripts, and `agentsync completion …` that prints or
 * installs them.
 */
import * as nodePath from "node:path"
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import { Console, Effect, Option } from "effect"
import { SyncKind } from "../domain/model.js"
import { GLOBAL_OPTIONS } from "./argv.js"
import { emit } from "./output.js"
import { usage } from "./root.js"
import type { CommandSpec, OptionSpec } from "./spec.js"

export const SHELLS = ["bash", "zsh", "fish"] as const
export type Shell = (typeof SHELLS)[number]

/** A candidate with its description (zsh and fish show it). */
export interface Candidate {
  readonly value: string
  readonly description: string
}

/** What the shell does besides the candidates: nothing more, or complete file or directory names itself. */
export type Directive = "words" | "files" | "dirs"

export interface Completion {
  readonly candidates: ReadonlyArray<Candidate>
  readonly directive: Directive
}

/** Names only the user's machine knows, read when a word asks for them. */
export interface Names {
  readonly sources: () => Effect.Effect<ReadonlyArray<string>>
  /** Unit names, as `source:unit`. */
  readonly units: () => Effect.Effect<ReadonlyArray<string>>
  readonly tools: () => Effect.Effect<ReadonlyArray<string>>
}

/**
 * The names on this machine: skill sources from the manifest, units from the lock, the tools agentsync knows. A
 * file that cannot be read gives no names: completion says nothing rather than print an error into the command line.
 */
export const liveNames: Names = (() => {
  const store = Effect.promise(() => import("../services/SkillStore.js"))
  const quietly = <A, E>(names: Effect.Effect<ReadonlyArray<A>, E>) => Effect.orElseSucceed(names, () => [])
  return {
    sources: () =>
      quietly(
        Effect.flatMap(store, (m) => m.make().readManifest()).pipe(Effect.map((m) => m.sources.map((s) => s.name)))
      ),
    units: () =>
      quietly(
        Effect.flatMap(store, (m) => m.make().readLock()).pipe(
          Effect.map((l) => Object.entries(l.sources).flatMap(([s, v]) => Object.keys(v.units).map((u) => `${s}:${u}`)))
        )
      ),
    tools: () => Effect.map(store, (m) => m.KNOWN_TOOLS)
  }
})()

/** `agentsync __complete CURRENT WORDS…` (hidden, called by the scripts): the candidates in the scripts' protocol. */
export const completeWords = (tree: CommandSpec, args: ReadonlyArray<string>) =>
  Effect.flatMap(complete(tree, args.slice(1), args[0] ?? "", liveNames), (c) =>
    Effect.sync(() => process.stdout.write(renderCompletion(c)))
  )

const HELP: OptionSpec = {
  name: "help",
  aliases: ["h"],
  value: undefined,
  choices: [],
  default: undefined,
  description: "show help for a command"
}

const words = (candidates: ReadonlyArray<Candidate>, prefix: string): Completion => ({
  candidates: candidates.filter((c) => c.value.startsWith(prefix)),
  directive: "words"
})
const plain = (values: ReadonlyArray<string>, description = ""): ReadonlyArray<Candidate> =>
  values.map((value) => ({ value, description }))
const nothing: Completion = { candidates: [], directive: "words" }

/** A comma-separated list (`--kind agents,sk`): the values not yet listed, after what is typed. */
const list = (values: ReadonlyArray<string>, typed: string, before: string): Completion => {
  const done = typed.split(",")
  const last = done.pop() ?? ""
  const head = done.length === 0 ? "" : `${done.join(",")},`
  return words(
    plain(values.filter((v) => !done.includes(v)).map((v) => `${before}${head}${v}`)),
    `${before}${head}${last}`
  )
}

/** The values of option `o` for the word `typed` (after `before`, the `--flag=` of an inline value). */
const valuesOf = (o: OptionSpec, typed: string, before: string, names: Names): Effect.Effect<Completion> => {
  if (o.choices.length > 0) return Effect.succeed(words(plain(o.choices.map((c) => `${before}${c}`)), before + typed))
  if (o.name === "kind") return Effect.succeed(list(SyncKind.literals, typed, before))
  if (o.name === "tools") return Effect.map(names.tools(), (tools) => list(tools, typed, before))
  if (o.value === "DIR") return Effect.succeed({ candidates: [], directive: "dirs" })
  if (o.value === "FILE" || o.name === "from") return Effect.succeed({ candidates: [], directive: "files" })
  return Effect.succeed(nothing)
}

/** Candidates for a positional argument, by its name. */
const argumentOf = (c: CommandSpec, index: number, typed: string, names: Names): Effect.Effect<Completion> => {
  const arg = c.args[Math.min(index, c.args.length - 1)]
  switch (arg?.name) {
    case undefined:
      return Effect.succeed(nothing)
    case "DIR":
    case "PATH":
      return Effect.succeed({ candidates: [], directive: "dirs" })
    case "FILE":
      return Effect.succeed({ candidates: [], directive: "files" })
    case "NAME":
      return c.path.includes("source")
        ? Effect.map(names.sources(), (s) => words(plain(s), typed))
        : Effect.succeed(nothing)
    case "SCOPE":
      // `source:unit` once a colon is typed; before it, source names and bare unit names.
      return Effect.map(Effect.all([names.sources(), names.units()]), ([sources, units]) =>
        typed.includes(":")
          ? words(plain(units, "unit"), typed)
          : words(
              [
                ...plain(sources, "source"),
                ...plain([...new Set(units.map((u) => u.slice(u.indexOf(":") + 1)))], "unit")
              ],
              typed
            )
      )
    default:
      return Effect.succeed(nothing)
  }
}

const dashed = (name: string) => (name.length === 1 ? `-${name}` : `--${name}`)

/**
 * What completes `current` after `before` (the words typed after the program's name): subcommands at any depth,
 * the command's flags and the global ones, an option's values, and argument names read from `names`.
 */
export const complete = (
  tree: CommandSpec,
  before: ReadonlyArray<string>,
  current: string,
  names: Names
): Effect.Effect<Completion> => {
  let at = tree
  let positionals = 0
  let ended = false
  let pending: OptionSpec | undefined
  const optionsAt = () => [...at.options, ...GLOBAL_OPTIONS, HELP]
  const optionNamed = (flag: string) => optionsAt().find((o) => [o.name, ...o.aliases].some((n) => dashed(n) === flag))
  for (const word of before) {
    if (pending !== undefined) {
      pending = undefined
      continue
    }
    if (!ended && word === "--") ended = true
    else if (!ended && word.startsWith("-") && word !== "-") {
      const o = optionNamed(word)
      if (o?.value !== undefined) pending = o
    } else {
      const sub = positionals === 0 ? at.subcommands.find((s) => s.name === word) : undefined
      if (sub !== undefined) at = sub
      else positionals++
    }
  }
  if (pending !== undefined) return valuesOf(pending, current, "", names)
  if (!ended && current.startsWith("-")) {
    const eq = current.indexOf("=")
    if (current.startsWith("--") && eq > 0) {
      const o = optionNamed(current.slice(0, eq))
      return o?.value === undefined
        ? Effect.succeed(nothing)
        : valuesOf(o, current.slice(eq + 1), current.slice(0, eq + 1), names)
    }
    const flags = optionsAt().flatMap((o) =>
      [o.name, ...o.aliases].map((n) => ({ value: dashed(n), description: o.description }))
    )
    // `-` alone offers the long names only, as gh does: one-letter ones are there to be typed.
    return Effect.succeed(
      words(current === "-" ? flags.filter((f) => f.value.startsWith("--")) : flags, current === "-" ? "--" : current)
    )
  }
  if (at.subcommands.length > 0 && positionals === 0)
    return Effect.succeed(
      words(
        at.subcommands.map((s) => ({ value: s.name, description: s.description })),
        current
      )
    )
  return argumentOf(at, positionals, current, names)
}

/** The protocol the scripts read: `value<TAB>description` lines, then `:words`, `:files` or `:dirs`. */
export const renderCompletion = (c: Completion): string =>
  [...c.candidates.map((x) => (x.description === "" ? x.value : `${x.value}\t${x.description}`)), `:${c.directive}`]
    .map((l) => `${l.replace(/\n/g, " ")}\n`)
    .join("")

const BASH = `# bash completion for agentsync (agentsync completion bash)
_agentsync() {
  local line=\${COMP_LINE:0:COMP_POINT} cur="" out directive value
  local -a words
  read -ra words <<<"$line"
  if [[ -n $line && $line != *[[:space:]] ]]; then
    cur=\${words[\${#words[@]}-1]}
    unset 'words[\${#words[@]}-1]'
  fi
  out=$(agentsync __complete "$cur" "\${words[@]:1}" 2>/dev/null) || return 0
  directive=\${out##*$'\\n'}
  COMPREPLY=()
  case $directive in
  :files) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "\${cur#*=}")) ;;
  :dirs) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "\${cur#*=}")) ;;
  esac
  while IFS=$'\\t' read -r value _; do
    [[ -n $value && $value != :* ]] && COMPREPLY+=("$value")
  done <<<"$out"
  # Bash replaces only the text after the last = or : (COMP_WORDBREAKS): the candidates lose what is before it.
  local pre=\${cur%"\${cur##*[=:]}"}
  if [[ -n $pre && $directive == :words ]]; then COMPREPLY=("\${COMPREPLY[@]#"$pre"}"); fi
  return 0
}
complete -F _agentsync agentsync
`

const ZSH = `#compdef agentsync
# zsh completion for agentsync (agentsync completion zsh)
_agentsync() {
  local out directive line value description
  local -a lines items
  out=$(agentsync __complete "\${words[CURRENT]}" "\${(@)words[2,CURRENT-1]}" 2>/dev/null) || return 1
  lines=("\${(@f)out}")
  directive=\${lines[-1]}
  case $directive in
  :files) _files; return ;;
  :dirs) _files -/; return ;;
  esac
  for line in "\${(@)lines[1,-2]}"; do
    value=\${line%%$'\\t'*}
    description=\${line#*$'\\t'}
    [[ $description == "$line" ]] && description=""
    items+=("\${value//:/\\\\:}\${description:+:$description}")
  done
  (( \${#items} )) && _describe -t values agentsync items
}
if [[ "\${funcstack[1]}" == _agentsync ]]; then _agentsync "$@"; else compdef _agentsync agentsync; fi
`

const FISH = `# fish completion for agentsync (agentsync completion fish)
function __agentsync_complete
    set -l tokens (commandline -opc)
    set -l current (commandline -ct)
    set -l out (agentsync __complete "$current" $tokens[2..-1] 2>/dev/null)
    or return
    switch "$out[-1]"
        case :files
            __fish_complete_path "$current"
        case :dirs
            __fish_complete_directories "$current"
    end
    set -e out[-1]
    printf '%s\\n' $out
end
complete -c agentsync -f -a '(__agentsync_complete)'
`

export const scriptOf = (shell: Shell): string => ({ bash: BASH, zsh: ZSH, fish: FISH })[shell]

/** Where a user's shell looks for completions of its own, and what (if anything) must be added to its rc file. */
export const installPathOf = (
  shell: Shell,
  env: NodeJS.ProcessEnv = process.env
): { readonly path: string; readonly hint: string | undefined } => {
  const home = env.HOME ?? ""
  const xdg = (name: string, fallback: string) => {
    const v = env[name]
    return v !== undefined && nodePath.isAbsolute(v) ? v : nodePath.join(home, fallback)
  }
  switch (shell) {
    case "bash":
      return {
        path: nodePath.join(xdg("XDG_DATA_HOME", ".local/share"), "bash-completion", "completions", "agentsync"),
        hint: "bash-completion loads it in new shells (the bash-completion package must be installed)"
      }
    case "zsh": {
      const dir = nodePath.join(env.ZDOTDIR ?? home, ".zsh", "completions")
      return {
        path: nodePath.join(dir, "_agentsync"),
        hint: `add to ~/.zshrc, before compinit: fpath=(${dir} $fpath); autoload -U compinit && compinit`
      }
    }
    case "fish":
      return {
        path: nodePath.join(xdg("XDG_CONFIG_HOME", ".config"), "fish", "completions", "agentsync.fish"),
        hint: undefined
      }
  }
}

const print = (shell: Shell) =>
  Command.make(shell, {}, () => Console.log(scriptOf(shell).trimEnd())).pipe(
    Command.withDescription(`print the ${shell} completion script`)
  )

const install = Command.make(
  "install",
  {
    shell: Args.choice(
      SHELLS.map((s) => [s, s] as const),
      { name: "SHELL" }
    ).pipe(Args.withDescription("bash, zsh or fish (default: the one $SHELL names)"), Args.optional)
  },
  (o) =>
    Effect.gen(function* () {
      const fromEnv = nodePath.basename(process.env.SHELL ?? "")
      const shell = Option.getOrUndefined(o.shell) ?? SHELLS.find((s) => s === fromEnv)
      if (shell === undefined)
        return yield* usage(`cannot tell the shell from SHELL=${fromEnv || "(unset)"}; name it: bash, zsh or fish`)
      const { path, hint } = installPathOf(shell)
      const { writeFileAtomic } = yield* Effect.promise(() => import("../services/Workspace.js"))
      yield* writeFileAtomic(path, scriptOf(shell))
      yield* emit({ shell, path }, () =>
        [
          `wrote the ${shell} completion script to ${path}`,
          ...(hint === undefined ? [] : [hint]),
          "open a new shell to use it"
        ].join("\n")
      )
    })
).pipe(Command.withDescription("write the completion script where your shell loads it from, and say where"))

export const completion = Command.make("completion").pipe(
  Command.withDescription("print or install the shell completion script (bash, zsh, fish)"),
  Command.withSubcommands([print("bash"), print("zsh"), print("fish"), install])
)
