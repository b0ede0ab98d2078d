/** `--help` for every command, rendered from the command tree: usage with the full path, flags, environment, examples. */
import { GLOBAL_OPTIONS } from "./argv.js"
import type { CommandSpec, OptionSpec } from "./spec.js"

/** The environment variables a command reads, by command path (a group's apply to its commands). */
const ENVIRONMENT: Record<string, ReadonlyArray<readonly [string, string]>> = {
  "agentsync local": [["DATABASE_URL", "the project database (unset: embedded PGlite under .agentsync/pgdata)"]],
  "agentsync files": [
    ["AGENTSYNC_DIRECT_URL", "the tenant server's origin (direct-sync mode); or agentsync.yaml direct_url"],
    ["AGENTSYNC_API_URL", "the shared API (cloud-relay mode); or agentsync.yaml api_url"],
    ["AGENTSYNC_TENANT_ID", "the tenant; or agentsync.yaml tenant_id"],
    ["AGENTSYNC_TOKEN", "the tenant's token (never in agentsync.yaml)"]
  ],
  "agentsync db": [
    ["DATABASE_URL", "the project database (unset: embedded PGlite under .agentsync/pgdata)"],
    ["AGENTSYNC_CLOUD_DATABASE_URL", "the cloud database"]
  ],
  "agentsync serve": [
    ["DATABASE_URL", "the server's database (unset: embedded under --data)"],
    ["AGENTSYNC_ADMIN_TOKEN", "turns the admin API on (24 characters at least)"]
  ],
  "agentsync tenant": [
    ["DATABASE_URL", "the server's database (unset: embedded under --data)"],
    ["AGENTSYNC_SERVER_URL", "a running server to manage through its admin API (or --server)"],
    ["AGENTSYNC_ADMIN_TOKEN", "that server's admin token"]
  ],
  "agentsync token": [
    ["DATABASE_URL", "the server's database (unset: embedded under --data)"],
    ["AGENTSYNC_SERVER_URL", "a running server to manage through its admin API (or --server)"],
    ["AGENTSYNC_ADMIN_TOKEN", "that server's admin token"]
  ],
  "agentsync deploy": [
    ["AGENTSYNC_DIRECT_URL", "the tenant server's origin; or agentsync.yaml direct_url"],
    ["AGENTSYNC_TOKEN", "the tenant's token"]
  ],
  "agentsync jobs": [
    ["DATABASE_URL", "share the jobs' runs in this database (unset: .agentsync/jobs.json)"],
    ["AGENTSYNC_JOBS_LEASE", "how long a claimed fire is held (default 60s)"]
  ]
}
ENVIRONMENT["agentsync sync"] = [...(ENVIRONMENT["agentsync files"] ?? []), ...(ENVIRONMENT["agentsync db"] ?? [])]

