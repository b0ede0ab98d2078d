/** The deploy area of the tenant API: the registry credential, the deploy lock, releases and rollback, in both URL families. */
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import { Schema } from "effect"
import { RELEASE_KINDS, RELEASE_STATUSES } from "../domain/deploy/release.js"
import { described, InvalidInputWire, reasonError, tenantGroups } from "./common.js"
import { IdempotencyHeaders } from "./files.js"

/** The route suffixes, shared by both families and by the client. */
export const DeployRoutes = {
  registryToken: "/registry-token",
  deploy: "/deploy",
  lock: "/deploy/lock",
  ownLock: (lockId: string) => `/deploy/lock/${encodeURIComponent(lockId)}`,
  releases: "/releases",
  release: (number: number) => `/releases/${number}`,
  rollback: (number: number) => `/releases/${number}/rollback`
} as const

/** The credential the server's operator configured for pushing images; the password is never logged. */
export class RegistryCredential extends Schema.Class<RegistryCredential>("RegistryCredential")({
  /** The registry host it is for, when the operator named one. */
  registry: Schema.NullOr(Schema.String),
  username: Schema.String,
  password: Schema.Redacted(Schema.String)
}) {}

/** The health gate a release asks for: a path on the server's health URL and how long to wait for a 2xx. */
export const HealthRequest = Schema.Struct({
  path: Schema.String.pipe(Schema.pattern(/^\/[^\s]*$/)),
  timeout_seconds: Schema.Number.pipe(Schema.between(1, 3600))
})

const Text = (max: number) => Schema.String.pipe(Schema.maxLength(max))

export class LockRequest extends Schema.Class<LockRequest>("LockRequest")({
  /** Who deploys, for the status others see (user@host). */
  holder: Text(200),
  message: Text(500)
}) {}

export class LockInfo extends Schema.Class<LockInfo>("LockInfo")({
  holder: Schema.String,
  message: Schema.String,
  /** The token the lock was taken with. */
  who: Schema.String,
  acquired_at: Schema.String,
  expires_at: Schema.String,
  /** The release running under this lock; the lock lasts until it ends. */
  release: Schema.NullOr(Schema.Int)
}) {}

export class LockStatus extends Schema.Class<LockStatus>("LockStatus")({
  held: Schema.Boolean,
  lock: Schema.NullOr(LockInfo)
}) {}

/** A lock taken: its id (renewed with a heartbeat, released by its holder) and how long a lease lasts. */
export class LockGrant extends Schema.Class<LockGrant>("LockGrant")({
  id: Schema.String,
  lease_seconds: Schema.Number,
  lock: LockInfo
}) {}

export class DeployRequest extends Schema.Class<DeployRequest>("DeployRequest")({
  /** `repository@sha256:…`: a release is always by digest, never by a tag. */
  image: Text(600),
  tag: Schema.NullOr(Text(128)),
  source_sha: Schema.NullOr(Text(64)),
  dirty: Schema.NullOr(Schema.Boolean),
  lock_id: Text(100),
  message: Text(500),
  health: Schema.NullOr(HealthRequest)
}) {}

export class RollbackRequest extends Schema.Class<RollbackRequest>("RollbackRequest")({
  lock_id: Text(100),
  message: Text(500),
  health: Schema.NullOr(HealthRequest)
}) {}

export class Release extends Schema.Class<Release>("Release")({
  /** Per tenant: 1, 2, 3, … */
  number: Schema.Int,
  kind: Schema.Literal(...RELEASE_KINDS),
  image: Schema.String,
  digest: Schema.String,
  tag: Schema.NullOr(Schema.String),
  source_sha: Schema.NullOr(Schema.String),
  dirty: Schema.NullOr(Schema.Boolean),
  /** For a rollback: the release whose image it runs again. */
  rollback_of: Schema.NullOr(Schema.Int),
  status: Schema.Literal(...RELEASE_STATUSES),
  /** Why it failed. */
  reason: Schema.NullOr(Schema.String),
  /** After a failure: the release that was put back. */
  reactivated: Schema.NullOr(Schema.Int),
  /** The token that made it. */
  who: Schema.String,
  message: Schema.String,
  created_at: Schema.String,
  finished_at: Schema.NullOr(Schema.String),
  /** The hook's output and the health checks, redacted; left out of lists. */
  log: Schema.optional(Schema.String)
}) {}

