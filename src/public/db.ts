/** `agentsync/db`: database sync between the project database and the tenant's (direct, or through the tenant API). */

export * as DbExport from "../domain/db/index.js"
export {
  DatabaseSyncService,
  type DbDiffResult,
  type DbSide,
  type DbSyncOptions,
  type DbSyncResult,
  type DbTransport
} from "../programs/dbSync.js"
export * as DatabaseApi from "../services/DatabaseApi.js"
export * as Database from "../services/ProjectDatabase.js"
