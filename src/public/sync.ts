/** `agentsync/sync`: every sync of a project in one call (local, files, database), as `agentsync sync` runs it. */
export { type SyncAllOptions, type SyncAllResult, type SyncOpResult, SyncService } from "../programs/syncAll.js"
