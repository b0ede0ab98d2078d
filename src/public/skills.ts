/** `agentsync/skills`: skills, agents and commands between their git repositories and the tools' homes. */
export * as Skills from "../domain/skills/index.js"
export {
  type ActionView,
  conflictOf,
  outcomeOf,
  readLayoutFile,
  SkillSync,
  type StatusRow,
  type SyncReport as SkillSyncReport,
  viewAction
} from "../programs/skillSync.js"
export { type InstallInput, normalizeUri, type SourceInput } from "../programs/skills/install.js"
export type { SyncOptions as SkillSyncOptions } from "../programs/skills/sync.js"
export * as Git from "../services/Git.js"
export * as Shell from "../services/Shell.js"
export * as SkillStore from "../services/SkillStore.js"
