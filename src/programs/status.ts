/** `agentsync status`: each part of a project (files, local tree, database, skills, server) asked on its own, at once, within a deadline. */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { Cause, Duration, Effect, Exit, Layer, Schema } from "effect"
import { Health } from "../api/health.js"
import { CurrentConfig, type SyncConfig } from "../config.js"
import { ALL_KINDS } from "../domain/localPlan.js"
import { itemsNamed } from "../domain/model.js"
import { beforeFirst } from "../domain/text.js"

export type PartName = "files" | "local" | "database" | "skills" | "server"

/** How a part stands: the same as the other side, so many changes apart, not known (and why), or not set up. */
export type PartState = "in-step" | "changes" | "cannot-tell" | "not-configured"

export interface PartStatus {
  readonly part: PartName
  /** What is compared with what, for a person. */
  readonly compares: string
  readonly state: PartState
  /** How many items differ (only with `changes`). */
  readonly changes?: number
  /** The counts or the reason, one line. */
  readonly detail: string
  readonly elapsed_ms: number
}

export interface StatusReport {
  readonly parts: ReadonlyArray<PartStatus>
  /** Every configured part is in step. */
  readonly in_step: boolean
  readonly elapsed_ms: number
}

/** What a part found, before it is timed and named. */
type Found =
  | { readonly state: "in-step"; readonly detail: string }
  | { readonly state: "changes"; readonly changes: number; readonly detail: string }
  | { readonly state: "cannot-tell" | "not-configured"; readonly detail: string }

const counted = (changes: number, detail: string): Found =>
  changes === 0 ? { state: "in-step", detail } : { state: "changes", changes, detail }

const notConfigured = (detail: string): Found => ({ state: "not-configured", detail })

/** Whether the project names a tenant server (direct or relay). */
const serverOrigin = (config: SyncConfig): string | undefined => config.directUrl ?? config.apiUrl

const NO_SERVER = "no server configured (AGENTSYNC_DIRECT_URL, or AGENTSYNC_API_URL and AGENTSYNC_TENANT_ID)"

/** The failure of a part in one line, without a stack. */
const reasonOf = (cause: Cause.Cause<unknown>): string => {
  const e = Cause.squash(cause)
  const text = e instanceof Error ? e.message : String(e)
  return beforeFirst(text, "\n").slice(0, 300)
}

/** The server's health document: reachable, its version, its database ready (the probe needs no token). */
export const serverHealth = Effect.fn("Status.serverHealth")(function* (origin: string) {
  const base = origin.replace(/\/+$/, "")
  const response = yield* HttpClient.get(`${base}/api/v1/health`)
  if (response.status === 503) {
    const body = yield* HttpClientResponse.schemaBodyJson(Schema.Struct({ reason: Schema.String }))(response)
    return { ok: false as const, reason: `its database is not ready: ${body.reason}` }
  }
  if (response.status !== 200) return { ok: false as const, reason: `it answered HTTP ${response.status}` }
  const health = yield* HttpClientResponse.schemaBodyJson(Health)(response)
  return { ok: true as const, health }
}, Effect.provide(FetchHttpClient.layer))

const server = (config: SyncConfig): Effect.Effect<Found, unknown> => {
  const origin = serverOrigin(config)
  if (origin === undefined) return Effect.succeed(notConfigured(NO_SERVER))
  return Effect.map(serverHealth(origin), (h) =>
    h.ok
      ? {
          state: "in-step",
          detail: `reachable at ${origin}, version ${h.health.version}, ${h.health.database.migrations.applied} migrations applied`
        }
      : { state: "cannot-tell", detail: `${origin} is reachable but ${h.reason}` }
  )
}

/** The files diff (its settled path answers without hashing when nothing moved since the last sync). */
const files = (config: SyncConfig): Effect.Effect<Found, unknown> => {
  if (serverOrigin(config) === undefined) return Effect.succeed(notConfigured(NO_SERVER))
  return Effect.gen(function* () {
    const [program, api] = yield* Effect.promise(() =>
      Promise.all([import("./files.js"), import("../services/SyncApi.js")])
    )
    const r = yield* Effect.flatMap(program.FileSyncService, (s) => s.diff()).pipe(
      Effect.provide(program.layer.pipe(Layer.provide(api.layerFromConfig)))
    )
    const c = r.counts
    const head = r.remote_revision === null ? "the remote is empty" : `head ${r.remote_revision}`
    // Links and special files file sync leaves behind are said, never only counted away.
    const skipped = r.files.filter((f) => f.status === "NotCarried").length
    return counted(
      c.added + c.modified + c.removed,
      `${c.added} added, ${c.modified} modified, ${c.removed} removed locally against ${head} (${c.unchanged} unchanged)${skipped === 0 ? "" : `; ${skipped} not carried (agentsync files diff names them)`}`
    )
  }).pipe(Effect.provideService(CurrentConfig, config))
}

