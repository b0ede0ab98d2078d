import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { agentsync, BIN, cleanEnv, ensureBuilt } from "../support/cli.js"
import { isolateGit, makeUpstream, SAMPLE, tempRoot } from "../support/gitFixture.js"

// The built `agentsync skill ui` in a real pseudo-terminal: a tmux pane, keys sent with send-keys, the screen read
// with capture-pane. Every wait polls the screen against a generous deadline: a loaded machine only makes it slower.

const top = tempRoot("skill-ui-e2e")
isolateGit(top)
const socket = `agentsync-ui-${process.pid}`
const tmux = (...args: Array<string>) =>
  execFileSync("tmux", ["-L", socket, "-f", "/dev/null", ...args], { encoding: "utf8", env: cleanEnv() })

beforeAll(() => ensureBuilt())
afterAll(() => {
  try {
    tmux("kill-server")
  } catch {
    // no server left
  }
  fs.rmSync(top, { recursive: true, force: true })
})

let n = 0
/** A machine with no source yet: a state dir and two tool homes. */
const empty = () => {
  const root = nodePath.join(top, `m${n++}`)
  fs.mkdirSync(root, { recursive: true })
  const env = {
    HOME: nodePath.join(root, "home"),
    AGENTSYNC_HOME: nodePath.join(root, "state"),
    AGENTSYNC_TOOL_HOME_CLAUDE: nodePath.join(root, "claude"),
    AGENTSYNC_TOOL_HOME_CODEX: nodePath.join(root, "codex"),
    GIT_CONFIG_GLOBAL: process.env["GIT_CONFIG_GLOBAL"],
    GIT_CONFIG_NOSYSTEM: "1"
  }
  return { root, env }
}

/** Two sources (local bare repositories) installed for two tools, in a temp dir standing for the user's machine. */
const machine = async () => {
  const { root, env } = empty()
  const team = makeUpstream(root, SAMPLE, "team")
  const tools = makeUpstream(root, { "skills/lint/SKILL.md": "---\nname: lint\n---\nLint the code.\n" }, "tools")
  for (const [name, up] of [
    ["team", team],
    ["tools", tools]
  ] as const) {
    const r = await agentsync(
      ["skill", "install", `git:file://${up.bare}`, "--tools", "claude,codex", "--name", name],
      {
        env,
        cwd: root
      }
    )
    expect(r.stderr).toBe("")
    expect(r.code).toBe(0)
  }
  const home = (tool: "claude" | "codex", p: string) => nodePath.join(root, tool, p)
  return { root, env, team, tools, home }
}

const poll = async <A>(what: string, probe: () => A | undefined, screen: () => string, deadlineMs = 90_000) => {
  const until = Date.now() + deadlineMs
  for (;;) {
    const got = probe()
    if (got !== undefined) return got
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}; the screen:\n${screen()}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/**
 * A panel started in its own tmux window, 120×30. After the command the shell prints its exit code and stays, as a
 * user's shell does: tmux redraws a dead pane from its own history, which loses what the panel's exit printed.
 */
const open = (m: ReturnType<typeof empty>, extraEnv: Record<string, string> = {}) => {
  const name = `p${n++}`
  const vars = Object.entries({ ...m.env, ...extraEnv })
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(" ")
  const script = nodePath.join(m.root, `${name}.sh`)
  fs.writeFileSync(
    script,
    `cd ${JSON.stringify(m.root)} && env ${vars} ${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} skill ui; echo "exit=$?"; sleep 600\n`
  )
  tmux("new-session", "-d", "-s", name, "-x", "120", "-y", "30", `sh ${JSON.stringify(script)}`)
  tmux("set-option", "-t", name, "remain-on-exit", "on")
  const screen = () => tmux("capture-pane", "-p", "-J", "-t", name)
  const keys = (...k: Array<string>) => tmux("send-keys", "-t", name, ...k)
  const lines = () => screen().split("\n")
  const selected = () => lines().find((l) => l.startsWith("> "))
  /** Waits until the screen holds `pattern` and nothing is running (no spinner on the status line). */
  const until = (what: string, pattern: RegExp, deadlineMs?: number) =>
    poll(what, () => (pattern.test(screen()) && !/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] /.test(screen()) ? true : undefined), screen, deadlineMs)
  /** Moves the cursor down to the row of `unit` on `tool` (the rows are few: at most a dozen steps). */
  const focus = async (unit: string, tool: string) => {
    const target = new RegExp(`^> ${unit.replace(/[/]/g, "\\/")}\\s+${tool}\\s`)
    keys("Home")
    await poll("the first row focused", () => (selected() !== undefined ? true : undefined), screen)
    for (let i = 0; i < 12 && !target.test(selected() ?? ""); i++) {
      const before = selected()
      keys("j")
      await poll("the cursor to move", () => (selected() !== before ? true : undefined), screen)
    }
    expect(selected()).toMatch(target)
  }
  const styled = () => tmux("capture-pane", "-p", "-e", "-t", name)
  const altScreen = () => tmux("display-message", "-p", "-t", name, "#{alternate_on}").trim()
  return { screen, keys, selected, until, focus, altScreen, styled }
}

