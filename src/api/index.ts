/** The tenant API: one HttpApi definition shared by the server (src/server) and the typed client (src/services/SyncApi). */
import * as HttpApi from "@effect/platform/HttpApi"
import * as OpenApi from "@effect/platform/OpenApi"
import { AdminGroup } from "./admin.js"
import { CloudDatabaseGroup, SyncDatabaseGroup } from "./database.js"
import { CloudDeployGroup, SyncDeployGroup } from "./deploy.js"
import { CloudFilesGroup, SyncFilesGroup } from "./files.js"
import { HealthGroup } from "./health.js"

export * from "./admin.js"
export * from "./common.js"
export * from "./database.js"
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
  .annotate(OpenApi.Title, "agentsync tenant API")
  .annotate(OpenApi.Version, "1") {}

export const OPENAPI_PATH = "/api/v1/openapi.json"
