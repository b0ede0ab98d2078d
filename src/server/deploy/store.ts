/** The tenant server's deploy records in Postgres: the deploy lock (lease and heartbeat) and the releases. */
import { randomBytes, randomUUID } from "node:crypto"
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlError from "@effect/sql/SqlError"
import { Effect } from "effect"
import { type Caller, NotFound } from "../../api/common.js"
import { DeployLockedWire, LockGrant, LockInfo, LockLost, LockStatus, Release } from "../../api/deploy.js"
import { parseDigestImage } from "../../domain/deploy/image.js"
import { checkRollbackTarget, type ReleaseKind, type ReleaseStatus, RUNNING } from "../../domain/deploy/release.js"
import { ApiError, InvalidInput } from "../../errors.js"
import { oneRow } from "../../services/oneRow.js"
import { DeployServerConfig } from "./config.js"

interface ReleaseRow {
  readonly id: string
  readonly number: number
  readonly kind: ReleaseKind
  readonly image: string
  readonly digest: string
  readonly tag: string | null
  readonly source_sha: string | null
  readonly dirty: boolean | null
  readonly rollback_of: number | null
  readonly status: ReleaseStatus
  readonly reason: string | null
  readonly reactivated: number | null
  readonly who: string
  readonly message: string
  readonly health_path: string | null
  readonly health_timeout_seconds: number | null
  readonly created_at: Date
  readonly finished_at: Date | null
  readonly log?: string
}

interface LockRow {
  readonly id: string
  readonly holder: string
  readonly message: string
  readonly who: string
  readonly acquired_at: Date
  readonly expires_at: Date
  readonly release: number | null
  readonly release_running: boolean
  readonly held: boolean
}

/** What a release needs to run: who it is, and what it asked of the health gate. */
export interface StartedRelease {
  readonly id: string
  readonly tenantId: string
  readonly number: number
  readonly image: string
  readonly digest: string
  readonly health: { readonly path: string; readonly timeoutSeconds: number } | undefined
}

export const toRelease = (r: ReleaseRow): Release =>
  new Release({
    number: r.number,
    kind: r.kind,
    image: r.image,
    digest: r.digest,
    tag: r.tag,
    source_sha: r.source_sha,
    dirty: r.dirty,
    rollback_of: r.rollback_of,
    status: r.status,
    reason: r.reason,
    reactivated: r.reactivated,
    who: r.who,
    message: r.message,
    created_at: r.created_at.toISOString(),
    finished_at: r.finished_at === null ? null : r.finished_at.toISOString(),
    ...(r.log === undefined ? {} : { log: r.log })
  })

export const startedOf = (tenantId: string, r: ReleaseRow): StartedRelease => ({
  id: r.id,
  tenantId,
  number: r.number,
  image: r.image,
  digest: r.digest,
  health: r.health_path === null ? undefined : { path: r.health_path, timeoutSeconds: r.health_timeout_seconds ?? 60 }
})

const lockInfo = (l: LockRow) =>
  new LockInfo({
    holder: l.holder,
    message: l.message,
    who: l.who,
    acquired_at: l.acquired_at.toISOString(),
    expires_at: l.expires_at.toISOString(),
    release: l.release
  })

const storageFailure = (what: string) => (cause: SqlError.SqlError) =>
  Effect.logError(`deploy storage: ${what} failed`, cause).pipe(
    Effect.zipRight(Effect.fail(new ApiError({ status: 500, reason: `storage error during ${what}` })))
  )

const COLUMNS =
  "id, number, kind, image, digest, tag, source_sha, dirty, rollback_of, status, reason, reactivated, who, message, health_path, health_timeout_seconds, created_at, finished_at"

/** A release to record: a deploy names its image, a rollback the release whose image it runs again. */
export type NewRelease = {
  readonly lockId: string
  readonly idempotencyKey: string | undefined
  readonly tag: string | null
  readonly sourceSha: string | null
  readonly dirty: boolean | null
  readonly message: string
  readonly health: { readonly path: string; readonly timeout_seconds: number } | null
} & ({ readonly kind: "deploy"; readonly image: string } | { readonly kind: "rollback"; readonly rollbackOf: number })

