/** The Database port: PostgreSQL from DATABASE_URL, or the embedded default (PGlite served on loopback), plus the project migrations. */
import * as fs from "node:fs/promises"
import { createRequire } from "node:module"
import { createServer } from "node:net"
import * as nodePath from "node:path"
import { Worker } from "node:worker_threads"
import type * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Context, Duration, Effect, Exit, Layer, Option, Redacted, Schema } from "effect"
import * as Pg from "pg"
import { CurrentConfig } from "../config.js"
import { DatabaseError, errnoCode, type SyncInProgress } from "../errors.js"
import * as Template from "./embeddedTemplate.js"
import { projectMigrationsRecord } from "./migrations/index.js"
import { runMigrations } from "./migrations/run.js"
import * as ProcessLock from "./ProcessLock.js"
import { phase } from "./Progress.js"

export interface DatabaseOptions {
  /** A PostgreSQL URL; none means the embedded default. */
  readonly url: Option.Option<Redacted.Redacted<string>>
  /** Where the embedded default keeps its data (`<projectRoot>/.agentsync/pgdata`). */
  readonly dataDir: string
}

/** The folder of the embedded database of a project. */
export const embeddedDataDir = (projectRoot: string): string => nodePath.join(projectRoot, ".agentsync", "pgdata")

/** Where a URL points, for messages: host:port, never the user or password. */
export const describeUrl = (url: Redacted.Redacted<string>): string => {
  try {
    const u = new URL(Redacted.value(url))
    const host = u.hostname === "" ? (u.searchParams.get("host") ?? "localhost") : u.hostname
    return `${host}:${u.port === "" ? "5432" : u.port}`
  } catch {
    return "the server in DATABASE_URL (unparsable URL)"
  }
}

/** The deepest message of an error chain, with any secret cut out. */
export const causeMessage = (cause: unknown, secret?: string): string => {
  let c: unknown = cause
  let text = ""
  for (let i = 0; i < 5 && c !== undefined && c !== null; i++) {
    if (c instanceof SqlError) {
      text = c.message
      c = c.cause
      continue
    }
    if (c instanceof AggregateError && c.errors.length > 0) c = c.errors[0]
    if (c instanceof Error) {
      text = c.message !== "" ? c.message : (errnoCode(c) ?? c.name)
      c = c.cause
    } else {
      text = String(c)
      break
    }
  }
  if (secret !== undefined && secret !== "") text = text.split(secret).join("***")
  return text
}

const passwordOf = (url: Redacted.Redacted<string>): string | undefined => {
  try {
    const p = decodeURIComponent(new URL(Redacted.value(url)).password)
    return p === "" ? undefined : p
  } catch {
    return undefined
  }
}

const connectError = (where: string, secret?: string) => (cause: unknown) =>
  new DatabaseError({ reason: `cannot connect to PostgreSQL at ${where}: ${causeMessage(cause, secret)}`, cause })

/** A free TCP port on loopback, as the OS hands it out. */
const freePort = Effect.async<number, DatabaseError>((resume) => {
  const srv = createServer()
  srv.unref()
  srv.on("error", (cause) => resume(Effect.fail(new DatabaseError({ reason: "no free port on 127.0.0.1", cause }))))
  srv.listen(0, "127.0.0.1", () => {
    const address = srv.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    srv.close(() => resume(Effect.succeed(port)))
  })
})

/** One process at a time on an embedded data directory: PGlite is a single session and has no lock of its own. */
const lockDataDir = (dataDir: string) =>
  ProcessLock.acquire(`${dataDir}.lock`, "embedded database").pipe(
    Effect.catchTag("IoError", (e) =>
      Effect.fail(new DatabaseError({ reason: `cannot lock the embedded database ${dataDir}: ${e.reason}`, cause: e }))
    )
  )

const requireHere = createRequire(import.meta.url)

/** Where a first open creates the embedded database before renaming it into place. */
const creationDirOf = (dataDir: string): string => `${dataDir}.init`

const removeDir = (dir: string) => Effect.promise(() => fs.rm(dir, { recursive: true, force: true }))

