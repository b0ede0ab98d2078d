/** `agentsync/files`: file sync with a tenant: the program and its layer, the API client (direct or relay) with its retries. */
export {
  backups,
  DELETE_THRESHOLD,
  type FileReportItem,
  FileSyncService,
  type FileSyncServiceShape,
  type FilesOptions,
  type FilesReport,
  layer,
  type RestoreReport,
  restore
} from "../programs/files.js"
export * as SyncApi from "../services/SyncApi.js"
export {
  defaultRetry,
  type Retry,
  type RetryPolicy,
  SyncApiClient,
  type SyncApiClientShape,
  type SyncApiOptions,
  type SyncEndpoint
} from "../services/SyncApi.js"
export * as Workspace from "../services/Workspace.js"
