/** Disk formats of a project's `services/` tree: parse and render each kind, with file:line errors. */

import { AGENTS, itemPaths, parseFileItem, parseFolderItem, renderItem, SKILLS } from "./formats/folderKinds.js"
import type { TextFile } from "./formats/yaml.js"
import type { Agent, Skill } from "./model.js"

export { ACCESS_RULES_PATH, parseAccessRules, renderAccessRules } from "./formats/accessRules.js"
export {
  asReadNow,
  contentPath,
  contentSlug,
  defaultContentPath,
  parseContent,
  parseSourceConfig,
  renderContent,
  SourceConfig,
  sourceConfigPath,
  uneditable,
  unwritableContent
} from "./formats/content.js"
export {
  collectErrors,
  decodeUtf8,
  decodeYaml,
  decodeYamlFile,
  type Parsed,
  parseYaml,
  type TextFile,
  type YamlParsed,
  yamlLine
} from "./formats/yaml.js"

/** The files an agent is made of, relative to services/. */
export const agentPaths = (a: Pick<Agent, "id" | "form">) => itemPaths(AGENTS, a)
export const skillPaths = (s: Pick<Skill, "id" | "form">) => itemPaths(SKILLS, s)

/** An agent folder: config.yaml and system_prompt.md. */
export const parseAgent = (config: TextFile, prompt: TextFile | undefined, dirName?: string) =>
  parseFolderItem(AGENTS, config, prompt, dirName)
/** A Claude Code subagent, `agents/<id>.md`: name, description and the rest of its front matter, the prompt below. */
export const parseAgentFile = (file: TextFile, id: string) => parseFileItem(AGENTS, file, id)
/** A skill folder: config.yaml and SKILL.md. */
export const parseSkill = (config: TextFile, instructions: TextFile | undefined, dirName?: string) =>
  parseFolderItem(SKILLS, config, instructions, dirName)
/** An Agent Skills folder: `SKILL.md` with `name`, `description` (and any other field) in its front matter. */
export const parseSkillFile = (file: TextFile, id: string) => parseFileItem(SKILLS, file, id)

/** An item's files, relative to services/, each changed only where its fields changed. */
export const renderAgent = (a: Agent) => renderItem(AGENTS, a)
export const renderSkill = (s: Skill) => renderItem(SKILLS, s)
