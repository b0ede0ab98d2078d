/**
 * The public library surface of agentsync: every capability module (`./public/<capability>`, the subpath
 * `agentsync/<capability>`), and what only the whole library offers: the pure domain, and modules one by one.
 */

export {
  type ImportPlan,
  planImport,
  type TableDiffCounts,
  type TableImportReport,
  type TargetState
} from "./domain/db/importPlan.js"
export { ContextExport, DatabaseExport, SkillExport, UserExport } from "./domain/db/tables.js"
export * from "./domain/diff.js"
export * from "./domain/formats.js"
export * as FrontMatter from "./domain/frontMatter/index.js"
export * from "./domain/hash.js"
export * as LocalPlan from "./domain/localPlan.js"
export * as LocalSides from "./domain/localSides.js"
export * from "./domain/membership.js"
export * from "./domain/model.js"
export * from "./domain/project.js"
export {
  planSync as planSkillSync,
  planUnit as planSkillUnit,
  type SkillAction,
  type UnitState as SkillUnitState
} from "./domain/skills/planner.js"
export * as FileSync from "./programs/files.js"
export * from "./public/config.js"
/** Two capabilities name a `layer`: here it is the configuration's, as it always was; file sync's is `FileSync.layer`. */
export { layer } from "./public/config.js"
export * from "./public/db.js"
export * from "./public/deploy.js"
export * from "./public/files.js"
export * from "./public/jobs.js"
export * from "./public/local.js"
export * from "./public/server.js"
export * from "./public/skills.js"
export * from "./public/sync.js"
export * as Repos from "./services/repos/index.js"
export * as DbExportStage from "./stages/db/export.js"
export * as DbImportStage from "./stages/db/import.js"
export * as ApplyStage from "./stages/files/apply.js"
export * as Archive from "./stages/files/archive.js"
export * as BundleStage from "./stages/files/bundle.js"
export * as FilesDiffStage from "./stages/files/plan.js"
export * as UploadStage from "./stages/files/upload.js"
