/** The skills table: the item repository over Skill rows. */
import { Effect } from "effect"
import { skillHash } from "../../domain/hash.js"
import { Skill } from "../../domain/model.js"
import { itemRepo } from "./itemRepo.js"

export class SkillsRepo extends Effect.Service<SkillsRepo>()("agentsync/SkillsRepo", {
  effect: itemRepo({
    table: "skills",
    service: "SkillsRepo",
    schema: Skill,
    hash: skillHash,
    columns: [
      ["id", "text"],
      ["name", "text"],
      ["description", "text"],
      ["enabled", "boolean"],
      ["tags", "text[]"],
      ["category", "text"],
      ["assigned_agents", "text[]"],
      ["instructions", "text"],
      ["form", "text"],
      ["original", "text"],
      ["extra", "json"],
      ["mode", "integer"]
    ]
  })
}) {}
