/** What the `skill ui` panel runs: its rows (the status program), one unit synced (the sync program), and a unit's diff. */
import * as nodePath from "node:path"
import { Effect } from "effect"
import { memberPath } from "../domain/skills/layout.js"
import type { Event, PanelRow } from "../domain/skills/panel.js"
import type { Prefer } from "../domain/skills/planner.js"
import { type FilePair, type SideFile, unitDiff } from "../domain/skills/unitDiff.js"
import { InvalidInput, type IoError } from "../errors.js"
import { Git } from "../services/Git.js"
import { SkillStore } from "../services/SkillStore.js"
import { UnitDisk } from "../services/UnitDisk.js"
import { rel2abs } from "../services/UnitDiskWrite.js"
import { SkillSync, type SyncReport } from "./skillSync.js"
import { buildStates, unitKey } from "./skills/snapshot.js"
import { held } from "./skills/sources.js"

/** The scope naming exactly one unit of one source. */
const scopeOf = (row: Pick<PanelRow, "source" | "unit">) => `${row.source}:${row.unit}`
const where = (row: Pick<PanelRow, "source" | "unit" | "tool">) => `${row.source}:${row.unit} [${row.tool}]`

/** The rows, as `skill status` computes them. */
export const rows = Effect.fn("SkillPanel.rows")(function* (fetch: boolean) {
  const r = yield* SkillSync.status({ fetch })
  return {
    _tag: "Loaded",
    rows: r.rows,
    problems: [
      ...r.errors.map((e) => `${e.source}: ${e.reason}`),
      ...r.withheld.map((w) => `${w.source}:${w.unit} left out: ${w.reason}`)
    ],
    fetched: fetch
  } satisfies Event
})

/** One sentence on what a sync of one unit did, or why it wrote nothing. */
export const describeSync = (
  row: PanelRow,
  prefer: Prefer | undefined,
  r: Pick<SyncReport, "actions" | "applied" | "skipped" | "commits" | "errors" | "backups">
): Extract<Event, { _tag: "Done" }> => {
  const conflict = r.actions.find((a) => a.direction === "Conflict")
  if (conflict !== undefined)
    return {
      _tag: "Done",
      message: `nothing written: ${where(conflict)} is in conflict (h or r picks a side, d shows it): ${conflict.reason.replace(/; choose with --prefer home\|repo$/, "")}`,
      error: true
    }
  const problems = [
    ...r.errors.map((e) => `${e.source}: ${e.reason}`),
    ...r.skipped.map((k) => `${where(k)}: ${k.reason}`)
  ]
  if (problems.length > 0) return { _tag: "Done", message: `not done: ${problems.join("; ")}`, error: true }
  if (r.applied.length === 0)
    return { _tag: "Done", message: `${where(row)}: already in sync, nothing to do`, error: false }
  const parts = [`${prefer === undefined ? "synced" : `settled with the ${prefer} copy:`} ${where(row)}`]
  for (const c of r.commits)
    parts.push(`committed ${c.commit.slice(0, 12)} (sync: ${c.unit})${c.pushed ? ", pushed" : ""}`)
  for (const a of r.applied) if (a.direction === "ToHome") parts.push(`deployed to ${a.tool}`)
  for (const b of r.backups) parts.push(`the ${b.side} copy kept in ${b.path}`)
  return { _tag: "Done", message: parts.join("; "), error: false }
}

/** `skill sync SOURCE:UNIT --tools TOOL [--prefer home|repo] --yes`: the same plan and the same executors. */
export const syncRow = Effect.fn("SkillPanel.syncRow")(function* (row: PanelRow, prefer: Prefer | undefined) {
  const r = yield* SkillSync.sync({ scope: scopeOf(row), tools: [row.tool], prefer })
  return describeSync(row, prefer, r)
})

/** The differing files of a unit on one tool, both sides read as the plan sees them (fetching nothing). */
export const diffRow = Effect.fn("SkillPanel.diffRow")(function* (row: PanelRow) {
  const store = yield* SkillStore
  const git = yield* Git
  const disk = yield* UnitDisk
  const files = yield* store.withLock(
    Effect.gen(function* () {
      const manifest = yield* store.readManifest()
      const lock = yield* store.readLock()
      const planned = yield* buildStates(manifest, lock, {
        scope: scopeOf(row),
        dryRun: true,
        fetch: false,
        tools: [row.tool],
        skipPush: true
      })
      const unit = planned.units.get(unitKey(row.source, row.unit))
      const state = planned.states.find((s) => s.source === row.source && s.unit === row.unit)
      const home = state?.tools.find((t) => t.tool === row.tool)?.home ?? {}
      if (unit === undefined || state === undefined)
        return yield* new InvalidInput({ field: "unit", reason: `${where(row)} is no longer deployed` })
      const repo = state.repo ?? {}
      const homeRoot = nodePath.join(
        yield* held(planned.homes.get(row.tool), `the home of ${row.tool}`),
        unit.layout.homeRoot
      )
      const repoRoot = nodePath.join(unit.prepared.dir, unit.layout.repoRoot)
      const paths = [...new Set([...Object.keys(repo), ...Object.keys(home)])].filter((p) => repo[p] !== home[p])
      const oids = unit.repo?.oids ?? {}
      const blobs =
        unit.prepared.location._tag === "Git"
          ? yield* git.readBlobs(
              unit.prepared.dir,
              yield* Effect.forEach(
                paths.filter((p) => repo[p] !== undefined),
                (p) => held(oids[p], `the object id of ${p}`)
              )
            )
          : new Map<string, Uint8Array>()
      /** A side's file, read when that side has one. */
      const side = (digest: string | undefined, read: (digest: string) => Effect.Effect<Uint8Array, IoError>) =>
        digest === undefined
          ? Effect.succeed(undefined)
          : Effect.map(read(digest), (bytes): SideFile => ({ digest, bytes }))
      return yield* Effect.forEach(paths, (path) =>
        Effect.gen(function* () {
          // A git source's file is the blob read above for its object id.
          const repoBytes = (digest: string) =>
            unit.prepared.location._tag === "Git"
              ? Effect.flatMap(held(oids[path], `the object id of ${path}`), (oid) =>
                  held(blobs.get(oid), `the blob of ${path}`)
                )
              : disk.read(rel2abs(repoRoot, path), digest)
          return {
            path,
            repoName: memberPath(unit.layout.repoRoot, path),
            homeName: memberPath(unit.layout.homeRoot, path),
            repo: yield* side(repo[path], repoBytes),
            home: yield* side(home[path], (digest) => disk.read(rel2abs(homeRoot, path), digest))
          } satisfies FilePair
        })
      )
    })
  )
  return {
    _tag: "DiffReady",
    title: `diff ${where(row)}: ${row.state} (--- repo, +++ home)`,
    lines: unitDiff(files)
  } satisfies Event
})