export class DeployStore extends Effect.Service<DeployStore>()("agentsync/server/DeployStore", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const config = yield* DeployServerConfig
    const lease = config.leaseSeconds
    const running = sql.in(RUNNING)

    /** The lock row with whether it is held: a live lease, or a running release with a fresh heartbeat. */
    const readLocks = (tenantId: string, forUpdate = false) =>
      sql<LockRow>`
        SELECT l.id, l.holder, l.message, l.who, l.acquired_at, l.expires_at, r.number AS release,
          coalesce(r.status IN ${running} AND r.heartbeat_at > now() - make_interval(secs => ${lease}), false) AS release_running,
          (l.expires_at > now() OR coalesce(r.status IN ${running} AND r.heartbeat_at > now() - make_interval(secs => ${lease}), false)) AS held
        FROM deploy_locks l LEFT JOIN releases r ON r.id = l.release_id
        WHERE l.tenant_id = ${tenantId} ${forUpdate ? sql`FOR UPDATE OF l` : sql``}`
    const readLock = (tenantId: string, forUpdate = false) =>
      readLocks(tenantId, forUpdate).pipe(Effect.map((rows) => rows[0]))

    const statusOf = (row: LockRow | undefined) =>
      new LockStatus({ held: row?.held === true, lock: row === undefined || !row.held ? null : lockInfo(row) })

    const lockStatus = Effect.fn("DeployStore.lockStatus")(function* (caller: Caller) {
      return statusOf(yield* readLock(caller.tenantId).pipe(Effect.catchTag("SqlError", storageFailure("lock status"))))
    })

    /** A release left running by a server that stopped (its heartbeat is older than a lease) is marked failed. */
    const settleAbandoned = (tenantId: string) =>
      sql`UPDATE releases SET status = 'failed', finished_at = now(),
            reason = 'abandoned: the server running it stopped before it ended; the previous release stays recorded active, but its hook was not run again',
            log = log || E'abandoned: no heartbeat from the server running this release\n'
          WHERE tenant_id = ${tenantId} AND status IN ${running} AND heartbeat_at <= now() - make_interval(secs => ${lease})`

    const acquire = Effect.fn("DeployStore.acquire")(function* (caller: Caller, holder: string, message: string) {
      const id = `lk_${randomBytes(12).toString("hex")}`
      // The lock row is read in the transaction that inserted it or, held by another, locked it (ON CONFLICT DO
      // UPDATE locks the conflicting row even where its WHERE leaves it unchanged): it is there either way.
      const { taken, row } = yield* sql
        .withTransaction(
          Effect.gen(function* () {
            yield* settleAbandoned(caller.tenantId)
            const inserted = yield* sql<{ id: string }>`
            INSERT INTO deploy_locks (tenant_id, id, holder, message, who, acquired_at, heartbeat_at, expires_at, release_id)
            VALUES (${caller.tenantId}, ${id}, ${holder}, ${message}, ${caller.label}, now(), now(), now() + make_interval(secs => ${lease}), NULL)
            ON CONFLICT (tenant_id) DO UPDATE SET id = excluded.id, holder = excluded.holder, message = excluded.message, who = excluded.who,
              acquired_at = excluded.acquired_at, heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at, release_id = NULL
            WHERE deploy_locks.expires_at <= now() AND NOT EXISTS (
              SELECT 1 FROM releases r WHERE r.id = deploy_locks.release_id AND r.status IN ${running}
                AND r.heartbeat_at > now() - make_interval(secs => ${lease}))
            RETURNING id`
            const row = yield* oneRow(
              yield* readLocks(caller.tenantId),
              "deploy storage: the lock row just written or locked"
            )
            return { taken: inserted.length > 0, row }
          })
        )
        .pipe(Effect.catchTag("SqlError", storageFailure("lock")))
      if (!taken)
        return yield* new DeployLockedWire({ reason: "the tenant's deploy lock is held", lock: lockInfo(row) })
      return new LockGrant({ id, lease_seconds: lease, lock: lockInfo(row) })
    })

    const heartbeat = Effect.fn("DeployStore.heartbeat")(function* (caller: Caller, lockId: string) {
      const renewed = yield* sql<{ id: string }>`
        UPDATE deploy_locks SET heartbeat_at = now(), expires_at = now() + make_interval(secs => ${lease})
        WHERE tenant_id = ${caller.tenantId} AND id = ${lockId} AND expires_at > now() RETURNING id`.pipe(
        Effect.catchTag("SqlError", storageFailure("heartbeat"))
      )
      const row = yield* readLock(caller.tenantId).pipe(Effect.catchTag("SqlError", storageFailure("heartbeat")))
      if (renewed.length === 0 || row === undefined) {
        return yield* new LockLost({ reason: "this deploy's lock expired or was released by force" })
      }
      return new LockGrant({ id: lockId, lease_seconds: lease, lock: lockInfo(row) })
    })

    /** Ends the holder's lease; a release still running under the lock keeps it held until the release ends. */
    const unlock = Effect.fn("DeployStore.unlock")(function* (caller: Caller, lockId: string) {
      yield* sql`UPDATE deploy_locks SET expires_at = least(expires_at, now()) WHERE tenant_id = ${caller.tenantId} AND id = ${lockId}`.pipe(
        Effect.catchTag("SqlError", storageFailure("unlock"))
      )
      return yield* lockStatus(caller)
    })

    /** Ends whoever's lease; refused while a release runs on the server (it ends by itself). */
    const forceUnlock = Effect.fn("DeployStore.forceUnlock")(function* (caller: Caller) {
      const row = yield* readLock(caller.tenantId).pipe(Effect.catchTag("SqlError", storageFailure("unlock")))
      if (row?.release_running === true) {
        return yield* new DeployLockedWire({
          reason: `release ${row.release} is running on the server; the lock ends with it`,
          lock: lockInfo(row)
        })
      }
      yield* sql`UPDATE deploy_locks SET expires_at = least(expires_at, now()) WHERE tenant_id = ${caller.tenantId}`.pipe(
        Effect.catchTag("SqlError", storageFailure("unlock"))
      )
      return yield* lockStatus(caller)
    })

    const releaseRow = (tenantId: string, number: number, withLog: boolean) =>
      sql
        .unsafe<ReleaseRow>(
          `SELECT ${COLUMNS}${withLog ? ", log" : ""} FROM releases WHERE tenant_id = $1 AND number = $2`,
          [tenantId, number]
        )
        .pipe(Effect.map((rows) => rows[0]))

    const release = Effect.fn("DeployStore.release")(function* (caller: Caller, number: number) {
      const row = yield* releaseRow(caller.tenantId, number, true).pipe(
        Effect.catchTag("SqlError", storageFailure("release"))
      )
      if (row === undefined) return yield* new NotFound({ reason: `no release ${number}` })
      return toRelease(row)
    })

    const releases = Effect.fn("DeployStore.releases")(function* (caller: Caller, limit = 100) {
      const rows = yield* sql
        .unsafe<ReleaseRow>(`SELECT ${COLUMNS} FROM releases WHERE tenant_id = $1 ORDER BY number DESC LIMIT $2`, [
          caller.tenantId,
          limit
        ])
        .pipe(Effect.catchTag("SqlError", storageFailure("releases")))
      return rows.map(toRelease)
    })

    /**
     * Records a release under the caller's lock, numbered after the last, and returns it with whether it is new
     * (a repeated idempotency key returns the release it made before, which is not started again).
     */
    const create = Effect.fn("DeployStore.create")(function* (caller: Caller, req: NewRelease) {
      const tenantId = caller.tenantId
      const made = yield* sql
        .withTransaction(
          Effect.gen(function* () {
            // The lock row first: it serialises this tenant's release requests, a retry racing its first attempt included.
            const lock = yield* readLock(tenantId, true)
            if (req.idempotencyKey !== undefined) {
              const again = yield* sql.unsafe<ReleaseRow>(
                `SELECT ${COLUMNS} FROM releases WHERE tenant_id = $1 AND idempotency_key = $2`,
                [tenantId, req.idempotencyKey]
              )
              if (again[0] !== undefined) return { row: again[0], created: false }
            }
            if (lock === undefined || lock.id !== req.lockId || lock.expires_at.getTime() <= Date.now()) {
              return yield* new LockLost({
                reason: "this deploy does not hold the tenant's deploy lock (it expired or was released by force)"
              })
            }
            if (lock.release_running) {
              return yield* new LockLost({ reason: `release ${lock.release} is still running under this lock` })
            }
            let image: string
            let digest: string
            if (req.kind === "rollback") {
              const target = yield* releaseRow(tenantId, req.rollbackOf, false)
              if (target === undefined) return yield* new NotFound({ reason: `no release ${req.rollbackOf}` })
              const [active] = yield* sql.unsafe<ReleaseRow>(
                `SELECT ${COLUMNS} FROM releases WHERE tenant_id = $1 AND status = 'active'`,
                [tenantId]
              )
              const problem = checkRollbackTarget(target, active)
              if (problem !== undefined) return yield* new InvalidInput({ field: "release", reason: problem })
              image = target.image
              digest = target.digest
            } else {
              const parsed = parseDigestImage(req.image)
              if (parsed === undefined) {
                return yield* new InvalidInput({
                  field: "image",
                  reason: `not an image by digest (repository@sha256:<64 hex>): ${JSON.stringify(req.image.slice(0, 200))}`
                })
              }
              image = req.image
              digest = parsed.digest
            }
            const { next } = yield* oneRow(
              yield* sql<{
                next: number
              }>`SELECT coalesce(max(number), 0) + 1 AS next FROM releases WHERE tenant_id = ${tenantId}`,
              "deploy storage: the next release number"
            )
            const id = randomUUID()
            yield* sql`INSERT INTO releases ${sql.insert({
              id,
              tenant_id: tenantId,
              number: next,
              kind: req.kind,
              image,
              digest,
              tag: req.tag,
              source_sha: req.sourceSha,
              dirty: req.dirty,
              rollback_of: req.kind === "rollback" ? req.rollbackOf : null,
              status: "pending",
              who: caller.label,
              message: req.message,
              health_path: req.health?.path ?? null,
              health_timeout_seconds: req.health === null ? null : Math.ceil(req.health.timeout_seconds),
              idempotency_key: req.idempotencyKey ?? null
            })}`
            yield* sql`UPDATE deploy_locks SET release_id = ${id} WHERE tenant_id = ${tenantId}`
            const row = yield* oneRow(
              yield* sql.unsafe<ReleaseRow>(`SELECT ${COLUMNS} FROM releases WHERE id = $1`, [id]),
              "deploy storage: the release just inserted"
            )
            return { row, created: true }
          })
        )
        .pipe(Effect.catchTag("SqlError", storageFailure("release")))
      return { release: toRelease(made.row), started: startedOf(tenantId, made.row), created: made.created }
    })

    return { lockStatus, acquire, heartbeat, unlock, forceUnlock, release, releases, create }
  })
}) {}
