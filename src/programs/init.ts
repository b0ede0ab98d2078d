/** A new project: agentsync.yaml and a services/ tree with one example of each kind, never over existing files. */
import * as nodePath from "node:path"
import { Effect } from "effect"
import { InvalidInput } from "../errors.js"
import { ProjectFiles } from "../services/ProjectFiles.js"

/** The skeleton, path → text, relative to the project root. */
export const SKELETON: Readonly<Record<string, string>> = {
  "agentsync.yaml": [
    "# agentsync project settings. Secrets (AGENTSYNC_TOKEN, DATABASE_URL) come from the environment.",
    "# tenant_id: my-tenant",
    "# direct_url: http://127.0.0.1:8787",
    "services: services",
    ""
  ].join("\n"),
  "services/.agentsyncignore": "# Paths file sync and local sync leave alone, one glob a line.\n**/*.local.yaml\n",
  "services/agents/assistant/config.yaml": [
    "id: assistant",
    "name: assistant",
    "display_name: Assistant",
    "description: Answers questions about the project.",
    "enabled: true",
    "tags: [example]",
    ""
  ].join("\n"),
  "services/agents/assistant/system_prompt.md":
    "You are the project's assistant.\n\nAnswer briefly and say where the answer came from.\n",
  "services/skills/summarize/config.yaml": [
    "id: summarize",
    "name: Summarize",
    "description: Summarize a document in five lines.",
    "enabled: true",
    "tags: [example]",
    "assigned_agents:",
    "  - assistant",
    ""
  ].join("\n"),
  "services/skills/summarize/SKILL.md":
    "# Summarize\n\nSummarize a document in five lines.\n\n## Steps\n\n1. Read it whole.\n2. Keep what a reader needs.\n",
  "services/content/docs/source.yaml": "layout: flat\ndescription: Project documentation\n",
  "services/content/docs/getting-started.md": [
    "---",
    "title: Getting started",
    "slug: getting-started",
    "description: The first steps with this project.",
    "public: true",
    "---",
    "",
    "Edit the files under services/, then run `agentsync validate` and `agentsync local sync --to-db`.",
    ""
  ].join("\n"),
  "services/access-control/config.yaml": [
    "rules:",
    "  - entity_type: agent",
    "    entity_id: assistant",
    "    access: allow",
    "    roles:",
    "      - staff",
    ""
  ].join("\n")
}

/** Writes the skeleton into `dir` (created if missing); refuses, writing nothing, when agentsync.yaml or services/ is there. */
const run = Effect.fn("Init.run")(function* (dir: string) {
  const files = yield* ProjectFiles
  const root = nodePath.resolve(dir)
  for (const taken of ["agentsync.yaml", "services"]) {
    const path = nodePath.join(root, taken)
    if ((yield* files.kind(path)) !== "absent")
      return yield* new InvalidInput({
        file: path,
        reason: "already exists; init never overwrites (choose an empty folder, or edit the project in place)"
      })
  }
  const written: Array<string> = []
  for (const [rel, text] of Object.entries(SKELETON)) {
    const path = nodePath.join(root, rel)
    yield* files.create(path, text)
    written.push(rel)
  }
  return { root, files: written }
})

/** `init` as a service: it writes through `ProjectFiles` (the local disk by default) and needs nothing else. */
export class Init extends Effect.Service<Init>()("agentsync/Init", {
  accessors: true,
  succeed: { run } as const
}) {}