const local = (config: SyncConfig): Effect.Effect<Found, unknown> =>
  Effect.gen(function* () {
    const [{ LocalSync }, { Database }] = yield* Effect.promise(() =>
      Promise.all([import("./localSync.js"), import("../services/ProjectDatabase.js")])
    )
    // Status only reads: it does not create the embedded database (a first creation takes longer than a part's
    // deadline, which would interrupt it every time), it says there is none yet.
    if (
      config.databaseUrl === undefined &&
      !(yield* Database.holdsDatabase(Database.embeddedDataDir(config.projectRoot)))
    )
      return notConfigured("no project database yet (the first agentsync local sync creates the embedded one)")
    const r = yield* LocalSync.diff(ALL_KINDS).pipe(Effect.provide(LocalSync.layer(config)))
    const errors = itemsNamed(r.kinds.flatMap((k) => k.errors))
    const changes = r.kinds.reduce((n, k) => n + k.counts.added + k.counts.modified + k.counts.removed, 0)
    const per = r.kinds
      .filter((k) => k.counts.added + k.counts.modified + k.counts.removed > 0)
      .map((k) => `${k.kind} ${k.counts.added + k.counts.modified + k.counts.removed}`)
    if (errors > 0 && changes === 0)
      return { state: "cannot-tell", detail: `${errors} item(s) could not be read (agentsync local diff names them)` }
    return counted(
      changes,
      changes === 0
        ? `every kind in step (${r.kinds.reduce((n, k) => n + k.counts.unchanged, 0)} items)`
        : `${per.join(", ")}${errors > 0 ? `; ${errors} item(s) unreadable` : ""} (agentsync local diff lists them)`
    )
  })

const database = (config: SyncConfig): Effect.Effect<Found, unknown> => {
  if (config.cloudDatabaseUrl === undefined)
    return Effect.succeed(notConfigured("no cloud database configured (AGENTSYNC_CLOUD_DATABASE_URL)"))
  return Effect.gen(function* () {
    const { DatabaseSyncService } = yield* Effect.promise(() => import("./dbSync.js"))
    const r = yield* Effect.flatMap(DatabaseSyncService, (s) => s.diff()).pipe(
      Effect.provide(DatabaseSyncService.Default.pipe(Layer.provide(Layer.succeed(CurrentConfig, config))))
    )
    const differing = (t: (typeof r.tables)[number]) => t.only_local + t.only_remote + t.different
    const changes = r.tables.reduce((n, t) => n + differing(t), 0)
    return counted(
      changes,
      changes === 0
        ? `${r.tables.reduce((n, t) => n + t.equal, 0)} rows equal in ${r.tables.map((t) => t.table).join(", ")}`
        : `${r.tables
            .filter((t) => differing(t) > 0)
            .map((t) => `${t.table} ${differing(t)} of ${differing(t) + t.equal}`)
            .join(", ")} rows differ (agentsync db diff)`
    )
  })
}

/** The skill status without fetching (what the last fetch knew of upstream). */
const skills = Effect.gen(function* () {
  const [{ SkillSync, portsLayer }, SkillStore] = yield* Effect.promise(() =>
    Promise.all([import("./skillSync.js"), import("../services/SkillStore.js")])
  )
  const layer = SkillSync.DefaultWithoutDependencies.pipe(Layer.provideMerge(portsLayer))
  return yield* Effect.gen(function* () {
    const store = yield* SkillStore.SkillStore
    const manifest = yield* store.readManifest()
    if (manifest.sources.length === 0) return notConfigured("no skill sources (agentsync skill source add)")
    const r = yield* SkillSync.status({ fetch: false })
    const changes = r.rows.filter((x) => x.state !== "in sync").length
    const conflicts = r.conflicts.length
    if (r.errors.length > 0 && changes === 0)
      return {
        state: "cannot-tell",
        detail: `${r.errors.length} source(s) could not be used (agentsync skill status)`
      } as const
    return counted(
      changes,
      `${r.rows.length - changes} of ${r.rows.length} unit copies in sync${conflicts > 0 ? `, ${conflicts} conflict(s)` : ""}${r.errors.length > 0 ? `, ${r.errors.length} source(s) unusable` : ""} (not fetched)`
    )
  }).pipe(Effect.provide(layer))
})

export interface StatusOptions {
  /** Each part's deadline (default 20 s: a first start of the embedded database is slow). */
  readonly timeout?: Duration.DurationInput
}

/**
 * Every part, each on its own: one that fails or passes its deadline says "cannot tell" and hides nothing of
 * the others. The parts run at once, except the two that open the project database, one after the other
 * (the embedded database takes one process at a time).
 */
export const status = Effect.fn("Status.status")(function* (options: StatusOptions = {}) {
  const config = yield* CurrentConfig
  const timeout = Duration.decode(options.timeout ?? Duration.seconds(20))
  const started = Date.now()
  const part =
    (name: PartName, compares: string) =>
    <R>(found: Effect.Effect<Found, unknown, R>): Effect.Effect<PartStatus, never, R> =>
      Effect.suspend(() => {
        const t0 = Date.now()
        return found.pipe(
          Effect.exit,
          Effect.map(
            (exit): Found =>
              Exit.isSuccess(exit) ? exit.value : { state: "cannot-tell", detail: reasonOf(exit.cause) }
          ),
          Effect.timeoutTo({
            duration: timeout,
            onTimeout: (): Found => ({ state: "cannot-tell", detail: `no answer within ${Duration.format(timeout)}` }),
            onSuccess: (f) => f
          }),
          Effect.map((f): PartStatus => ({ part: name, compares, ...f, elapsed_ms: Date.now() - t0 }))
        )
      })
  const [filesPart, [localPart, databasePart], skillsPart, serverPart] = yield* Effect.all(
    [
      part("files", "services/ files vs the remote head")(files(config)),
      Effect.all([
        part("local", "services/ tree vs the project database")(local(config)),
        part("database", "project database vs the cloud database")(database(config))
      ]),
      part("skills", "tool homes vs skill repositories")(skills),
      part("server", "the tenant server")(server(config))
    ],
    { concurrency: "unbounded" }
  )
  const parts = [filesPart, localPart, databasePart, skillsPart, serverPart]
  return {
    parts,
    in_step: parts.every((p) => p.state === "in-step" || p.state === "not-configured"),
    elapsed_ms: Date.now() - started
  } satisfies StatusReport
})
