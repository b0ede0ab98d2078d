/** `agentsync skill …`: sources, install, update, status and two-way sync of units deployed in tool homes. */
import * as readline from "node:readline/promises"
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Effect, Layer, Option } from "effect"
import { escapeHidden } from "../domain/text.js"
import type { ActionView, StatusRow, SyncReport } from "../programs/skillSync.js"
import { escapePath } from "../services/nameBytes.js"
import { noPaint, type Paint } from "./color.js"
import { emit, table, tableOf } from "./output.js"
import { globals } from "./root.js"
import { ui } from "./skillUi/command.js"

/** The skill programs' module, loaded only when a skill command runs. */
const skillSync = Effect.promise(() => import("../programs/skillSync.js"))

/**
 * What skill commands run on: the `SkillSync` service and its ports (the panel reads them too), built only when
 * one runs; the platform's CommandExecutor comes from the runtime.
 */
const services = Layer.unwrapEffect(
  Effect.map(skillSync, (m) => m.SkillSync.DefaultWithoutDependencies.pipe(Layer.provideMerge(m.portsLayer)))
)

/** The service, from the layer above. */
const skillService = Effect.flatMap(skillSync, (m) => m.SkillSync)

// A unit's name and a reason that names files (`home changed: sub/f.md`) come from disk or a repository: shown with
// their control characters escaped (`escapePath`, `escapeHidden`), none reaches a terminal raw; --json keeps them raw.
const unitOf = (source: string, unit: string) => `${source}:${escapePath(unit)}`

const arrow = (a: ActionView, p: Paint = noPaint): string => {
  const where = `${unitOf(a.source, a.unit)} [${a.tool}]`
  const reason = escapeHidden(a.reason)
  switch (a.direction) {
    case "ToHome":
      return `repo → home  ${where}  ${reason}`
    case "ToRepo":
      return `home → repo  ${where}  ${reason}`
    case "Conflict":
      return p.red(`home ≠ repo  ${where}  CONFLICT: ${reason} (home ${a.home}, repo ${a.repo}, base ${a.base})`)
    default:
      return `home = repo  ${where}  ${reason}`
  }
}

/** The plan with arrows and reasons (in-sync units are counted, not listed), then what happened. */
export const describeReport = (r: SyncReport, p: Paint = noPaint): string => {
  const lines = r.actions.filter((a) => !(a.direction === "NoOp" && a.status === "in-sync")).map((a) => arrow(a, p))
  const s = r.summary
  lines.push(
    `${r.dryRun ? "plan (dry run, nothing written)" : "plan"}: ${s.toHome} to home, ${s.toRepo} to repo, ${s.noOp} unchanged, ${s.conflicts} conflict${s.conflicts === 1 ? "" : "s"}`
  )
  for (const c of r.commits)
    lines.push(
      `committed ${c.commit.slice(0, 12)} in ${c.source} (${escapeHidden(c.unit)})${c.pushed ? ", pushed" : ", not pushed"}`
    )
  for (const b of r.backups)
    lines.push(`kept the replaced copy of ${unitOf(b.source, b.unit)} (${b.side}) in ${escapePath(b.path)}`)
  for (const k of r.skipped) lines.push(`skipped ${unitOf(k.source, k.unit)} [${k.tool}]: ${escapeHidden(k.reason)}`)
  lines.push(...findings(r, p))
  if (!r.dryRun) lines.push(`applied ${r.applied.length} action${r.applied.length === 1 ? "" : "s"}`)
  return lines.join("\n")
}

/** Files left alone, repairs made, sources that could not be used. */
const findings = (
  r: Pick<SyncReport, "ignored" | "notes" | "errors" | "withheld">,
  p: Paint = noPaint
): ReadonlyArray<string> => [
  // A path found on disk or in a repository, as `escapePath` shows it: its control characters reach no terminal.
  ...r.ignored.map((i) => `ignored ${i.source}:${escapePath(i.path)}: ${escapeHidden(i.reason)}`),
  ...r.notes.map((n) => `note: ${n.source}: ${escapeHidden(n.note)}`),
  // The advice's consequences are a line of their own (`THEN`): each part escaped whole, so that a newline in a
  // name it quotes is shown by its bytes, the one break between them kept.
  ...r.withheld.map((w) => {
    const at = w.reason.indexOf(THEN)
    const parts = at === -1 ? [w.reason] : [w.reason.slice(0, at), w.reason.slice(at + 1)]
    return p.red(`left out ${unitOf(w.source, w.unit)}: ${parts.map(escapeHidden).join("\n  ")}`)
  }),
  ...r.errors.map((e) => p.red(`error in source ${e.source}: ${escapeHidden(e.reason)}`))
]