describe("agentsync skill ui (built CLI, real git, a real pseudo-terminal)", () => {
  it("lists units; s syncs a home edit; s on a conflict writes nothing; d shows it; h after y settles it; q restores the terminal", async () => {
    const m = await machine()
    fs.writeFileSync(m.home("claude", "agents/reviewer.md"), "You review code, briefly.\n")
    fs.writeFileSync(m.home("claude", "commands/ship.md"), "Ship it, mine.\n")
    m.team.commit({ "commands/ship.md": "Ship it, theirs.\n" })
    const p = open(m)

    // The rows of both sources, once the sources are fetched (the upstream edit makes the conflict).
    await p.until("the units of both sources", /commands\/ship\s+claude\s+conflict/)
    const first = p.screen()
    expect(first).toMatch(/^agentsync skill ui · 8 units/m)
    expect(first).toMatch(/^team\s*$/m)
    expect(first).toMatch(/^tools\s*$/m)
    expect(first).toMatch(/skills\/lint\s+codex\s+in sync/)
    expect(first).toMatch(/agents\/reviewer\s+claude\s+home changed\s+home → repo/)
    expect(first).toMatch(/s sync {2}d diff/)
    expect(p.altScreen()).toBe("1")
    // Colours: the conflict's row in red (tmux re-renders what it was sent).
    expect(p.styled()).toContain("\u001b[31m")

    // s on a home-changed unit: the `sync: <unit>` commit in the bare remote, and the row in sync.
    await p.focus("agents/reviewer", "claude")
    p.keys("s")
    await p.until("the sync to end", /synced team:agents\/reviewer \[claude\]; committed [0-9a-f]{12}/)
    expect(p.selected()).toMatch(/^> agents\/reviewer\s+claude\s+in sync/)
    expect(m.team.log()[0]).toBe("sync: agents/reviewer")
    expect(m.team.read("agents/reviewer.md")).toBe("You review code, briefly.\n")

    // s on a conflict: nothing written, and why.
    const remote = m.team.log()
    await p.focus("commands/ship", "claude")
    p.keys("s")
    await p.until(
      "the refusal",
      /nothing written: team:commands\/ship \[claude\] is in conflict \(h or r picks a side, d shows it\): both changed/
    )
    expect(fs.readFileSync(m.home("claude", "commands/ship.md"), "utf8")).toBe("Ship it, mine.\n")
    expect(m.team.log()).toEqual(remote)
    expect(m.team.read("commands/ship.md")).toBe("Ship it, theirs.\n")

    // d: the changed line, repo against home.
    p.keys("d")
    await p.until("the diff", /^\+Ship it, mine\.\s*$/m)
    expect(p.screen()).toMatch(/^-Ship it, theirs\.\s*$/m)
    expect(p.screen()).toMatch(/^--- repo\/commands\/ship\.md\s*$/m)
    expect(p.screen()).toMatch(/^\+\+\+ home\/commands\/ship\.md\s*$/m)
    p.keys("q")
    await p.until("the list again", /^> commands\/ship\s+claude\s+conflict/m)

    // h asks first; anything but y cancels; y settles the conflict with the home copy, the repo's kept in a backup.
    p.keys("h")
    await p.until("the question", /prefer home for team:commands\/ship \[claude\]\? \[y\/N\]/)
    p.keys("n")
    await p.until("the cancel", /cancelled: nothing was written/)
    expect(m.team.log()).toEqual(remote)
    p.keys("h")
    await p.until("the question again", /\[y\/N\]/)
    p.keys("y")
    await p.until("the settlement", /settled with the home copy: team:commands\/ship \[claude\]/)
    expect(p.selected()).toMatch(/^> commands\/ship\s+claude\s+in sync/)
    expect(m.team.log()[0]).toBe("sync: commands/ship")
    expect(m.team.read("commands/ship.md")).toBe("Ship it, mine.\n")
    expect(fs.readdirSync(nodePath.join(m.env.AGENTSYNC_HOME, "backups")).length).toBe(1)

    // q: exit 0, the alternate screen left, the shell's screen back.
    p.keys("q")
    await poll("the exit", () => (/^exit=0$/m.test(p.screen()) ? true : undefined), p.screen)
    expect(p.altScreen()).toBe("0")
    expect(p.screen()).not.toMatch(/agentsync skill ui ·/)
  }, 480_000)

  it("NO_COLOR draws no colour; Ctrl-C leaves the panel as an interrupt (exit 130), the terminal restored", async () => {
    const p = open(empty(), { NO_COLOR: "1" })
    await p.until("the list", /no units: add a source with `agentsync skill install URI`/)
    // NO_COLOR: not one style on the screen (with no row there is not even the focused row's reverse video).
    expect(p.styled()).not.toContain("\u001b[")
    p.keys("C-c")
    await poll("the exit", () => (/^exit=130$/m.test(p.screen()) ? true : undefined), p.screen)
    expect(p.altScreen()).toBe("0")
    expect(p.screen()).toMatch(/interrupted by SIGINT: left the skill panel/)
  }, 120_000)

  it("refuses to start without a terminal, pointing at skill status --json (exit 2)", async () => {
    const m = empty()
    const r = await agentsync(["skill", "ui"], { env: m.env, cwd: m.root })
    expect(r.code).toBe(2)
    expect(r.stdout).toBe("")
    expect(r.stderr).toMatch(/agentsync skill ui needs a terminal .*agentsync skill status --json/)
  }, 120_000)
})
