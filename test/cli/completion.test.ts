import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { preprocess } from "../../src/cli/argv.js"
import { renderCompletion } from "../../src/cli/complete.js"
import { complete, installPathOf, type Names } from "../../src/cli/completion.js"
import { command } from "../../src/cli/main.js"
import { type CommandSpec, specOf } from "../../src/cli/spec.js"

const tree = specOf(command)
const names: Names = {
  sources: () => Effect.succeed(["team", "tools"]),
  units: () => Effect.succeed(["team:review", "team:deploy", "tools:review"]),
  tools: () => Effect.succeed(["claude", "codex", "cursor"])
}
/** The values completing the last word of `line` (split on spaces; a trailing space starts a new word). */
const at = (line: string) => {
  const words = line.split(" ")
  const current = words.pop() ?? ""
  return Effect.runSync(complete(tree, words, current, names))
}
const values = (line: string) => at(line).candidates.map((c) => c.value)
const all = (c: CommandSpec): Array<CommandSpec> => [c, ...c.subcommands.flatMap(all)]

describe("completion from the command tree", () => {
  it("subcommands at every depth", () => {
    expect(values("")).toContain("files")
    expect(values("sk")).toStrictEqual(["skill", "sync"].filter((s) => s.startsWith("sk")))
    expect(values("skill source ")).toStrictEqual(["add", "list", "remove", "layout"])
    expect(values("deploy lock r")).toStrictEqual(["release"])
    // Global options before the command path do not change where it is.
    expect(values("--json --services ./x files p")).toStrictEqual(["push", "pull"])
    // Every group of the tree lists all its commands.
    for (const c of all(tree).filter((c) => c.subcommands.length > 0)) {
      expect(values([...c.path.slice(1), ""].join(" ")), c.path.join(" ")).toStrictEqual(
        c.subcommands.map((s) => s.name)
      )
    }
  })

  it("the command's flags and the global ones, with descriptions", () => {
    expect(values("files push --d")).toStrictEqual(["--dry-run", "--delete"])
    const sync = at("local sync --")
    expect(sync.candidates.map((c) => c.value)).toEqual(
      expect.arrayContaining(["--to-db", "--to-disk", "--kind", "--json", "--color", "--help"])
    )
    expect(sync.candidates.find((c) => c.value === "--to-db")?.description).toMatch(/database/)
    // Flags of another command are not offered.
    expect(values("local sync --")).not.toContain("--prefer")
    expect(values("skill sync --p")).toStrictEqual(["--prefer"])
  })

  it("an option's values: choices, comma lists, directories; after the flag or inline", () => {
    expect(values("skill sync --prefer ")).toStrictEqual(["home", "repo"])
    expect(values("skill sync --prefer h")).toStrictEqual(["home"])
    expect(values("skill sync --prefer=r")).toStrictEqual(["--prefer=repo"])
    expect(values("--color ")).toStrictEqual(["auto", "always", "never"])
    expect(values("files diff --log-format j")).toStrictEqual(["json"])
    expect(values("local diff --kind ")).toStrictEqual(["agents", "skills", "content", "acl"])
    expect(values("local diff --kind agents,")).toStrictEqual(["agents,skills", "agents,content", "agents,acl"])
    expect(values("skill status --tools claude,cu")).toStrictEqual(["claude,cursor"])
    expect(at("--services ").directive).toBe("dirs")
    expect(at("skill source add --layout ").directive).toBe("files")
    // A value is not taken for a command: `--services files` is a directory named files.
    expect(values("--services files ")).toContain("validate")
  })

  it("arguments: source and unit names, directories, nothing where nothing is known", () => {
    expect(values("skill source remove ")).toStrictEqual(["team", "tools"])
    expect(values("skill sync ")).toStrictEqual(["team", "tools", "review", "deploy"])
    expect(values("skill status team:")).toStrictEqual(["team:review", "team:deploy"])
    expect(at("init ").directive).toBe("dirs")
    expect(at("tenant create ")).toStrictEqual({ candidates: [], directive: "words" })
    // After `--` a word is an argument, never a flag.
    expect(values("validate -- --")).toStrictEqual([])
  })

  it("renders the scripts' protocol: value<TAB>description lines, then the directive", () => {
    expect(renderCompletion(at("skill sync --prefer "))).toBe("home\nrepo\n:words\n")
    expect(renderCompletion(at("files push --dry"))).toBe(
      "--dry-run\tshow the plan; change nothing, state files included\n:words\n"
    )
  })

  it("installs where each shell looks, from the environment", () => {
    const env = { HOME: "/home/u" }
    expect(installPathOf("bash", env).path).toBe("/home/u/.local/share/bash-completion/completions/agentsync")
    expect(installPathOf("bash", { ...env, XDG_DATA_HOME: "/d" }).path).toBe("/d/bash-completion/completions/agentsync")
    expect(installPathOf("fish", env).path).toBe("/home/u/.config/fish/completions/agentsync.fish")
    expect(installPathOf("zsh", env).path).toBe("/home/u/.zsh/completions/_agentsync")
  })

  it("--completions SHELL is another spelling of `completion SHELL`", () => {
    expect(preprocess(tree, ["--completions", "zsh"])).toMatchObject({ _tag: "Ok", argv: ["completion", "zsh"] })
    expect(preprocess(tree, ["--completions=sh"])).toMatchObject({ _tag: "Ok", argv: ["completion", "bash"] })
  })
})
