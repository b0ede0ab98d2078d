/** The per-kind repositories of the project database, and one layer holding them all. */
import { Layer } from "effect"
import { AccessRulesRepo } from "./AccessRulesRepo.js"
import { AgentsRepo } from "./AgentsRepo.js"
import { ContentsRepo } from "./ContentsRepo.js"
import { ItemFilesRepo } from "./ItemFilesRepo.js"
import { SkillsRepo } from "./SkillsRepo.js"

export { ContentSource } from "../../domain/model.js"
export { AccessRulesRepo, type Decision, decide, type PlacedRule, UserAccessRule } from "./AccessRulesRepo.js"
export { AgentsRepo } from "./AgentsRepo.js"
export { type ContentMeta, ContentsRepo } from "./ContentsRepo.js"
export { ItemFilesRepo } from "./ItemFilesRepo.js"
export { SkillsRepo } from "./SkillsRepo.js"
export { type InvalidRow, type Listed, type Stored, unstorable } from "./shared.js"

export type Repos = AgentsRepo | SkillsRepo | ContentsRepo | AccessRulesRepo | ItemFilesRepo

/** Every repository, over the SqlClient in context. */
export const layer = Layer.mergeAll(
  AgentsRepo.Default,
  SkillsRepo.Default,
  ContentsRepo.Default,
  AccessRulesRepo.Default,
  ItemFilesRepo.Default
)
