/** The public library surface of agentsync. */

export * as Api from "./api/index.js"
export * from "./config.js"
export * as DbExport from "./domain/dbExport.js"
export {
  ContextExport,
  DatabaseExport,
  type ImportPlan,
  planImport,
  SkillExport,
  type TableDiffCounts,
  type TableImportReport,
  type TargetState,
  UserExport
} from "./domain/dbExport.js"
export * as Deploy from "./domain/deploy/index.js"
export * from "./domain/diff.js"
export * from "./domain/formats.js"
export * as FrontMatter from "./domain/frontMatter.js"
export * from "./domain/hash.js"
export { JobRun, type RunStatus, type Trigger } from "./domain/jobs/runs.js"
export * as JobSchedule from "./domain/jobs/schedule.js"
export {
  type CatchUp,
  type Job,
  JobEntries,
  JobEntry,
  JobOptions,
  type JobTiming,
  type Overlap,
  type RunName,
  timingOf,
  toJob
} from "./domain/jobs/spec.js"
export * as LocalPlan from "./domain/localPlan.js"
export * as LocalSides from "./domain/localSides.js"
export * from "./domain/membership.js"
export * from "./domain/model.js"
export * from "./domain/project.js"
export * as Skills from "./domain/skills/index.js"
export {
  planSync as planSkillSync,
  planUnit as planSkillUnit,
  type SkillAction,
  type UnitState as SkillUnitState
} from "./domain/skills/planner.js"
export * from "./errors.js"
export { DatabaseSyncService, type DbDiffResult, type DbSyncResult } from "./programs/dbSync.js"
export { type DeployOptions, type DeployReport, DeployService, type RollbackOptions } from "./programs/deploy.js"
export * as FileSync from "./programs/files.js"
export { FileSyncService, type FilesOptions, type FilesReport } from "./programs/files.js"
export * as Jobs from "./programs/jobs/jobs.js"
export * as Scheduler from "./programs/jobs/scheduler.js"
export {
  AccessControlLocalSync,
  AgentsLocalSync,
  ContentLocalSync,
  type KindDiff,
  type LocalDiffReport,
  LocalSync,
  type LocalSyncOptions,
  type LocalSyncReport,
  type PlanStep,
  SkillsLocalSync
} from "./programs/localSync.js"
export * as SkillSync from "./programs/skillSync.js"
export { type SyncAllOptions, type SyncAllResult, type SyncOpResult, SyncService } from "./programs/syncAll.js"
export { FileStore } from "./server/FileStore.js"
export * as TenantServer from "./server/http.js"
export * as Database from "./services/Database.js"
export * as DatabaseApi from "./services/DatabaseApi.js"
export * as DeployApiClient from "./services/DeployApi.js"
export { DeployApi, type DeployApiShape } from "./services/DeployApi.js"
export * as Git from "./services/Git.js"
export * as JobStores from "./services/jobs/JobStore.js"
export { JobStore, type JobStoreShape } from "./services/jobs/JobStore.js"
export * as JobStorePg from "./services/jobs/pgStore.js"
export * as Repos from "./services/repos/index.js"
export * as Shell from "./services/Shell.js"
export * as SkillStore from "./services/SkillStore.js"
export * as SyncApi from "./services/SyncApi.js"
export {
  type Retry,
  type RetryPolicy,
  SyncApiClient,
  type SyncApiClientShape,
  type SyncEndpoint
} from "./services/SyncApi.js"
export * as Workspace from "./services/Workspace.js"
export * as ApplyStage from "./stages/apply.js"
export * as Archive from "./stages/archive.js"
export * as BundleStage from "./stages/bundle.js"
export * as DbExportStage from "./stages/dbExport.js"
export * as DbImportStage from "./stages/dbImport.js"
export * as DeployStages from "./stages/deploy.js"
export * as FilesDiffStage from "./stages/diff.js"
export * as UploadStage from "./stages/upload.js"
