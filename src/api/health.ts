/** The unauthenticated health check of the tenant server. */
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import { Schema } from "effect"

export class Health extends Schema.Class<Health>("Health")({ ok: Schema.Boolean, version: Schema.String }) {}

export class HealthGroup extends HttpApiGroup.make("health").add(
  HttpApiEndpoint.get("health", "/api/v1/health").addSuccess(Health)
) {}
