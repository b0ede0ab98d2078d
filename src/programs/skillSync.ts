/** SkillSync: units deployed in tool homes reconciled with their git repositories (install, update, status, sync, sources and their layouts), as a service over its ports. */
import type { CommandExecutor } from "@effect/platform/CommandExecutor"
import { Context, Effect, Layer } from "effect"
import type { Prefer, StatusRow } from "../domain/skills/planner.js"
import { Git, layer as GitLayer } from "../services/Git.js"
import { layer as ShellLayer } from "../services/Shell.js"
import { SkillStore, layer as SkillStoreLayer } from "../services/SkillStore.js"
import { UnitDisk } from "../services/UnitDisk.js"
import { addSource, defaultTools, install, listSources, removeSource, setLayout, showLayout } from "./skills/install.js"
import { type SyncOptions, status, syncWith, update } from "./skills/sync.js"

// What the commands and jobs that import this module lazily use beside the service.
export { readLayoutFile } from "./skills/install.js"
export { type ActionView, conflictOf, outcomeOf, type SyncReport, viewAction } from "./skills/report.js"

/** The ports the skill programs run on. */
export type SkillSyncPorts = SkillStore | Git

/** The skill store of `$AGENTSYNC_HOME` and git through the shell; the platform's CommandExecutor comes from the runtime. */
export const portsLayer: Layer.Layer<SkillSyncPorts, never, CommandExecutor> = Layer.mergeAll(
  SkillStoreLayer(),
  GitLayer.pipe(Layer.provide(ShellLayer))
)

/**
 * The skill programs as a service: its methods close over the skill store, git and unit disk it was built with. `Default`
 * builds them for `$AGENTSYNC_HOME` (needing only the platform's CommandExecutor); `DefaultWithoutDependencies`
 * takes them from context (a store of another root, a test's).
 */
export class SkillSync extends Effect.Service<SkillSync>()("agentsync/SkillSync", {
  accessors: true,
  dependencies: [portsLayer],
  effect: Effect.gen(function* () {
    // Only the ports: a method runs with its caller's context otherwise (its progress reporter, its run status). The
    // unit disk is the one in force where the service is built (the local disk unless a test gave another).
    const ports = Context.add(
      Context.pick(SkillStore, Git)(yield* Effect.context<SkillSyncPorts>()),
      UnitDisk,
      yield* UnitDisk
    )
    const on =
      <Args extends ReadonlyArray<unknown>, A, E>(f: (...args: Args) => Effect.Effect<A, E, SkillSyncPorts>) =>
      (...args: Args): Effect.Effect<A, E> =>
        Effect.provide(f(...args), ports)
    return {
      /** Plans, prints nothing, and (unless dry-run) applies, holding the run lock; conflicts are in the report. */
      sync: on((options?: SyncOptions) => syncWith(options)),
      status: on(status),
      addSource: on(addSource),
      listSources: on(listSources),
      removeSource: on(removeSource),
      defaultTools: on(defaultTools),
      install: on(install),
      setLayout: on(setLayout),
      showLayout: on(showLayout),
      update: on(update)
    } as const
  })
}) {}

export type { Prefer, StatusRow }