/** Whether a data directory holds a database (its `PG_VERSION`); only a missing file means it does not. */
const holdsDatabase = (dataDir: string) =>
  Effect.tryPromise({
    try: () =>
      fs.access(nodePath.join(dataDir, "PG_VERSION")).then(
        () => true,
        (e: unknown) => {
          if (errnoCode(e) === "ENOENT" || errnoCode(e) === "ENOTDIR") return false
          throw e
        }
      ),
    catch: (cause) =>
      new DatabaseError({ reason: `cannot read the embedded database in ${dataDir}: ${causeMessage(cause)}`, cause })
  })

// Runs in a worker thread: PGlite's initdb in `dir`, then a clean close. A worker, because initdb holds its thread
// for many seconds at a time and PGlite cannot abort it; terminating the worker stops it at once.
const CREATE_SCRIPT = `
const { parentPort, workerData } = require("node:worker_threads")
require(workerData.pglite).PGlite.create(workerData.dir)
  .then((db) => db.close())
  .then(
    () => parentPort.postMessage({ ok: true }),
    (e) => parentPort.postMessage({ ok: false, message: String((e && e.message) || e) })
  )
`

const CreateReply = Schema.Struct({ ok: Schema.Boolean, message: Schema.optional(Schema.String) })
const decodeCreateReply = Schema.decodeUnknownOption(CreateReply)

/** A new database in `dir` (which must not exist yet), made by a worker that is terminated however this ends. */
const createIn = (dir: string) =>
  Effect.acquireRelease(
    Effect.sync(
      () =>
        new Worker(CREATE_SCRIPT, {
          eval: true,
          workerData: { pglite: requireHere.resolve("@electric-sql/pglite"), dir }
        })
    ),
    (worker) => Effect.promise(() => worker.terminate())
  ).pipe(
    Effect.flatMap((worker) =>
      Effect.async<void, DatabaseError>((resume) => {
        const failed = (why: string, cause?: unknown) =>
          resume(Effect.fail(new DatabaseError({ reason: `cannot create the embedded database: ${why}`, cause })))
        worker.on("message", (message: unknown) => {
          const reply = decodeCreateReply(message)
          if (Option.isSome(reply) && reply.value.ok) resume(Effect.void)
          else failed(Option.isSome(reply) ? (reply.value.message ?? "unknown failure") : "unexpected reply")
        })
        worker.on("error", (cause) => failed(causeMessage(cause), cause))
        worker.on("exit", (code) => failed(`its worker ended with code ${code} before it finished`))
      })
    ),
    Effect.scoped
  )

/**
 * A new database in `dir`: a copy of this PGlite's template when the user's cache holds a complete one, else
 * PGlite's initdb (seconds of CPU), whose result, not opened since initdb, then becomes the template. The cache only ever
 * saves time: a template that is missing, damaged or cannot be written leaves the creation to initdb.
 */
const createFresh = Effect.fn("ProjectDatabase.createFresh")(function* (dir: string, useTemplate: boolean) {
  const key = yield* Template.templateKey(requireHere.resolve("@electric-sql/pglite"), CREATE_SCRIPT).pipe(
    Effect.tapError((e) => Effect.logDebug(e.message)),
    Effect.option
  )
  if (Option.isSome(key) && useTemplate) {
    const copied = yield* Template.restore(key.value, dir).pipe(
      Effect.tapError((e) => Effect.logDebug(e.message)),
      Effect.orElseSucceed(() => Option.none<string>())
    )
    if (Option.isSome(copied)) return key
    yield* removeDir(dir)
  }
  yield* createIn(dir)
  if (Option.isSome(key))
    yield* Template.save(dir, key.value).pipe(
      Effect.tapError((e) => Effect.logDebug(e.message)),
      Effect.ignore
    )
  return Option.none<string>()
})

/**
 * A first open: the database is created in `<dataDir>.init` and renamed to `dataDir` once it is complete (PGlite
 * has created and closed it, or the template's copy is whole), so `dataDir` either does not exist or is complete.
 * A creation that does not finish (an error, an interruption) removes its folder; one that was killed leaves it,
 * and the next creation removes it first. The key of the template it copied, if it copied one.
 */
