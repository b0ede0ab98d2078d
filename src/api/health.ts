/** The unauthenticated probes of the tenant server: health, liveness (the process) and readiness (its database). */
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"
import { described } from "./common.js"

/** The database as a probe found it: reachable, and every server migration applied. */
export class DatabaseStatus extends Schema.Class<DatabaseStatus>("DatabaseStatus")({
  reachable: Schema.Boolean,
  /** Server migrations applied / known to this version; equal when current. */
  migrations: Schema.Struct({ applied: Schema.NonNegativeInt, expected: Schema.NonNegativeInt }),
  /** Why it is not ready; absent when it is. */
  reason: Schema.optional(Schema.String)
}) {}

export class Health extends Schema.Class<Health>("Health")({
  ok: Schema.Boolean,
  version: Schema.String,
  database: DatabaseStatus
}) {}

export class Live extends Schema.Class<Live>("Live")({ ok: Schema.Literal(true) }) {}

/** The server cannot serve yet (or any more): its database is unreachable or its migrations are not current. */
export class NotReady extends Schema.TaggedError<NotReady>()(
  "NotReady",
  { reason: Schema.String, database: DatabaseStatus },
  HttpApiSchema.annotations({ status: 503, description: "The database is unreachable or not migrated." })
) {}

export class HealthGroup extends HttpApiGroup.make("health")
  .add(
    HttpApiEndpoint.get("health", "/api/v1/health")
      .addSuccess(Health)
      .addError(NotReady)
      .pipe(
        described(
          "Server health",
          "The server's version and its database's state; 503 when the database is unreachable or not migrated."
        )
      )
  )
  .add(
    HttpApiEndpoint.get("livez", "/livez")
      .addSuccess(Live)
      .pipe(described("Liveness probe", "200 while the process serves requests; it checks nothing else."))
  )
  .add(
    HttpApiEndpoint.get("readyz", "/readyz")
      .addSuccess(DatabaseStatus)
      .addError(NotReady)
      .pipe(
        described(
          "Readiness probe",
          "200 when the database answers and every server migration is applied; 503 otherwise (take the replica out of rotation)."
        )
      )
  )
  .annotate(OpenApi.Description, "Unauthenticated probes for load balancers and orchestrators.") {}
