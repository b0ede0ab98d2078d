/** The agents table: the item repository over Agent rows. */
import { Effect } from "effect"
import { agentHash } from "../../domain/hash.js"
import { Agent } from "../../domain/model.js"
import { itemRepo } from "./itemRepo.js"

export class AgentsRepo extends Effect.Service<AgentsRepo>()("agentsync/AgentsRepo", {
  effect: itemRepo({
    table: "agents",
    service: "AgentsRepo",
    schema: Agent,
    hash: agentHash,
    columns: [
      ["id", "text"],
      ["name", "text"],
      ["display_name", "text"],
      ["description", "text"],
      ["enabled", "boolean"],
      ["tags", "text[]"],
      ["settings", "json"],
      ["system_prompt", "text"],
      ["form", "text"],
      ["original", "text"],
      ["extra", "json"],
      ["mode", "integer"]
    ]
  })
}) {}