/** A few lines of what people type, by command path. */
const EXAMPLES: Record<string, ReadonlyArray<string>> = {
  agentsync: [
    "agentsync status",
    "agentsync validate",
    "agentsync local sync --to-db --dry-run",
    "agentsync files push --json"
  ],
  "agentsync validate": ["agentsync validate", "agentsync validate examples/project -v", "agentsync validate --json"],
  "agentsync local": ["agentsync local diff", "agentsync local sync --to-db"],
  "agentsync local diff": [
    "agentsync local diff",
    "agentsync local diff -p --kind agents",
    "agentsync local diff --kind agents,skills --json"
  ],
  "agentsync local sync": [
    "agentsync local sync --to-db --dry-run",
    "agentsync local sync --to-disk --kind content",
    "agentsync local sync --to-db --delete-orphans"
  ],
  "agentsync files": ["agentsync files diff", "agentsync files push", "agentsync files pull --dry-run"],
  "agentsync files diff": ["agentsync files diff", "agentsync files diff -p", "agentsync files diff --json"],
  "agentsync files push": ["agentsync files push --dry-run", "agentsync files push --delete"],
  "agentsync files pull": [
    "agentsync files pull --dry-run",
    "agentsync files pull --force",
    "agentsync files pull --revision 1a2b3c4d --delete"
  ],
  "agentsync files log": ["agentsync files log", "agentsync files log --limit 5 --json"],
  "agentsync files backups": ["agentsync files backups"],
  "agentsync files restore": ["agentsync files backups", "agentsync files restore 20261129T193000Z-1a2b"],
  "agentsync db": ["agentsync db diff", "agentsync db push --dry-run"],
  "agentsync db diff": ["agentsync db diff --json"],
  "agentsync db push": ["agentsync db push --dry-run", "agentsync db push"],
  "agentsync db pull": ["agentsync db pull --dry-run", "agentsync db pull"],
  "agentsync sync": ["agentsync sync --dry-run", "agentsync sync --pull"],
  "agentsync serve": ["agentsync serve", "agentsync serve --port 0 --data ./server", "agentsync serve --jobs"],
  "agentsync tenant": ["agentsync tenant create acme"],
  "agentsync tenant create": ["agentsync tenant create acme", "agentsync tenant create acme --json"],
  "agentsync tenant list": ["agentsync tenant list", "agentsync tenant list --server https://sync.example.com"],
  "agentsync token": ["agentsync token create acme-1a2b --name laptop", "agentsync token list --tenant acme-1a2b"],
  "agentsync token create": ["agentsync token create acme-1a2b --name ci --expires-in '90 days'"],
  "agentsync token list": ["agentsync token list", "agentsync token list --tenant acme-1a2b --json"],
  "agentsync token revoke": ["agentsync token revoke 3f9a1c2b7d4e8f60"],
  "agentsync token rotate": ["agentsync token rotate 3f9a1c2b7d4e8f60"],
  "agentsync skill": ["agentsync skill install gh:owner/skills", "agentsync skill status", "agentsync skill sync"],
  "agentsync skill source": ["agentsync skill source add gh:owner/skills", "agentsync skill source list"],
  "agentsync skill source add": [
    "agentsync skill source add gh:owner/skills --ref v2",
    "agentsync skill source add git:../my-skills --read-only"
  ],
  "agentsync skill source list": ["agentsync skill source list --json"],
  "agentsync skill source remove": ["agentsync skill source remove skills"],
  "agentsync skill source layout": [
    "agentsync skill source layout skills",
    "agentsync skill source layout skills rules.yaml",
    "agentsync skill source layout skills --reset"
  ],
  "agentsync skill install": [
    "agentsync skill install gh:owner/skills",
    "agentsync skill install git:../skills --tools claude --units 'review-*'"
  ],
  "agentsync skill update": ["agentsync skill update", "agentsync skill update skills --dry-run"],
  "agentsync skill status": ["agentsync skill status", "agentsync skill status skills --offline"],
  "agentsync skill sync": ["agentsync skill sync --dry-run", "agentsync skill sync --prefer home --yes"],
  "agentsync skill ui": ["agentsync skill ui", "NO_COLOR=1 agentsync skill ui"],
  "agentsync deploy": ["agentsync deploy --dry-run", "agentsync deploy --tag v1.2 --message 'fix login'"],
  "agentsync deploy releases": ["agentsync deploy releases --limit 5"],
  "agentsync deploy status": ["agentsync deploy status", "agentsync deploy status 12 --wait"],
  "agentsync deploy rollback": ["agentsync deploy rollback", "agentsync deploy rollback 11"],
  "agentsync deploy lock": ["agentsync deploy lock status"],
  "agentsync deploy lock status": ["agentsync deploy lock status --json"],
  "agentsync deploy lock release": ["agentsync deploy lock release"],
  "agentsync jobs": ["agentsync jobs list", "agentsync jobs run --once"],
  "agentsync jobs run": ["agentsync jobs run", "agentsync jobs run --once --job nightly-sync"],
  "agentsync jobs list": ["agentsync jobs list"],
  "agentsync jobs history": ["agentsync jobs history --job nightly-sync --limit 5"],
  "agentsync init": ["agentsync init", "agentsync init my-project && agentsync validate my-project"],
  "agentsync status": ["agentsync status", "agentsync status --json --timeout 5", 'agentsync status || echo "exit $?"'],
  "agentsync doctor": ["agentsync doctor", "agentsync doctor --json"],
  "agentsync config": ["agentsync config", "agentsync config --json"],
  "agentsync demo": ["agentsync demo", "agentsync demo --dir ./demo"],
  "agentsync completion": ["agentsync completion install", "source <(agentsync completion bash)"],
  "agentsync completion bash": ["agentsync completion install bash", "source <(agentsync completion bash)"],
  "agentsync completion zsh": [
    "agentsync completion zsh > ~/.zsh/completions/_agentsync",
    "source <(agentsync completion zsh)"
  ],
  "agentsync completion fish": ["agentsync completion fish > ~/.config/fish/completions/agentsync.fish"],
  "agentsync completion install": ["agentsync completion install", "agentsync completion install zsh"]
}

/** The environment of a command: its own, else its nearest group's. */
const environmentOf = (path: ReadonlyArray<string>) => {
  for (let n = path.length; n > 0; n--) {
    const env = ENVIRONMENT[path.slice(0, n).join(" ")]
    if (env !== undefined) return env
  }
  return []
}

