/** `agentsync/skills`: skills, agents and commands between their git repositories and the tools' homes. */
export * as Skills from "../domain/skills/index.js"
export {
  type ActionView,
  conflictOf,
  type InstallInput,
  normalizeUri,
  outcomeOf,
  readLayoutFile,
  SkillSync,
  type SourceInput,
  type StatusRow,
  type SyncOptions as SkillSyncOptions,
  type SyncReport as SkillSyncReport,
  viewAction
} from "../programs/skillSync.js"
export * as Git from "../services/Git.js"
export * as Shell from "../services/Shell.js"
export * as SkillStore from "../services/SkillStore.js"