/** The tenant's deploy lock is held by someone else. */
export class DeployLockedWire extends Schema.TaggedError<DeployLockedWire>()(
  "DeployLocked",
  { reason: Schema.String, lock: LockInfo },
  HttpApiSchema.annotations({ status: 409, description: "The tenant's deploy lock is held by another deploy." })
) {}

/** The lock this call names is not (or no longer) the tenant's lock: it expired or was released by force. */
export class LockLost extends reasonError<LockLost>()(
  "LockLost",
  409,
  "The lock named is not (or no longer) the tenant's lock: it expired or was released by force."
) {}

const NumberPath = Schema.Struct({ number: Schema.NumberFromString.pipe(Schema.int(), Schema.positive()) })
const ListParams = Schema.Struct({
  limit: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 1000)))
})

const LockIdPath = Schema.Struct({ lockId: Schema.String })

const deploy = tenantGroups(
  {
    sync: "deploy",
    cloud: "cloudDeploy",
    description: "The tenant's deploys: the registry credential, the deploy lock, releases and rollback."
  },
  [
    HttpApiEndpoint.get("registryToken", DeployRoutes.registryToken)
      .addSuccess(RegistryCredential)
      .pipe(
        described(
          "Get the registry credential",
          "The registry credential configured by the server's operator, for `docker login --password-stdin` (404 when none is configured)."
        )
      ),
    HttpApiEndpoint.get("lockStatus", DeployRoutes.lock)
      .addSuccess(LockStatus)
      .pipe(described("Get the deploy lock", "Who holds the tenant's deploy lock, and until when.")),
    HttpApiEndpoint.post("lock", DeployRoutes.lock)
      .setPayload(LockRequest)
      .addSuccess(LockGrant)
      .addError(DeployLockedWire)
      .pipe(
        described(
          "Take the deploy lock",
          "Takes the tenant's deploy lock for a lease (409 while another deploy or its running release holds it)."
        )
      ),
    HttpApiEndpoint.put("heartbeat", "/deploy/lock/:lockId")
      .setPath(LockIdPath)
      .addSuccess(LockGrant)
      .addError(LockLost)
      .pipe(
        described(
          "Renew the deploy lock",
          "Renews the lease of a lock this caller holds (409 when it expired or was released by force)."
        )
      ),
    HttpApiEndpoint.del("unlock", "/deploy/lock/:lockId")
      .setPath(LockIdPath)
      .addSuccess(LockStatus)
      .pipe(
        described(
          "Release the deploy lock",
          "Releases a lock this caller holds; a release still running keeps the tenant locked until it ends."
        )
      ),
    HttpApiEndpoint.del("forceUnlock", DeployRoutes.lock)
      .addSuccess(LockStatus)
      .addError(DeployLockedWire)
      .pipe(
        described(
          "Break the deploy lock",
          "Releases the tenant's lock whoever holds it (409 while a release is running on the server)."
        )
      ),
    HttpApiEndpoint.post("deploy", DeployRoutes.deploy)
      .setHeaders(IdempotencyHeaders)
      .setPayload(DeployRequest)
      .addSuccess(Release)
      .addError(LockLost)
      .addError(InvalidInputWire)
      .pipe(
        described(
          "Deploy an image",
          "Records a release of an image by digest and starts it: the operator's hook, then the health gate; a failure re-activates the previous release. Needs the tenant's lock; an idempotency key makes a retry return the same release."
        )
      ),
    HttpApiEndpoint.get("releases", DeployRoutes.releases)
      .setUrlParams(ListParams)
      .addSuccess(Schema.Array(Release))
      .pipe(described("List releases", "The tenant's releases, newest first, without their logs.")),
    HttpApiEndpoint.get("release", "/releases/:number")
      .setPath(NumberPath)
      .addSuccess(Release)
      .pipe(described("Get a release", "One release with its redacted log.")),
    HttpApiEndpoint.post("rollback", "/releases/:number/rollback")
      .setPath(NumberPath)
      .setHeaders(IdempotencyHeaders)
      .setPayload(RollbackRequest)
      .addSuccess(Release)
      .addError(LockLost)
      .addError(InvalidInputWire)
      .pipe(
        described(
          "Roll back",
          "A new release that runs an earlier release's image again; history is never edited. Needs the tenant's lock."
        )
      )
  ]
)

export class SyncDeployGroup extends deploy.sync {}
export class CloudDeployGroup extends deploy.cloud {}