/** Words of `text` in lines of at most `width` (a longer word stays whole). */
export const wrap = (text: string, width: number): Array<string> => {
  const lines: Array<string> = []
  let line = ""
  for (const word of text.split(/\s+/).filter((w) => w !== "")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line)
      line = word
    } else line = line === "" ? word : `${line} ${word}`
  }
  if (line !== "") lines.push(line)
  return lines.length === 0 ? [""] : lines
}

const shownValue = (o: OptionSpec) =>
  o.value === undefined ? "" : ` ${o.choices.length > 0 && o.choices.length <= 4 ? o.choices.join("|") : o.value}`

const flagOf = (o: OptionSpec) => {
  const short = o.aliases.filter((a) => a.length === 1).map((a) => `-${a}, `)
  return `${short.length > 0 ? short.join("") : "    "}--${o.name}${shownValue(o)}`
}

const optionText = (o: OptionSpec) =>
  `${o.description}${o.default === undefined || /\(default/.test(o.description) ? "" : ` (default ${o.default})`}`

/** Two columns: terms padded to one width, descriptions wrapped beside them. */
const columns = (rows: ReadonlyArray<readonly [string, string]>, width: number): Array<string> => {
  const left = Math.min(Math.max(...rows.map(([t]) => t.length)), 32)
  const room = Math.max(width - left - 4, 30)
  return rows.flatMap(([term, text]) => {
    const [first = "", ...rest] = wrap(text, room)
    const head =
      term.length > left ? [`  ${term}`, `  ${" ".repeat(left)}  ${first}`] : [`  ${term.padEnd(left)}  ${first}`]
    return [...head, ...rest.map((l) => `  ${" ".repeat(left)}  ${l}`)].map((l) => l.trimEnd())
  })
}

const usageLines = (c: CommandSpec, width: number): Array<string> => {
  const cmd = c.path.join(" ")
  const args = c.args.map((a) => (a.optional ? `[${a.name}]` : a.name))
  const lines: Array<string> = []
  if (c.subcommands.length === 0 || c.options.length > 0) {
    const flags = c.options.map((o) => `[--${o.name}${shownValue(o)}]`)
    const full = [cmd, ...args, ...flags].join(" ")
    lines.push(full.length + 2 <= width ? full : [cmd, ...args, c.options.length > 0 ? "[flags]" : ""].join(" ").trim())
  }
  if (c.subcommands.length > 0) lines.push(`${cmd} <command>`)
  return lines.map((l) => `  ${l}`)
}

/** The help page of `c`, `width` columns wide, with bold headings when `color`. */
export const render = (c: CommandSpec, options: { readonly width: number; readonly color: boolean }): string => {
  const width = Math.max(options.width, 40)
  const heading = (s: string) => (options.color ? `\x1b[1m${s}\x1b[0m` : s)
  const out: Array<string> = [...wrap(c.description, width), ""]
  const section = (title: string, lines: ReadonlyArray<string>) => {
    if (lines.length > 0) out.push(heading(title), ...lines, "")
  }
  section("USAGE", usageLines(c, width))
  section(
    "COMMANDS",
    columns(
      c.subcommands.map((s) => [s.name, s.description]),
      width
    )
  )
  section(
    "ARGUMENTS",
    columns(
      c.args.map((a) => [a.name, `${a.description}${a.optional ? " (optional)" : ""}`]),
      width
    )
  )
  section(
    "FLAGS",
    columns(
      c.options.map((o) => [flagOf(o), optionText(o)]),
      width
    )
  )
  const root = c.path.length === 1
  section(
    root ? "GLOBAL FLAGS (before or after any command)" : "GLOBAL FLAGS",
    root
      ? columns(
          [
            ...GLOBAL_OPTIONS.map((o) => [flagOf(o), optionText(o)] as const),
            ["-h, --help", "show help for a command"]
          ],
          width
        )
      : wrap(
          `${GLOBAL_OPTIONS.map((o) => `--${o.name}${o.value === undefined ? "" : ` ${o.value}`}`).join(", ")}, --help (see '${c.path[0]} --help')`,
          width - 2
        ).map((l) => `  ${l}`)
  )
  section("ENVIRONMENT", columns(environmentOf(c.path), width))
  section(
    "EXAMPLES",
    (EXAMPLES[c.path.join(" ")] ?? []).map((e) => `  $ ${e}`)
  )
  if (c.subcommands.length > 0)
    section("LEARN MORE", [`  Use '${c.path.join(" ")} <command> --help' for more about a command.`])
  return `${out.join("\n").trimEnd()}\n`
}