const createDataDir = (dataDir: string, useTemplate = true) => {
  const creation = creationDirOf(dataDir)
  return Effect.gen(function* () {
    yield* removeDir(creation)
    const copied = yield* createFresh(creation, useTemplate)
    // A folder without PG_VERSION holds no database (an interrupted open of an older version): PGlite would
    // create one over it, so it is replaced.
    yield* removeDir(dataDir)
    yield* Effect.tryPromise({
      try: () => fs.rename(creation, dataDir),
      catch: (cause) =>
        new DatabaseError({
          reason: `cannot move the new embedded database into ${dataDir}: ${causeMessage(cause)}`,
          cause
        })
    })
    return copied
  }).pipe(Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : removeDir(creation))))
}

/** PGlite persisted in `dataDir`, served by pglite-socket on a free loopback port while the scope is open. */
const embedded = (dataDir: string) =>
  Effect.gen(function* () {
    yield* lockDataDir(dataDir)
    // Loaded on demand (most commands never need the WebAssembly Postgres), through require rather than
    // import(): the CLI runs from a V8 code cache, and Node 20 loses a cached script's dynamic-import hook.
    const { PGlite } = yield* Effect.sync(
      () => requireHere("@electric-sql/pglite") as typeof import("@electric-sql/pglite")
    )
    const { PGLiteSocketServer } = yield* Effect.sync(
      () => requireHere("@electric-sql/pglite-socket") as typeof import("@electric-sql/pglite-socket")
    )
    const copied = (yield* holdsDatabase(dataDir))
      ? Option.none<string>()
      : yield* phase("creating the embedded database", createDataDir(dataDir))
    // Opening an existing database is not interruptible (PGlite cannot abort it, and a PGlite still opening after
    // an interruption would hold the data directory once its lock is released): it takes a second or two.
    const open = Effect.acquireRelease(
      Effect.tryPromise({
        try: () => PGlite.create(dataDir),
        catch: (cause) =>
          new DatabaseError({
            reason: `cannot open the embedded database in ${dataDir}: ${causeMessage(cause)}`,
            cause
          })
      }),
      (db) => Effect.promise(() => db.close().catch(() => undefined))
    ).pipe((open) => phase("starting the embedded database", open))
    const db = yield* Option.match(copied, {
      onNone: () => open,
      // A copy of the template PGlite cannot open: the template is damaged in a way its sizes do not show. It is
      // removed and the database made again by initdb (which keeps a new template), so the command still succeeds.
      onSome: (key) =>
        open.pipe(
          Effect.catchAll((e) =>
            Effect.logDebug(`${e.message}: made from a damaged template, created again`).pipe(
              Effect.zipRight(Template.discard(key)),
              Effect.zipRight(removeDir(dataDir)),
              Effect.zipRight(phase("creating the embedded database", createDataDir(dataDir, false))),
              Effect.zipRight(open)
            )
          )
        )
    })
    // A port freed by the OS may be taken before we bind it: try a few.
    const server = yield* Effect.acquireRelease(
      Effect.gen(function* () {
        const port = yield* freePort
        const server = new PGLiteSocketServer({ db, port, host: "127.0.0.1" })
        yield* Effect.tryPromise({
          try: () => server.start(),
          catch: (cause) =>
            new DatabaseError({
              reason: `cannot serve the embedded database on 127.0.0.1:${port}: ${causeMessage(cause)}`,
              cause
            })
        })
        return { server, port }
      }).pipe(Effect.retry({ times: 3 })),
      ({ server }) => Effect.promise(() => server.stop().catch(() => undefined))
    )
    return server.port
  })

/**
 * The database layer: with a URL, @effect/sql-pg on that server; without, the embedded default.
 * Scoped: the pool (and the embedded server) stop when the scope closes.
 */
export const layer = (
  options: DatabaseOptions
): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, DatabaseError | SyncInProgress> =>
  Option.match(options.url, {
    onSome: (url) =>
      PgClient.layer({
        url,
        maxConnections: 8,
        // pg's default closes a connection idle for 10 s; a new backend then maps each page of shared buffers again
        // as it first touches it (about 0.5 s of PostgreSQL's CPU for an upload of 100 MiB after a quiet spell).
        idleTimeout: Duration.minutes(5),
        connectTimeout: Duration.seconds(10),
        applicationName: "agentsync"
      }).pipe(Layer.mapError(connectError(describeUrl(url), passwordOf(url)))),
    onNone: () =>
      Layer.unwrapScoped(
        Effect.map(embedded(options.dataDir), (port) =>
          embeddedClient(port).pipe(Layer.mapError(connectError(`127.0.0.1:${port} (embedded, ${options.dataDir})`)))
        )
      )
  })

