/** `agentsync/local`: the `services/` tree ↔ the project database, whole or by kind, and the database port it runs on. */
export {
  AccessControlLocalSync,
  AgentsLocalSync,
  ALL_KINDS,
  ContentLocalSync,
  type KindDiff,
  type LocalDiffReport,
  LocalSync,
  type LocalSyncOptions,
  type LocalSyncReport,
  type PlanStep,
  SkillsLocalSync
} from "../programs/localSync.js"
export * as Database from "../services/ProjectDatabase.js"
export * as Workspace from "../services/Workspace.js"
