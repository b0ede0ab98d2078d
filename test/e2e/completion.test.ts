import { spawnSync } from "node:child_process"
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { agentsync, BIN, cleanEnv, ensureBuilt } from "../support/cli.js"

// The shells' own completion machinery, calling the built CLI as `agentsync` on PATH.
let dir: string
let env: Record<string, string>
let scripts: Record<"bash" | "zsh" | "fish", string>

beforeAll(async () => {
  ensureBuilt()
  dir = mkdtempSync(join(tmpdir(), "agentsync-completion-"))
  const bin = join(dir, "bin")
  mkdirSync(bin)
  writeFileSync(join(bin, "agentsync"), `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`)
  chmodSync(join(bin, "agentsync"), 0o755)
  // A skill source of the user's, for names completed from the machine.
  mkdirSync(join(dir, "home", ".agentsync"), { recursive: true })
  writeFileSync(
    join(dir, "home", ".agentsync", "manifest.yaml"),
    "sources:\n  - name: team-skills\n    uri: gh:acme/skills\n"
  )
  env = cleanEnv({ PATH: `${bin}:${process.env.PATH}`, HOME: join(dir, "home"), XDG_DATA_HOME: undefined })
  scripts = { bash: "", zsh: "", fish: "" }
  for (const shell of ["bash", "zsh", "fish"] as const) {
    const r = await agentsync(["completion", shell])
    expect(r.code).toBe(0)
    scripts[shell] = join(dir, `agentsync.${shell}`)
    writeFileSync(scripts[shell], r.stdout)
  }
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const has = (shell: string) => spawnSync(shell, ["-c", "exit 0"]).status === 0

/** COMPREPLY of bash's real completion function for `line`, the cursor at its end. */
const bash = (line: string): Array<string> => {
  const words = line.split(" ")
  const program = [
    `source ${scripts.bash}`,
    `COMP_LINE=${JSON.stringify(line)}`,
    `COMP_POINT=${line.length}`,
    `COMP_WORDS=(${words.map((w) => JSON.stringify(w)).join(" ")})`,
    `COMP_CWORD=${words.length - 1}`,
    "_agentsync",
    `printf "%s\\n" "\${COMPREPLY[@]}"`
  ].join("\n")
  const r = spawnSync("bash", ["-c", program], { env, encoding: "utf8" })
  expect(r.stderr).toBe("")
  return r.stdout.split("\n").filter((l) => l !== "")
}

describe("completion in the shells (built CLI)", () => {
  it("bash: flags of a third-level command, of a second-level one, subcommands, an option's values", () => {
    expect(bash("agentsync files push --d")).toStrictEqual(["--dry-run", "--delete"])
    expect(bash("agentsync local sync --")).toEqual(
      expect.arrayContaining(["--to-db", "--to-disk", "--kind", "--json"])
    )
    expect(bash("agentsync skill source ")).toStrictEqual(["add", "list", "remove", "layout"])
    expect(bash("agentsync skill sync --prefer ")).toStrictEqual(["home", "repo"])
    // Bash replaces only what follows `=`: the candidate is the value alone.
    expect(bash("agentsync skill sync --prefer=h")).toStrictEqual(["home"])
    expect(bash("agentsync skill source remove ")).toStrictEqual(["team-skills"])
    // The script is registered for the command.
    const r = spawnSync("bash", ["-c", `source ${scripts.bash}; complete -p agentsync`], { env, encoding: "utf8" })
    expect(r.stdout).toContain("-F _agentsync agentsync")
  })

  it("--completions SHELL prints the same script", async () => {
    const r = await agentsync(["--completions", "bash"])
    expect(r.code).toBe(0)
    expect(`${r.stdout}`).toBe(readFileSync(scripts.bash, "utf8"))
  })

  it.skipIf(!has("zsh"))("zsh: the script parses, and its function hands the candidates to _describe", () => {
    const r = spawnSync("zsh", ["-n", scripts.zsh], { encoding: "utf8" })
    expect(r.stderr).toBe("")
    expect(r.status).toBe(0)
    // The completion system's own functions need zsh's line editor: here they print what they were given.
    const program = [
      `compdef() { :; }; _describe() { print -l -- "\${(@P)\${@[-1]}}"; }; _files() { print "files $*"; }`,
      `source ${scripts.zsh}`,
      'words=(agentsync skill sync --prefer ""); CURRENT=5; _agentsync',
      "words=(agentsync files push --d); CURRENT=4; _agentsync",
      'words=(agentsync --services ""); CURRENT=3; _agentsync'
    ].join("\n")
    const z = spawnSync("zsh", ["-f", "-c", program], { env, encoding: "utf8" })
    expect(z.stderr).toBe("")
    expect(z.stdout.split("\n")).toStrictEqual([
      "home",
      "repo",
      "--dry-run:show the plan; change nothing, state files included",
      "--delete:carry deletions to the other side",
      "files -/",
      ""
    ])
  })

  it.skipIf(!has("fish"))("fish: the script parses and completes through `complete -C`", () => {
    expect(spawnSync("fish", ["-n", scripts.fish], { encoding: "utf8" }).status).toBe(0)
    const r = spawnSync(
      "fish",
      [
        "--no-config",
        "-c",
        `source ${scripts.fish}; complete -C 'agentsync skill sync --prefer '; complete -C 'agentsync files push --d'`
      ],
      { env, encoding: "utf8" }
    )
    expect(r.stderr).toBe("")
    expect(r.stdout.split("\n").map((l) => l.split("\t")[0])).toEqual(
      expect.arrayContaining(["home", "repo", "--dry-run", "--delete"])
    )
  })

  it("completion install writes where the shell loads it and says where", async () => {
    const r = await agentsync(["completion", "install", "fish"], { env: { HOME: join(dir, "home") } })
    expect(r.code).toBe(0)
    const path = join(dir, "home", ".config", "fish", "completions", "agentsync.fish")
    expect(r.stdout).toContain(path)
    expect(existsSync(path) && readFileSync(path, "utf8")).toBe(readFileSync(scripts.fish, "utf8"))
  })
})