/**
 * The client of the embedded database: one connection (PGlite is one session, so a transaction is never
 * interleaved), from a pool of our own whose connection has no backend id. With one, @effect/sql-pg answers an
 * interruption of a running statement by `pg_cancel_backend` from a second connection of the pool, which a pool of
 * one never has: the interruption waited the driver's 5 s for it before the rollback, and the cancel, left queued,
 * ran once the connection was free. PGlite runs in this process; an interruption is seen once its statement ends;
 * without a backend id no cancel is queued, so the rollback follows at once.
 */
const embeddedClient = (port: number) =>
  PgClient.layerFromPool({
    acquire: Effect.acquireRelease(
      Effect.suspend(() => {
        const pool = new Pg.Pool({
          host: "127.0.0.1",
          port,
          user: "postgres",
          database: "postgres",
          max: 1,
          connectionTimeoutMillis: 30_000,
          application_name: "agentsync"
        })
        // An idle connection's error: the pool drops it and the next use connects again (as PgClient.make does).
        pool.on("error", () => {})
        // @effect/sql-pg 0.53.0's `makeCancel` reads `client.processID`: with none, it sends no cancel.
        pool.on("connect", (connection) => Object.assign(connection, { processID: undefined }))
        return Effect.tryPromise({
          try: () => pool.query("SELECT 1"),
          catch: (cause) => new SqlError({ cause, message: "PgClient: Failed to connect" })
        }).pipe(
          Effect.as(pool),
          Effect.tapError(() => Effect.promise(() => pool.end()).pipe(Effect.timeoutOption(1000)))
        )
      }),
      (pool) => Effect.promise(() => pool.end()).pipe(Effect.interruptible, Effect.timeoutOption(1000))
    ),
    applicationName: "agentsync"
  }).pipe(
    // What the server's side pools read to tell a database of one session (see `sidePool`).
    Layer.tap((context) =>
      Effect.sync(() => {
        const client = Context.get(context, PgClient.PgClient)
        Object.assign(client, { config: { ...client.config, maxConnections: 1 } })
      })
    )
  )

/** The options in force for a configuration: DATABASE_URL, else `<projectRoot>/.agentsync/pgdata`. */
export const optionsFromConfig = (config: {
  readonly databaseUrl?: Redacted.Redacted<string> | undefined
  readonly projectRoot: string
}): DatabaseOptions => ({
  url: Option.fromNullable(config.databaseUrl),
  dataDir: embeddedDataDir(config.projectRoot)
})

/** The database layer for the configuration in force. */
export const layerFromConfig: Layer.Layer<
  PgClient.PgClient | SqlClient.SqlClient,
  DatabaseError | SyncInProgress,
  CurrentConfig
> = Layer.unwrapEffect(Effect.map(CurrentConfig, (config) => layer(optionsFromConfig(config))))

/**
 * Runs the project migrations (table `agentsync_migrations`); runs started together on a fresh database
 * serialise (`runMigrations`), and apply them once.
 */
export const runProjectMigrations = Effect.fn("Database.projectMigrations")(function* () {
  return yield* runMigrations("agentsync_migrations", projectMigrationsRecord).pipe(
    (migrate) => phase("database migrations", migrate, { unit: "items", count: (applied) => applied.length }),
    Effect.mapError(
      (cause) => new DatabaseError({ reason: `project migrations failed: ${causeMessage(cause)}`, cause })
    )
  )
})

/** The project migrations as a layer over a database layer. */
export const projectMigrations: Layer.Layer<never, DatabaseError, PgClient.PgClient | SqlClient.SqlClient> =
  Layer.effectDiscard(runProjectMigrations())

/** The database with the project migrations applied: what the project's programs run on. */
export const layerMigrated = (options: DatabaseOptions) => Layer.provideMerge(projectMigrations, layer(options))

/** `layerMigrated` for the configuration in force. */
export const layerMigratedFromConfig = Layer.provideMerge(projectMigrations, layerFromConfig)

/** The port as one value, for `import { Database }`. */
export const Database = {
  layer,
  layerFromConfig,
  layerMigrated,
  layerMigratedFromConfig,
  projectMigrations,
  runProjectMigrations,
  optionsFromConfig,
  embeddedDataDir,
  holdsDatabase
} as const
