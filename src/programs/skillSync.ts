/** SkillSync: units deployed in tool homes reconciled with their git repositories (install, update, status, sync, sources and their layouts). */
import * as nodePath from "node:path"
import type { CommandExecutor } from "@effect/platform/CommandExecutor"
import { Config, Context, Effect, Either, Layer, Option } from "effect"
import { describeTree, detectLayout } from "../domain/skills/detect.js"
import { checkName, checkRef, defaultSourceName, parseSourceUri } from "../domain/skills/guards.js"
import { layoutProblem } from "../domain/skills/layout.js"
import { type LayoutMapping, type Manifest, type ManifestSource, parseLayout } from "../domain/skills/model.js"
import { type PlanOptions, type Prefer, planSync, type StatusRow, summarize } from "../domain/skills/planner.js"
import { InvalidInput } from "../errors.js"
import { Git, layer as GitLayer } from "../services/Git.js"
import { phase } from "../services/Progress.js"
import { layer as ShellLayer } from "../services/Shell.js"
import { KNOWN_TOOLS, SkillStore, layer as SkillStoreLayer } from "../services/SkillStore.js"
import { UnitDisk } from "../services/UnitDisk.js"
import { apply } from "./skills/apply.js"
import { type ActionView, type SyncReport, viewAction } from "./skills/report.js"
import { buildStates, type Planned } from "./skills/snapshot.js"

export { type ActionView, conflictOf, outcomeOf, type SyncReport, viewAction } from "./skills/report.js"

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
const syncWith = Effect.fn("SkillSync.sync")(function* <E = never>(
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
const status = Effect.fn("SkillSync.status")(function* (
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
        ignored: planned.ignored,
        notes: planned.notes
      }
    })
  )
})

// ---------------------------------------------------------------------------------------------------------
// Sources and install

export interface SourceInput {
  readonly uri: string
  readonly name?: string | undefined
  readonly ref?: string | undefined
  readonly readOnly?: boolean | undefined
  /** Layout rules (`target_layout`); none: detected from the repository's markers. */
  readonly layout?: ReadonlyArray<LayoutMapping> | undefined
}

/** Checks layout rules given in code (a file is checked by `readLayoutFile`, with its lines). */
const checkLayout = (rules: ReadonlyArray<LayoutMapping>) => {
  const problem = layoutProblem(rules)
  return problem === undefined
    ? Effect.succeed(rules)
    : Effect.fail(
        new InvalidInput({
          field: `target_layout.${problem.index}.${problem.field}`,
          reason: `${JSON.stringify(rules[problem.index]?.[problem.field])} ${problem.reason}`
        })
      )
}

/** A source's manifest entry: a new one, or the one there is with its layout replaced when rules are given. */
const sourceEntry = (
  existing: ManifestSource | undefined,
  input: {
    readonly name: string
    readonly uri: string
    readonly ref: string
    readonly readOnly: boolean | undefined
    readonly layout: ReadonlyArray<LayoutMapping> | undefined
  }
): ManifestSource =>
  existing === undefined
    ? {
        name: input.name,
        uri: input.uri,
        ref: input.ref,
        enabled: true,
        read_only: input.readOnly === true,
        target_layout: input.layout ?? []
      }
    : input.layout === undefined
      ? existing
      : { ...existing, target_layout: input.layout }

/** Reads a layout file (a YAML list of `{glob, repo, home, exclude?}`); a problem is reported as file:line. */
export const readLayoutFile = Effect.fn("SkillSync.readLayoutFile")(function* (file: string) {
  const disk = yield* UnitDisk
  const text = new TextDecoder().decode(yield* disk.readBytes(file))
  return yield* parseLayout(file, text)
})

/** Makes a user's URI absolute (`git:./repo`, `local:../x`) and checks it, before it reaches the manifest or git. */
export const normalizeUri = (uri: string, cwd = process.cwd()): Either.Either<string, InvalidInput> => {
  const m = /^(?<scheme>git|local):(?<path>.*)$/s.exec(uri)?.groups
  let out = uri
  const path = m?.path ?? ""
  if (
    m !== undefined &&
    !path.startsWith("-") &&
    !/^[a-z][a-z0-9+.-]*:\/\//i.test(path) &&
    !/^[^/]+@[^/]+:/.test(path) &&
    !path.startsWith("/") &&
    path !== ""
  ) {
    // A relative path is resolved here, so a stored URI means one place; `..` is refused before resolving.
    if (path.split(/[\\/]/).includes(".."))
      return Either.left(new InvalidInput({ field: "uri", reason: `${JSON.stringify(uri)} refused: contains '..'` }))
    out = `${m.scheme}:${nodePath.resolve(cwd, path)}`
  }
  return Either.map(parseSourceUri(out), () => out)
}

