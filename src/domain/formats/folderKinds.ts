/**
 * Agents and skills, the two folder kinds: a folder with `config.yaml` plus one Markdown file, or the Markdown file
 * alone with its fields in front matter. Each kind is described once; parse, render and paths derive from it.
 */
import { Either, Schema } from "effect"
import { freshHead } from "../frontMatter/render.js"
import type { Fields } from "../frontMatter/split.js"
import { problem } from "../frontMatter/split.js"
import { Agent, Id, Json, Skill } from "../model.js"
import {
  ID_RULE,
  isBool,
  isId,
  isIds,
  isMapValue,
  isText,
  isTexts,
  type KnownField,
  pick,
  readMarkdown,
  renderConfig,
  renderMarkdown
} from "./fields.js"
import { decodeYaml, lineAt, type Parsed, parseYaml, type TextFile, withDefaults } from "./yaml.js"

/** A known field of a folder kind: its column's schema and shape, and its value when a file leaves it out. */
interface ItemField extends KnownField {
  readonly schema: Schema.Schema.AnyNoContext
  /** The value of an absent field, from the fields before it. */
  readonly absent: (before: Readonly<Record<string, unknown>>) => unknown
  /** config.yaml must give it (the single-file form may leave it out). */
  readonly required?: true
}

/** How an item of the folder form or of the single-file form was read. */
interface ItemSource {
  readonly form: "folder" | "file"
  readonly original: string | null
  readonly extra: Fields
}

/** What a folder kind is made of, apart from its item type. */
export interface KindShape {
  readonly kind: "agents" | "skills"
  /** The kind in messages: "agent", "skill". */
  readonly noun: string
  /** The Markdown file of the folder form, beside config.yaml. */
  readonly bodyName: string
  /** The file of the single-file form, relative to services/. */
  readonly filePath: (id: string) => string
  /** What the single-file form's id is taken from, in messages. */
  readonly idFrom: string
  /** The known fields in order, `id` first. */
  readonly fields: ReadonlyArray<ItemField>
}

/** What a folder kind is made of; everything else about the kind derives from this. */
export interface FolderKind<A extends Agent | Skill> extends KindShape {
  /** The item's Markdown text. */
  readonly body: (a: A) => string
  /** The item from its known values (already checked against their schemas when `checked`). */
  readonly make: (values: Record<string, unknown>, body: string, source: ItemSource, checked: boolean) => A
}

const constant = (v: unknown) => () => v

/** The config.yaml schema of a kind: every known field's column schema (built once per kind). */
const configSchemas = new WeakMap<KindShape, Schema.Struct<Record<string, Schema.Schema.AnyNoContext>>>()
const configSchema = (k: KindShape) => {
  let s = configSchemas.get(k)
  if (s === undefined) {
    s = Schema.Struct(Object.fromEntries(k.fields.map((f) => [f.key, f.schema])))
    configSchemas.set(k, s)
  }
  return s
}

const byId = (v: Readonly<Record<string, unknown>>) => v["id"]

export const AGENTS: FolderKind<Agent> = {
  kind: "agents",
  noun: "agent",
  bodyName: "system_prompt.md",
  filePath: (id) => `agents/${id}.md`,
  idFrom: "agent file name",
  fields: [
    { key: "id", fits: isText, schema: Id, absent: byId, required: true },
    { key: "name", fits: isText, schema: Schema.String, absent: byId, required: true },
    { key: "display_name", fits: isText, schema: Schema.String, absent: (v) => v["name"] },
    { key: "description", fits: isText, schema: Schema.String, absent: constant("") },
    { key: "enabled", fits: isBool, schema: Schema.Boolean, absent: constant(true) },
    { key: "tags", fits: isTexts, schema: Schema.Array(Schema.String), absent: () => [] },
    {
      key: "settings",
      fits: isMapValue,
      schema: Schema.Record({ key: Schema.String, value: Json }),
      absent: () => ({})
    }
  ],
  body: (a) => a.system_prompt,
  make: (values, body, source, checked) =>
    new Agent({ ...values, system_prompt: body, ...source } as ConstructorParameters<typeof Agent>[0], checked)
}

export const SKILLS: FolderKind<Skill> = {
  kind: "skills",
  noun: "skill",
  bodyName: "SKILL.md",
  filePath: (id) => `skills/${id}/SKILL.md`,
  idFrom: "skill folder name",
  fields: [
    { key: "id", fits: isText, schema: Id, absent: byId, required: true },
    { key: "name", fits: isText, schema: Schema.String, absent: byId, required: true },
    { key: "description", fits: isText, schema: Schema.String, absent: constant("") },
    { key: "enabled", fits: isBool, schema: Schema.Boolean, absent: constant(true) },
    { key: "tags", fits: isTexts, schema: Schema.Array(Schema.String), absent: () => [] },
    { key: "category", fits: isText, schema: Schema.String, absent: constant("general") },
    { key: "assigned_agents", fits: isIds, schema: Schema.Array(Id), absent: () => [] }
  ],
  body: (s) => s.instructions,
  make: (values, body, source, checked) =>
    new Skill({ ...values, instructions: body, ...source } as ConstructorParameters<typeof Skill>[0], checked)
}

