/** The tenant API: one HttpApi definition shared by the server (src/server) and the typed client (src/services/SyncApi). */
import * as HttpApi from "@effect/platform/HttpApi"
import * as OpenApi from "@effect/platform/OpenApi"
import { AdminGroup } from "./admin.js"
import { CloudDatabaseGroup, SyncDatabaseGroup } from "./db.js"
import { CloudDeployGroup, SyncDeployGroup } from "./deploy.js"
import { CloudFilesGroup, SyncFilesGroup } from "./files.js"
import { HealthGroup } from "./health.js"

export * from "./admin.js"
export * from "./common.js"
export * from "./db.js"
export * from "./deploy.js"
export * from "./files.js"
export * from "./health.js"

/** One group per area; a new area is a new group file added here. */
export class AgentsyncApi extends HttpApi.make("agentsync")
  .add(HealthGroup)
  .add(SyncFilesGroup)
  .add(CloudFilesGroup)
  .add(SyncDatabaseGroup)
  .add(CloudDatabaseGroup)
  .add(SyncDeployGroup)
  .add(CloudDeployGroup)
  .add(AdminGroup)
  .annotateContext(
    OpenApi.annotations({
      title: "agentsync tenant API",
      version: "1",
      description:
        "The tenant server of agentsync (`agentsync serve`): file sync, database sync and deploys per tenant, in two URL families (direct: the tenant is the bearer token's; cloud relay: the tenant is named in the path), probes, and the operator's admin area. Every failure answers with a JSON body `{_tag, reason, …}` naming the error.",
      license: { name: "MIT", url: "https://github.com/agentsync/agentsync/blob/main/LICENSE" },
      servers: [
        {
          url: "{scheme}://{host}:{port}",
          description: "A tenant server (`agentsync serve`; HOST and PORT, or a reverse proxy in front of it).",
          variables: {
            scheme: { default: "http", enum: ["http", "https"] },
            host: { default: "127.0.0.1" },
            port: { default: "8787" }
          }
        }
      ]
    })
  ) {}

export const OPENAPI_PATH = "/api/v1/openapi.json"
