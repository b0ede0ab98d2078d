/** A skill sync run and the status table: the states built, planned, confirmed and applied under the run lock. */
import { Config, Effect } from "effect"
import type { Manifest } from "../../domain/skills/model.js"
import { type PlanOptions, planSync, type StatusRow, summarize } from "../../domain/skills/planner.js"
import { InvalidInput } from "../../errors.js"
import { phase } from "../../services/Progress.js"
import { SkillStore } from "../../services/SkillStore.js"
import { apply } from "./apply.js"
import { type ActionView, type SyncReport, viewAction } from "./report.js"
import { buildStates, type Planned } from "./snapshot.js"

export interface SyncOptions extends PlanOptions {
  /** A source name, a unit name or glob, or `source:unit`. */
  readonly scope?: string | undefined
  readonly dryRun?: boolean | undefined
  /** Fetch from the remotes first (default true). */
  readonly fetch?: boolean | undefined
  /** Only these tools (default: every tool the manifest names for a unit). */
  readonly tools?: ReadonlyArray<string> | undefined
  /** Asked with the plan before anything is written (a prompt on a terminal); `false` leaves everything as it is. */
  readonly confirm?: ((plan: ReadonlyArray<ActionView>) => Effect.Effect<boolean>) | undefined
}

const skipPushConfig = Config.boolean("AGENTSYNC_SKIP_PUSH").pipe(Config.withDefault(false))

/** Two sources writing one home path: refused before anything is written, naming both. */
const refuseOverlaps = (planned: Planned) =>
  planned.overlaps.length === 0
    ? Effect.void
    : Effect.fail(
        new InvalidInput({
          field: "sources",
          reason: `two sources map one home path, nothing was written: ${planned.overlaps.map((o) => o.reason).join("; ")}; remove or disable one (agentsync skill source remove NAME), or give one a layout that leaves the unit out (agentsync skill source layout NAME FILE)`
        })
      )

/**
 * Plans, prints nothing, and (unless dry-run) applies, holding the run lock. Conflicts are in the report; the caller
 * decides the exit. `check` may refuse the run after planning, before anything is written.
 */
export const syncWith = Effect.fn("SkillSync.sync")(function* <E = never>(
  options: SyncOptions = {},
  manifestOverride?: Manifest,
  check?: (planned: Planned) => Effect.Effect<void, E>
) {
  const store = yield* SkillStore
  const run = Effect.gen(function* () {
    const manifest = manifestOverride ?? (yield* store.readManifest())
    const lock = yield* store.readLock()
    const skipPush = yield* skipPushConfig
    const planned = yield* buildStates(manifest, lock, { ...options, skipPush })
    yield* refuseOverlaps(planned)
    if (check !== undefined) yield* check(planned)
    const actions = planSync(planned.states, options)
    const base = {
      actions: actions.map(viewAction),
      summary: summarize(actions),
      errors: planned.errors,
      withheld: planned.withheld,
      ignored: planned.ignored,
      notes: planned.notes
    }
    const unwritten = { ...base, dryRun: true, applied: [], skipped: [], commits: [], backups: [] } satisfies SyncReport
    if (options.dryRun) return unwritten
    const writes = base.actions.filter((a) => a.direction === "ToHome" || a.direction === "ToRepo")
    if (writes.length > 0 && options.confirm !== undefined && !(yield* options.confirm(base.actions))) return unwritten
    const outcome = yield* phase("applying", apply(planned, actions, lock, skipPush), {
      unit: "changes",
      count: (o) => o.applied.length
    })
    return { ...base, dryRun: false, ...outcome } satisfies SyncReport
  })
  return yield* store.withLock(run)
})

// ---------------------------------------------------------------------------------------------------------
// Status

/** Per unit and tool, how it stands; with the conflicts (for the exit code) and the sources that could not be used. */
export const status = Effect.fn("SkillSync.status")(function* (
  options: {
    readonly scope?: string | undefined
    readonly fetch?: boolean | undefined
    readonly tools?: ReadonlyArray<string> | undefined
  } = {}
) {
  const store = yield* SkillStore
  // The run lock: status fetches into the cache clones and may repair them, as a sync does.
  return yield* store.withLock(
    Effect.gen(function* () {
      const manifest = yield* store.readManifest()
      const lock = yield* store.readLock()
      const planned = yield* buildStates(manifest, lock, {
        scope: options.scope,
        dryRun: true,
        fetch: options.fetch,
        tools: options.tools,
        skipPush: true
      })
      const actions = planSync(planned.states, {})
      const commitOf = new Map(planned.prepared.map((p) => [p.source.name, p.commit]))
      const rows: Array<StatusRow> = actions.map((a) => {
        const lockCommit = lock.sources[a.source]?.commit
        const upstreamMoved =
          commitOf.get(a.source) !== undefined && lockCommit !== undefined && lockCommit !== commitOf.get(a.source)
        const state =
          a.direction === "Conflict"
            ? "conflict"
            : a.direction === "ToHome"
              ? a.from !== "repo"
                ? `changed in the ${a.from.tool} home`
                : upstreamMoved
                  ? "behind upstream"
                  : a.status === "new-in-repo" || a.status === "deleted-in-repo"
                    ? a.status.replace(/-/g, " ")
                    : "repo changed"
              : a.direction === "ToRepo"
                ? a.status === "new-in-home" || a.status === "deleted-in-home"
                  ? a.status.replace(/-/g, " ")
                  : "home changed"
                : a.status === "in-sync"
                  ? "in sync"
                  : a.status.replace(/-/g, " ")
        return { source: a.source, unit: a.unit, tool: a.tool, state, direction: a.direction, reason: a.reason }
      })
      return {
        rows,
        conflicts: actions.filter((a) => a.direction === "Conflict").map(viewAction),
        errors: [...planned.errors, ...planned.overlaps],
        withheld: planned.withheld,
        ignored: planned.ignored,
        notes: planned.notes
      }
    })
  )
})

/** Fetches every source and deploys what changed upstream (repo → home only; home edits are kept and reported). */
export const update = Effect.fn("SkillSync.update")(function* (
  options: { readonly scope?: string | undefined; readonly dryRun?: boolean | undefined } = {}
) {
  return yield* syncWith({ ...options, toHome: true })
})
