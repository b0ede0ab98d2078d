/** Local sync, applying a plan: its database operations in the run's transaction, then its file writes beside the bookkeeping. */
import { Effect } from "effect"
import type { DbOp, DiskOp, KindPlan } from "../../domain/localPlan.js"
import { isExecutableMode } from "../../domain/model.js"
import { DatabaseError } from "../../errors.js"
import { phase } from "../../services/Progress.js"
import * as Repos from "../../services/repos/index.js"
import { Workspace, type WriteSpec } from "../../services/Workspace.js"

/** One database operation. */
export const applyDb = (op: DbOp) =>
  Effect.gen(function* () {
    switch (op._tag) {
      case "UpsertAgents":
        return yield* (yield* Repos.AgentsRepo).upsert(op.items)
      case "DeleteAgents":
        return yield* (yield* Repos.AgentsRepo).remove(op.ids)
      case "UpsertSkills":
        return yield* (yield* Repos.SkillsRepo).upsert(op.items)
      case "DeleteSkills":
        return yield* (yield* Repos.SkillsRepo).remove(op.ids)
      case "UpsertContents":
        return yield* (yield* Repos.ContentsRepo).upsert(op.items)
      case "DeleteContents":
        return yield* (yield* Repos.ContentsRepo).remove(op.keys)
      case "RecordContents":
        return yield* (yield* Repos.ContentsRepo).record(op.items)
      case "UpsertSources":
        return yield* (yield* Repos.ContentsRepo).upsertSources(op.sources)
      case "UpsertRules":
        return yield* (yield* Repos.AccessRulesRepo).upsert(op.rules)
      case "DeleteRules":
        return yield* (yield* Repos.AccessRulesRepo).remove(op.rules)
      case "UpsertFiles":
        return yield* (yield* Repos.ItemFilesRepo).upsert(op.files)
      case "DeleteFiles":
        return yield* (yield* Repos.ItemFilesRepo).remove(op.paths)
      case "SetModes":
        return yield* op.kind === "agents"
          ? (yield* Repos.AgentsRepo).setModes(op.modes)
          : op.kind === "skills"
            ? (yield* Repos.SkillsRepo).setModes(op.modes)
            : (yield* Repos.ContentsRepo).setModes(op.modes)
    }
  })

/** Writes and removes files; stored files' bytes are fetched by digest first. */
export const applyDisk = Effect.fn("LocalSync.applyDisk")(function* (ops: ReadonlyArray<DiskOp>) {
  const ws = yield* Workspace
  const shas = ops.flatMap((o) => (o._tag === "WriteBlob" ? [o.sha] : []))
  const blobs = shas.length > 0 ? yield* (yield* Repos.ItemFilesRepo).blobs(shas) : new Map<string, Uint8Array>()
  const writes: Array<WriteSpec> = []
  for (const o of ops) {
    // An item's own file is created 0755 or 0644 less the umask (its mode says only whether it is executable).
    if (o._tag === "WriteText")
      writes.push({
        path: o.path,
        bytes: o.text,
        ...(o.mode === undefined ? {} : { executable: isExecutableMode(o.mode) })
      })
    else if (o._tag === "WriteBlob") {
      const bytes = blobs.get(o.sha)
      if (bytes === undefined)
        return yield* new DatabaseError({ reason: `the stored bytes of ${o.path} (sha256 ${o.sha}) are missing` })
      writes.push({ path: o.path, bytes, mode: o.mode })
    }
  }
  yield* ws.writeFiles(writes)
  yield* Effect.forEach(
    ops.flatMap((o) => (o._tag === "Remove" ? [o.path] : [])),
    (p) => ws.removeFile(p),
    { concurrency: 64, discard: true }
  )
})

/**
 * Applies plans: database operations in order, then the file writes beside the bookkeeping (the database works
 * while files are created; both are in the run's transaction, which commits only once every write succeeded).
 */
export const applyPlans = Effect.fn("LocalSync.apply")(function* (plans: ReadonlyArray<KindPlan>) {
  const db = plans.flatMap((p) => p.db)
  for (const p of plans)
    if (p.db.length > 0)
      yield* phase(`writing ${p.kind}`, Effect.forEach(p.db, applyDb, { discard: true }), {
        count: () => p.result.synced + p.result.deleted
      })
  yield* Effect.all(
    [
      applyDisk(plans.flatMap((p) => p.disk)),
      Effect.forEach(
        plans.flatMap((p) => p.after),
        applyDb,
        { discard: true }
      )
    ],
    { concurrency: 2, discard: true }
  )
  if (db.some((op) => op._tag === "UpsertFiles" || op._tag === "DeleteFiles"))
    yield* (yield* Repos.ItemFilesRepo).collectGarbage()
})