const addSource = Effect.fn("SkillSync.addSource")(function* (input: SourceInput) {
  const store = yield* SkillStore
  const uri = yield* normalizeUri(input.uri)
  const name = yield* checkName("source", input.name ?? defaultSourceName(uri))
  const ref = yield* checkRef(input.ref ?? "main")
  return yield* store.withLock(
    Effect.gen(function* () {
      const manifest = yield* store.readManifest()
      const same = manifest.sources.find((s) => s.name === name)
      if (same !== undefined && same.uri !== uri) {
        return yield* new InvalidInput({
          field: "name",
          reason: `a source named ${name} already exists (${same.uri}); pick another --name`
        })
      }
      const layout = input.layout === undefined ? undefined : yield* checkLayout(input.layout)
      const source = sourceEntry(same, { name, uri, ref, readOnly: input.readOnly, layout })
      if (source !== same)
        yield* store.writeManifest({
          ...manifest,
          sources:
            same === undefined ? [...manifest.sources, source] : manifest.sources.map((x) => (x === same ? source : x))
        })
      return { source, added: same === undefined }
    })
  )
})

const listSources = Effect.fn("SkillSync.listSources")(function* () {
  const store = yield* SkillStore
  const manifest = yield* store.readManifest()
  const lock = yield* store.readLock()
  return manifest.sources.map((s) => ({
    ...s,
    commit: lock.sources[s.name]?.commit,
    units: Object.keys(lock.sources[s.name]?.units ?? {}).length,
    tools: [...new Set(manifest.units.filter((u) => u.source === s.name).flatMap((u) => u.tools))].sort()
  }))
})

/** Forgets a source: its manifest entry, its unit selections and its lock entries. Deployed files stay where they are. */
const removeSource = Effect.fn("SkillSync.removeSource")(function* (name: string) {
  const store = yield* SkillStore
  yield* checkName("source", name)
  return yield* store.withLock(
    Effect.gen(function* () {
      const manifest = yield* store.readManifest()
      const lock = yield* store.readLock()
      if (!manifest.sources.some((s) => s.name === name))
        return yield* new InvalidInput({ field: "source", reason: `no source named ${name}` })
      yield* store.writeManifest({
        ...manifest,
        sources: manifest.sources.filter((s) => s.name !== name),
        units: manifest.units.filter((u) => u.source !== name)
      })
      const { [name]: _, ...rest } = lock.sources
      yield* store.writeLock({ ...lock, sources: rest })
      return { removed: name, cache: store.cacheDir(name) }
    })
  )
})

/** The tools to deploy to when none are named: those whose home exists, else claude. */
const defaultTools = Effect.fn("SkillSync.defaultTools")(function* () {
  const store = yield* SkillStore
  const disk = yield* UnitDisk
  const present: Array<string> = []
  for (const tool of KNOWN_TOOLS) if (yield* disk.exists(yield* store.toolHome(tool))) present.push(tool)
  return present.length > 0 ? present : ["claude"]
})

export interface InstallInput extends SourceInput {
  readonly tools?: ReadonlyArray<string> | undefined
  /** Which units: a unit name or glob (default every unit). */
  readonly units?: string | undefined
}

/**
 * Installs a source (a URI, or the name of a source already added) for some tools: records it, then deploys
 * repo → home. A home that already holds a different copy is a conflict, never overwritten.
 */
