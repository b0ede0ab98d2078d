/** The public library surface of agentsync. */
export * from "./domain/model.js"
export * from "./domain/diff.js"
export * from "./domain/hash.js"
export * from "./domain/formats.js"
export * from "./domain/project.js"
export * from "./domain/membership.js"
export * from "./errors.js"
export * from "./config.js"
export * as Workspace from "./services/Workspace.js"
export * as Database from "./services/Database.js"
export * as Repos from "./services/repos/index.js"
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