export const FOLDER_KINDS = [AGENTS, SKILLS] as const

/** The single-file form lives inside the folder (a skill's SKILL.md), not beside it (an agent's `<id>.md`). */
export const fileInFolder = (k: KindShape) => k.filePath("x") === `${k.kind}/x/${k.bodyName}`

export const configPath = (k: KindShape, id: string) => `${k.kind}/${id}/config.yaml`
export const bodyPath = (k: KindShape, id: string) => `${k.kind}/${id}/${k.bodyName}`

/** The files an item is made of, relative to services/. */
export const itemPaths = <A extends Agent | Skill>(
  k: FolderKind<A>,
  a: Pick<A, "id" | "form">
): ReadonlyArray<string> => (a.form === "file" ? [k.filePath(a.id)] : [configPath(k, a.id), bodyPath(k, a.id)])

/** The file whose mode is the item's: its Markdown file (config.yaml of the folder form is written 0644). */
export const modePath = <A extends Agent | Skill>(k: FolderKind<A>, a: Pick<A, "id" | "form">): string =>
  a.form === "file" ? k.filePath(a.id) : bodyPath(k, a.id)

/** An item's known values from its fields, defaults filled. */
const values = (k: KindShape, id: string, known: Record<string, Json>): Record<string, Json> => {
  const out: Record<string, Json> = { id }
  for (const f of k.fields.slice(1)) out[f.key] = known[f.key] ?? (f.absent(out) as Json)
  return out
}

/** The defaults config.yaml may leave out, from what it gives. */
const configDefaults = (k: KindShape) => (v: Record<string, unknown>) =>
  Object.fromEntries(k.fields.flatMap((f) => (f.required ? [] : [[f.key, f.absent(v)]])))

const wanted = <A extends Agent | Skill>(k: FolderKind<A>, a: A): Record<string, Json> =>
  Object.fromEntries(k.fields.map((f) => [f.key, a[f.key as keyof A] as Json]))

/** The folder form: config.yaml and the Markdown file beside it; `dirName` is the folder the id must match. */
export const parseFolderItem = <A extends Agent | Skill>(
  k: FolderKind<A>,
  config: TextFile,
  body: TextFile | undefined,
  dirName?: string
): Parsed<A> =>
  Either.flatMap(parseYaml(config), (y) =>
    Either.flatMap(
      decodeYaml(configSchema(k), config, y, withDefaults(y.doc.toJS(), configDefaults(k))),
      (c): Parsed<A> => {
        if (dirName !== undefined && c["id"] !== dirName) {
          return Either.left([
            problem(
              config.path,
              `id ${JSON.stringify(c["id"])} does not match its folder ${JSON.stringify(dirName)}`,
              lineAt(y, ["id"]),
              "id"
            )
          ])
        }
        return Either.right(k.make(c, body?.text ?? "", { form: "folder", original: config.text, extra: {} }, false))
      }
    )
  )

/** The single-file form: the known fields and the rest of its front matter, the Markdown below. */
export const parseFileItem = <A extends Agent | Skill>(k: FolderKind<A>, file: TextFile, id: string): Parsed<A> =>
  Either.flatMap(readMarkdown(file), ({ split, fields }) => {
    if (!isId(id))
      return Either.left([problem(file.path, `${k.idFrom} ${JSON.stringify(id)} is not a valid id (${ID_RULE})`, 1)])
    const { known, extra } = pick(fields, k.fields.slice(1))
    // Every known value was checked against its column's shape by `pick`: no second validation.
    return Either.right(k.make(values(k, id, known), split.body, { form: "file", original: split.head, extra }, true))
  })

/** An item's files, relative to services/, each changed only where its fields changed. */
export const renderItem = <A extends Agent | Skill>(
  k: FolderKind<A>,
  a: A
): ReadonlyArray<{ readonly path: string; readonly text: string }> => {
  const want = wanted(k, a)
  if (a.form === "file") {
    const { id: _, ...fresh } = want
    const known = k.fields.slice(1)
    const fields = () => ({ ...fresh, ...a.extra })
    const text = renderMarkdown(
      a.original ?? "",
      k.body(a),
      (fields: Fields) => {
        const p = pick(fields, known)
        return { known: values(k, a.id, p.known), extra: p.extra }
      },
      known,
      want,
      a.extra,
      fields
    )
    // An agent's file is YAML front matter, which holds any value: written fresh in the rare case no edit reads back.
    return [{ path: k.filePath(a.id), text: text ?? freshHead(fields()) + k.body(a) }]
  }
  return [
    { path: configPath(k, a.id), text: renderConfig(a.original, k.fields, (known) => values(k, a.id, known), want) },
    { path: bodyPath(k, a.id), text: k.body(a) }
  ]
}