/** Where a withheld unit's advice starts its consequences' line (`THEN` of `withheldReason`; the programs load lazily). */
const THEN = "\nthen "

/** `skill status` for a person: a row per unit and tool, then the findings. */
export const statusText = (
  r: Pick<SyncReport, "ignored" | "notes" | "errors" | "withheld"> & { readonly rows: ReadonlyArray<StatusRow> },
  p: Paint = noPaint
): string => {
  const lines =
    r.rows.length === 0
      ? ["no units"]
      : [
          table(
            ["SOURCE", "UNIT", "TOOL", "STATE", "REASON"],
            r.rows.map((x) => [x.source, escapePath(x.unit), x.tool, p.status(x.state), escapeHidden(x.reason)])
          )
        ]
  lines.push(...findings(r, p))
  return lines.join("\n")
}

/** After printing, the same for status and sync: conflicts exit 3 naming both sides' hashes; failed sources or skipped actions exit 1. */
const finish = (command: string, r: Parameters<typeof import("../programs/skillSync.js").outcomeOf>[1]) =>
  Effect.gen(function* () {
    const { outcomeOf } = yield* skillSync
    const outcome = outcomeOf(command, r)
    if (Option.isSome(outcome)) return yield* outcome.value
  })

const toolsOption = Options.text("tools").pipe(
  Options.withDescription(
    "comma-separated tools to deploy to (claude, codex, cursor, gemini, …); default: those whose home exists"
  ),
  Options.optional
)
const nameOption = Options.text("name").pipe(
  Options.withDescription("the source's name (default: from the URI)"),
  Options.optional
)
const refOption = Options.text("ref").pipe(
  Options.withDescription("branch, tag or commit (default: the remote's default branch, asked once and kept)"),
  Options.optional
)
const readOnlyOption = Options.boolean("read-only").pipe(Options.withDescription("never commit to this source"))
const layoutOption = Options.file("layout").pipe(
  Options.withDescription(
    "a YAML file of layout rules [{glob, repo, home, exclude}] (default: detected from the repository)"
  ),
  Options.optional
)

/** The rules of a --layout file, read and checked (file:line) before anything else happens. */
const layoutFrom = (file: Option.Option<string>) =>
  Option.match(file, {
    onNone: () => Effect.succeed(undefined),
    onSome: (f) => Effect.flatMap(skillSync, (m) => m.readLayoutFile(f))
  })
const uriArg = Args.text({ name: "URI" }).pipe(
  Args.withDescription(
    "gh:owner/repo, git:<url or path>, local:<path>, or a git URL (https://…, ssh://…, user@host:path)"
  )
)

const splitTools = (o: Option.Option<string>) =>
  Option.match(o, {
    onNone: () => undefined,
    onSome: (s) =>
      s
        .split(",")
        .map((t) => t.trim())
        .filter((t) => t !== "")
  })

const sourceAdd = Command.make(
  "add",
  { uri: uriArg, name: nameOption, ref: refOption, readOnly: readOnlyOption, layout: layoutOption },
  (o) =>
    Effect.gen(function* () {
      const SkillSync = yield* skillService
      const layout = yield* layoutFrom(o.layout)
      const r = yield* SkillSync.addSource({
        uri: o.uri,
        name: Option.getOrUndefined(o.name),
        ref: Option.getOrUndefined(o.ref),
        readOnly: o.readOnly,
        layout
      })
      yield* emit(
        r,
        () => `${r.added ? "added" : "already present"}: ${r.source.name} ${r.source.uri} @ ${r.source.ref}`
      )
    })
).pipe(Command.withDescription("record a source of units"))

