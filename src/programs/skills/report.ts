/** What a skill run reports: the plan with the fingerprints it was made from, what was done, and the outcome as an error (conflicts exit 3, failures 1). */
import { Option } from "effect"
import { type SkillAction, sameSide, sideHash, type summarize, type UnitStatus } from "../../domain/skills/planner.js"
import { CommandFailed, Conflict } from "../../errors.js"

/** An action as reported: the decision and the fingerprints of the three states it was taken from. */
export interface ActionView {
  readonly source: string
  readonly unit: string
  readonly tool: string
  readonly direction: SkillAction["direction"]
  readonly status: UnitStatus
  readonly reason: string
  readonly home: string
  readonly repo: string
  readonly base: string
}

export interface SyncReport {
  readonly dryRun: boolean
  readonly actions: ReadonlyArray<ActionView>
  readonly summary: ReturnType<typeof summarize>
  /** What was carried out. */
  readonly applied: ReadonlyArray<{
    readonly source: string
    readonly unit: string
    readonly tool: string
    readonly direction: string
  }>
  /** Actions not carried out, and why (the home moved since the plan, a push was rejected, a write failed). */
  readonly skipped: ReadonlyArray<{
    readonly source: string
    readonly unit: string
    readonly tool: string
    readonly reason: string
  }>
  /** Commits made in cache clones, and whether they reached the remote. */
  readonly commits: ReadonlyArray<{
    readonly source: string
    readonly unit: string
    readonly commit: string
    readonly pushed: boolean
  }>
  /** Sources that could not be prepared (clone, fetch, rebase or push failed), and refusals of the whole run. */
  readonly errors: ReadonlyArray<{ readonly source: string; readonly reason: string }>
  /** Units a detected layout maps to one home path: left out, neither side touched, their lock entries kept. */
  readonly withheld: ReadonlyArray<WithheldUnit>
  /** Repo and home files left out of units (unsafe names, links leading out, submodules). */
  readonly ignored: ReadonlyArray<{ readonly source: string; readonly path: string; readonly reason: string }>
  /** Repairs made on the way (a stale git lock removed, a broken cache clone put aside). */
  readonly notes: ReadonlyArray<{ readonly source: string; readonly note: string }>
  /** Copies kept of what --prefer wrote over: the side and where its copy is. */
  readonly backups: ReadonlyArray<{
    readonly source: string
    readonly unit: string
    readonly side: string
    readonly path: string
  }>
}

/** A unit left out of a run, as reported: its name (its home path), the repo roots that map there, and how to settle it. */
export interface WithheldUnit {
  readonly source: string
  readonly unit: string
  readonly repo: ReadonlyArray<string>
  readonly reason: string
}

/** Where the advice's consequences start a line of their own (the printer splits there, and only there). */
export const THEN = "\nthen "

/**
 * Why units were left out and how to settle it: their repo roots, and the home path they share (or the home paths,
 * one inside another); then, on a line of its own, what settling does to what lies at that path. A copy no source
 * deployed there (the user's own) is withheld with the units, but once they are settled it is a unit new in the home
 * like any other (pushed, or with a read-only source kept in the home): the plan shows it (and `skill sync` asks
 * before applying at a terminal), so it is said here, before the user writes the rules, rather than remembered across
 * runs and refused.
 */
export const withheldReason = (
  source: string,
  units: ReadonlyArray<{ readonly repoRoot: string; readonly homeRoot: string }>,
  readOnly: boolean
) => {
  const repo = units.map((u) => u.repoRoot).sort()
  const homes = [...new Set(units.map((u) => u.homeRoot))].sort()
  const list = (xs: ReadonlyArray<string>) => `${xs.slice(0, -1).join(", ")} and ${xs.at(-1)}`
  const where =
    homes.length === 1
      ? `${repo.length === 2 ? "both" : "all"} map to ${homes[0]}`
      : `map to ${list(homes)}, one inside another`
  const own = readOnly
    ? `kept in the home, not pushed (the source is read-only), where a rule still maps ${homes.join(" or ")}`
    : `pushed to the repo as a unit of its own where a rule still maps ${homes.join(" or ")} (move it away first if it should not go)`
  return [
    `${list(repo)} ${where}; nothing under ${homes.join(" or ")} was written or removed in any home or in the repo; to choose, save the rules \`agentsync skill source layout ${source}\` prints to a file and settle every collision in it at once (a written layout refuses any left): put a rule first that gives all but one of them another home or excludes them, or give every plugin's skills their own (\`home: skills/{plugin}-{name}\` in the detected skills rule), and set it with \`agentsync skill source layout ${source} FILE\`;`,
    `${THEN.slice(1)}a copy deployed under the old home shows as deleted in the repo (\`--delete\` removes it from the home), and a copy there that no source deployed (your own) is new in the home: ${own}, in conflict where a rule puts one of these units there, left alone where none maps it; \`agentsync skill sync --dry-run ${source}\` shows which`
  ].join("\n")
}

export const viewAction = (a: SkillAction): ActionView => {
  // In sync, the three states are equal: one fingerprint serves all three.
  const home = sideHash(a.home)
  return {
    source: a.source,
    unit: a.unit,
    tool: a.tool,
    direction: a.direction,
    status: a.status,
    reason: a.reason,
    home,
    repo: sameSide(a.repo, a.home) ? home : sideHash(a.repo),
    base: sameSide(a.base, a.home) ? home : sideHash(a.base)
  }
}

/** The conflicts of a report as the error the CLI exits 3 with, naming both sides' hashes. */
export const conflictOf = (report: Pick<SyncReport, "actions">): Option.Option<Conflict> => {
  const conflicts = report.actions.filter((a) => a.direction === "Conflict")
  if (conflicts.length === 0) return Option.none()
  return Option.some(
    new Conflict({
      reason: `${conflicts.length} unit${conflicts.length === 1 ? "" : "s"} changed on both sides; nothing was written for ${conflicts.length === 1 ? "it" : "them"}. Re-run with --prefer home or --prefer repo`,
      items: conflicts.map(
        (c) => `${c.source}:${c.unit} [${c.tool}]: home ${c.home}, repo ${c.repo}, base ${c.base}: ${c.reason}`
      )
    })
  )
}

/**
 * How a run ends, the same for `status` and `sync`: conflicts are a decision to make (exit 3); a source that could not
 * be used, a unit left out (withheld) or an action left undone is a failure (exit 1); otherwise nothing.
 */
export const outcomeOf = (
  command: string,
  report: Pick<SyncReport, "actions" | "errors"> & {
    readonly skipped?: SyncReport["skipped"]
    readonly withheld?: SyncReport["withheld"]
  }
): Option.Option<Conflict | CommandFailed> => {
  const conflict = conflictOf(report)
  if (Option.isSome(conflict)) return conflict
  const skipped = report.skipped ?? []
  const withheld = report.withheld ?? []
  if (report.errors.length === 0 && skipped.length === 0 && withheld.length === 0) return Option.none()
  return Option.some(
    new CommandFailed({
      command,
      exitCode: 1,
      stderr: [
        ...report.errors.map((e) => `${e.source}: ${e.reason}`),
        ...withheld.map((w) => `${w.source}:${w.unit} left out: ${w.reason}`),
        ...skipped.map((k) => `${k.source}:${k.unit} [${k.tool}]: ${k.reason}`)
      ].join("\n")
    })
  )
}