const install = Effect.fn("SkillSync.install")(function* (input: InstallInput) {
  const store = yield* SkillStore
  const manifest = yield* store.readManifest()
  const byName = manifest.sources.find((s) => s.name === input.uri)
  const uri = byName?.uri ?? (yield* normalizeUri(input.uri))
  const name = yield* checkName(
    "source",
    input.name ?? byName?.name ?? manifest.sources.find((s) => s.uri === uri)?.name ?? defaultSourceName(uri)
  )
  const ref = yield* checkRef(input.ref ?? byName?.ref ?? "main")
  const tools = input.tools !== undefined && input.tools.length > 0 ? input.tools : yield* defaultTools()
  for (const t of tools) yield* checkName("tool", t)
  const layout = input.layout === undefined ? undefined : yield* checkLayout(input.layout)
  const existing = manifest.sources.find((s) => s.name === name)
  if (existing !== undefined && existing.uri !== uri) {
    return yield* new InvalidInput({
      field: "name",
      reason: `a source named ${name} already exists (${existing.uri}); pick another --name`
    })
  }
  const source = sourceEntry(existing, { name, uri, ref, readOnly: input.readOnly, layout })
  const unitName = input.units ?? "**"
  const selection = manifest.units.find((u) => u.source === name && u.name === unitName)
  const units =
    selection === undefined
      ? [...manifest.units, { source: name, name: unitName, tools: [...tools].sort() }]
      : manifest.units.map((u) => (u === selection ? { ...u, tools: [...new Set([...u.tools, ...tools])].sort() } : u))
  const next: Manifest = {
    ...manifest,
    sources:
      existing === undefined
        ? [...manifest.sources, source]
        : manifest.sources.map((s) => (s === existing ? source : s)),
    units
  }
  // Refused before anything is written: a source that cannot be read, or whose layout finds no unit.
  const check = (planned: Planned) => {
    const failed = planned.errors.find((e) => e.source === name)
    if (failed !== undefined)
      return Effect.fail(new InvalidInput({ field: "uri", reason: `cannot install ${input.uri}: ${failed.reason}` }))
    const p = planned.prepared.find((x) => x.source.name === name)
    if (p !== undefined && p.units.size === 0) {
      const how =
        source.target_layout.length > 0
          ? "its target_layout"
          : p.detected.length > 0
            ? `the layout detected (${p.detected.join("; ")})`
            : "the common layouts (skills/*/SKILL.md, agents/*.md, agents/*/*.md, commands/*.md)"
      return Effect.fail(
        new InvalidInput({
          field: "uri",
          reason: `${input.uri} matches no unit with ${how}; ${p.holds().join("; ")}; describe where its units are with \`agentsync skill source layout ${name} FILE\` (a YAML list of {glob, repo, home, exclude}) and install again`
        })
      )
    }
    return Effect.void
  }
  const report = yield* syncWith({ scope: name, toHome: true }, next, check)
  yield* store.withLock(store.writeManifest(next))
  return { source, tools, report }
})

/**
 * Sets a source's layout rules (`target_layout`), or with none goes back to the layout detected from the
 * repository's markers. Rules are checked before anything is written.
 */
const setLayout = Effect.fn("SkillSync.setLayout")(function* (
  name: string,
  rules: ReadonlyArray<LayoutMapping> | undefined
) {
  const store = yield* SkillStore
  yield* checkName("source", name)
  const layout = yield* checkLayout(rules ?? [])
  return yield* store.withLock(
    Effect.gen(function* () {
      const manifest = yield* store.readManifest()
      const source = manifest.sources.find((s) => s.name === name)
      if (source === undefined) return yield* new InvalidInput({ field: "source", reason: `no source named ${name}` })
      const next = { ...source, target_layout: layout }
      yield* store.writeManifest({ ...manifest, sources: manifest.sources.map((s) => (s === source ? next : s)) })
      return next
    })
  )
})

/**
 * The layout a source uses: its declared rules, or the rules detected from its repository (read from the cache
 * clone or the local folder, as the last run saw it), with what the tree holds.
 */
const showLayout = Effect.fn("SkillSync.showLayout")(function* (name: string) {
  const store = yield* SkillStore
  const git = yield* Git
  const disk = yield* UnitDisk
  const manifest = yield* store.readManifest()
  const source = manifest.sources.find((s) => s.name === name)
  if (source === undefined) return yield* new InvalidInput({ field: "source", reason: `no source named ${name}` })
  const location = yield* parseSourceUri(source.uri)
  let paths: ReadonlyArray<string> | undefined
  if (location._tag === "Local") {
    if (yield* disk.exists(location.path)) paths = (yield* disk.listTree(location.path)).paths
  } else {
    const dir = store.cacheDir(name)
    if (yield* disk.exists(nodePath.join(dir, ".git"))) {
      const tree = yield* Effect.option(git.listTree(dir, "HEAD"))
      if (Option.isSome(tree)) paths = tree.value.filter((e) => e.mode !== "160000").map((e) => e.path)
    }
  }
  const detected = paths === undefined ? undefined : detectLayout(paths)
  return {
    source: name,
    declared: source.target_layout,
    detected: detected === undefined ? undefined : { kinds: detected.kinds, rules: detected.mappings },
    holds: paths === undefined ? [] : describeTree(paths)
  }
})

/** Fetches every source and deploys what changed upstream (repo → home only; home edits are kept and reported). */
const update = Effect.fn("SkillSync.update")(function* (
  options: { readonly scope?: string | undefined; readonly dryRun?: boolean | undefined } = {}
) {
  return yield* syncWith({ ...options, toHome: true })
})

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