const sourceList = Command.make("list", {}, () =>
  Effect.gen(function* () {
    const SkillSync = yield* skillService
    const sources = yield* SkillSync.listSources()
    yield* emit({ sources }, () =>
      tableOf(
        sources,
        "no sources; add one with `agentsync skill install <uri>`",
        ["NAME", "URI", "REF", "COMMIT", "UNITS", "TOOLS", "FLAGS"],
        (s) => [
          s.name,
          s.uri,
          s.ref,
          s.commit?.slice(0, 12) ?? "-",
          s.units,
          s.tools.join(","),
          [s.enabled ? "" : "disabled", s.read_only ? "read-only" : ""].filter((f) => f !== "").join(",")
        ]
      )
    )
  })
).pipe(Command.withDescription("list sources"))

const sourceRemove = Command.make("remove", { name: Args.text({ name: "NAME" }) }, (o) =>
  Effect.gen(function* () {
    const SkillSync = yield* skillService
    const r = yield* SkillSync.removeSource(o.name)
    yield* emit(
      r,
      () => `removed ${r.removed}; deployed files stay in the tool homes, the cache clone stays in ${r.cache}`
    )
  })
).pipe(Command.withDescription("forget a source (deployed files are left in place)"))

const sourceLayout = Command.make(
  "layout",
  {
    name: Args.text({ name: "NAME" }).pipe(Args.withDescription("the source's name")),
    file: Args.file({ name: "FILE", exists: "yes" }).pipe(
      Args.withDescription("a YAML list of rules {glob, repo, home, exclude}"),
      Args.optional
    ),
    reset: Options.boolean("reset").pipe(
      Options.withDescription("forget the rules: detect the layout from the repository again")
    )
  },
  (o) =>
    Effect.gen(function* () {
      const SkillSync = yield* skillService
      if (Option.isSome(o.file) || o.reset) {
        const rules = Option.isSome(o.file) ? yield* layoutFrom(o.file) : undefined
        const source = yield* SkillSync.setLayout(o.name, rules)
        yield* emit(source, () =>
          source.target_layout.length === 0
            ? `${source.name}: the layout is detected from the repository`
            : `${source.name}: ${source.target_layout.length} layout rule${source.target_layout.length === 1 ? "" : "s"} set; \`agentsync skill sync --dry-run ${source.name}\` shows what they map`
        )
        return
      }
      const r = yield* SkillSync.showLayout(o.name)
      const Model = yield* Effect.promise(() => import("../domain/skills/model.js"))
      yield* emit(r, () => {
        if (r.declared.length > 0) return `# ${r.source}: declared rules\n${Model.renderLayout(r.declared)}`
        if (r.detected === undefined)
          return `${r.source}: the layout is detected from the repository at the next sync (no copy of it yet)`
        const kinds = r.detected.kinds.length > 0 ? r.detected.kinds.join("; ") : "the common layouts"
        return `# ${r.source}: detected: ${kinds}\n# ${r.holds.join("\n# ")}\n${Model.renderLayout(r.detected.rules)}`
      })
    })
).pipe(
  Command.withDescription("show a source's layout rules (declared or detected), set them from a YAML file, or --reset")
)

const source = Command.make("source").pipe(
  Command.withDescription("manage the sources units come from"),
  Command.withSubcommands([sourceAdd, sourceList, sourceRemove, sourceLayout])
)

const install = Command.make(
  "install",
  {
    uri: uriArg,
    tools: toolsOption,
    name: nameOption,
    ref: refOption,
    readOnly: readOnlyOption,
    layout: layoutOption,
    units: Options.text("units").pipe(
      Options.withDescription("a unit name or glob (default: every unit)"),
      Options.optional
    )
  },
  (o) =>
    Effect.gen(function* () {
      const SkillSync = yield* skillService
      const layout = yield* layoutFrom(o.layout)
      const r = yield* SkillSync.install({
        layout,
        uri: o.uri,
        tools: splitTools(o.tools),
        name: Option.getOrUndefined(o.name),
        ref: Option.getOrUndefined(o.ref),
        readOnly: o.readOnly,
        units: Option.getOrUndefined(o.units)
      })
      yield* emit(
        r,
        (p) =>
          `installed ${r.source.name} (${r.source.uri} @ ${r.source.ref}) for ${r.tools.join(", ")}\n${describeReport(r.report, p)}`,
        finish("agentsync skill install", r.report)
      )
    })
).pipe(
  Command.withDescription(
    "add a source and deploy its units into the tool homes; conflicts exit 3, a failed source or a unit left out 1"
  )
)

