/**
 * What completes a word, and the bash, zsh and fish scripts that ask for it: pure over the command tree, no Effect,
 * so the CLI and the small start path (src/cli/quickRun.ts) share it. Names only the user's machine knows (skill
 * sources, units, tools) are asked for, not read: the caller reads them and finishes the completion.
 */
import { GLOBAL_OPTIONS } from "./argv.js"
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

/** The names a completion may need from the user's machine. */
export type NameKind = "sources" | "units" | "tools"
export type NameLists = Readonly<Record<NameKind, ReadonlyArray<string>>>

/** A completion that needs names read first: `finish` makes it from them. */
export interface NeedsNames {
  readonly needs: ReadonlyArray<NameKind>
  readonly finish: (names: NameLists) => Completion
}

/** A completion, or what it needs read first. */
export type Completing = Completion | NeedsNames

const needing = (needs: ReadonlyArray<NameKind>, finish: (names: NameLists) => Completion): NeedsNames => ({
  needs,
  finish
})

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
const valuesOf = (o: OptionSpec, typed: string, before: string, kinds: ReadonlyArray<string>): Completing => {
  if (o.choices.length > 0) return words(plain(o.choices.map((c) => `${before}${c}`)), before + typed)
  if (o.name === "kind") return list(kinds, typed, before)
  if (o.name === "tools") return needing(["tools"], (n) => list(n.tools, typed, before))
  if (o.value === "DIR") return { candidates: [], directive: "dirs" }
  if (o.value === "FILE" || o.name === "from") return { candidates: [], directive: "files" }
  return nothing
}

/** Candidates for a positional argument, by its name. */
const argumentOf = (c: CommandSpec, index: number, typed: string): Completing => {
  const arg = c.args[Math.min(index, c.args.length - 1)]
  switch (arg?.name) {
    case undefined:
      return nothing
    case "DIR":
    case "PATH":
      return { candidates: [], directive: "dirs" }
    case "FILE":
      return { candidates: [], directive: "files" }
    case "NAME":
      return c.path.includes("source") ? needing(["sources"], (n) => words(plain(n.sources), typed)) : nothing
    case "SCOPE":
      // `source:unit` once a colon is typed; before it, source names and bare unit names.
      return needing(["sources", "units"], ({ sources, units }) =>
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
      return nothing
  }
}

const dashed = (name: string) => (name.length === 1 ? `-${name}` : `--${name}`)

/**
 * What completes `current` after `before` (the words typed after the program's name): subcommands at any depth,
 * the command's flags and the global ones, an option's values, and argument names asked for
 * (`kinds` are the sync kinds `--kind` lists).
 */
export const complete = (
  tree: CommandSpec,
  before: ReadonlyArray<string>,
  current: string,
  kinds: ReadonlyArray<string>
): Completing => {
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
  if (pending !== undefined) return valuesOf(pending, current, "", kinds)
  if (!ended && current.startsWith("-")) {
    const eq = current.indexOf("=")
    if (current.startsWith("--") && eq > 0) {
      const o = optionNamed(current.slice(0, eq))
      return o?.value === undefined ? nothing : valuesOf(o, current.slice(eq + 1), current.slice(0, eq + 1), kinds)
    }
    const flags = optionsAt().flatMap((o) =>
      [o.name, ...o.aliases].map((n) => ({ value: dashed(n), description: o.description }))
    )
    // `-` alone offers the long names only, as gh does: one-letter ones are there to be typed.
    return words(
      current === "-" ? flags.filter((f) => f.value.startsWith("--")) : flags,
      current === "-" ? "--" : current
    )
  }
  if (at.subcommands.length > 0 && positionals === 0)
    return words(
      at.subcommands.map((s) => ({ value: s.name, description: s.description })),
      current
    )
  return argumentOf(at, positionals, current)
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
