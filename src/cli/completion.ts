/**
 * Shell completion in the CLI: `agentsync __complete CURRENT WORDS…` (which the scripts call) with the names read
 * from this machine, and `agentsync completion …` that prints or installs the scripts. What completes a word and
 * the scripts themselves are in complete.ts, shared with the small start path.
 */
import * as nodePath from "node:path"
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import { Console, Effect, Option } from "effect"
import { SyncKind } from "../domain/model.js"
import {
  type Completion,
  complete as completeStatic,
  type NameKind,
  renderCompletion,
  SHELLS,
  type Shell,
  scriptOf
} from "./complete.js"
import { emit } from "./output.js"
import { usage } from "./root.js"
import type { CommandSpec } from "./spec.js"

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

/** What completes `current` after `before`, with the names it needs read from `names`. */
export const complete = (
  tree: CommandSpec,
  before: ReadonlyArray<string>,
  current: string,
  names: Names
): Effect.Effect<Completion> => {
  const c = completeStatic(tree, before, current, SyncKind.literals)
  if (!("needs" in c)) return Effect.succeed(c)
  const read = (kind: NameKind) => (c.needs.includes(kind) ? names[kind]() : Effect.succeed([]))
  return Effect.map(Effect.all({ sources: read("sources"), units: read("units"), tools: read("tools") }), c.finish)
}

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