const dryRunOption = Options.boolean("dry-run").pipe(
  Options.withDescription("print the plan, write nothing (lock included)")
)
const scopeArg = Args.text({ name: "SCOPE" }).pipe(
  Args.withDescription("a source name, a unit name or glob, or source:unit"),
  Args.optional
)

const update = Command.make("update", { scope: scopeArg, dryRun: dryRunOption }, (o) =>
  Effect.gen(function* () {
    const SkillSync = yield* skillService
    const r = yield* SkillSync.update({ scope: Option.getOrUndefined(o.scope), dryRun: o.dryRun })
    yield* emit(r, (p) => describeReport(r, p), finish("agentsync skill update", r))
  })
).pipe(
  Command.withDescription(
    "fetch every source and deploy upstream changes (home edits are kept and reported); conflicts exit 3, a failed source or a unit left out 1"
  )
)

const status = Command.make(
  "status",
  {
    scope: scopeArg,
    offline: Options.boolean("offline").pipe(Options.withDescription("do not fetch")),
    tools: Options.text("tools").pipe(Options.withDescription("comma-separated tools (default: all)"), Options.optional)
  },
  (o) =>
    Effect.gen(function* () {
      const SkillSync = yield* skillService
      const r = yield* SkillSync.status({
        scope: Option.getOrUndefined(o.scope),
        fetch: !o.offline,
        tools: splitTools(o.tools)
      })
      yield* emit(
        r,
        (p) => statusText(r, p),
        finish("agentsync skill status", { actions: r.conflicts, errors: r.errors, withheld: r.withheld })
      )
    })
).pipe(
  Command.withDescription(
    "per unit and tool: in sync, home changed, repo changed, new in home, conflict, behind upstream; conflicts exit 3, an unusable source or a unit left out 1"
  )
)

/** Asks before writing when a person is at the terminal and did not pass --yes. */
const ask = (plan: ReadonlyArray<ActionView>) =>
  Effect.promise(async () => {
    for (const a of plan) if (a.direction !== "NoOp") process.stderr.write(`${arrow(a)}\n`)
    const rl = readline.createInterface({ input: process.stdin, output: process.stderr })
    try {
      const answer = await rl.question("apply this plan? [y/N] ")
      return /^y(es)?$/i.test(answer.trim())
    } finally {
      rl.close()
    }
  })

const sync = Command.make(
  "sync",
  {
    scope: scopeArg,
    dryRun: dryRunOption,
    toHome: Options.boolean("to-home").pipe(Options.withDescription("only repo → home actions")),
    toRepo: Options.boolean("to-repo").pipe(Options.withDescription("only home → repo actions")),
    prefer: Options.choice("prefer", ["home", "repo"]).pipe(
      Options.withDescription("who wins a conflict"),
      Options.optional
    ),
    delete: Options.boolean("delete").pipe(Options.withDescription("propagate a unit deleted on one side")),
    tools: Options.text("tools").pipe(
      Options.withDescription("comma-separated tools to sync (default: all)"),
      Options.optional
    ),
    yes: Options.boolean("yes").pipe(Options.withAlias("y"), Options.withDescription("do not ask before writing"))
  },
  (o) =>
    Effect.gen(function* () {
      const g = yield* globals
      const SkillSync = yield* skillService
      const interactive =
        !o.yes && !o.dryRun && !g.json && process.stdin.isTTY === true && process.stderr.isTTY === true
      const r = yield* SkillSync.sync({
        scope: Option.getOrUndefined(o.scope),
        dryRun: o.dryRun,
        toHome: o.toHome,
        toRepo: o.toRepo,
        prefer: Option.getOrUndefined(o.prefer),
        delete: o.delete,
        tools: splitTools(o.tools),
        confirm: interactive ? ask : undefined
      })
      yield* emit(r, (p) => describeReport(r, p), finish("agentsync skill sync", r))
    })
).pipe(
  Command.withDescription(
    "reconcile tool homes and repositories both ways; conflicts exit 3, a failed source, a skipped action or a unit left out 1"
  )
)

export const skill = Command.make("skill").pipe(
  Command.withDescription(
    "skills, agents and commands deployed in tool homes, kept in step with their git repositories"
  ),
  Command.withSubcommands([source, install, update, status, sync, ui]),
  Command.provide(services)
)
