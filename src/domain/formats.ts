/** Disk formats of a project's `services/` tree: parse and render each kind, with file:line errors. */
import { Either, ParseResult, Schema } from "effect"
import { type Document, isMap, isNode, isSeq, LineCounter, parseDocument } from "yaml"
import type { InvalidInput } from "../errors.js"
import {
  type Fields,
  freshHead,
  patchFrontMatter,
  problem,
  readFrontMatter,
  readYamlFields,
  renderYaml,
  type SplitFile,
  sameJson,
  splitFrontMatter
} from "./frontMatter.js"
import { accessRuleKey } from "./hash.js"
import { AccessRule, Agent, Content, type ContentLayout, ContentPath, Id, Json, MARKDOWN, Skill } from "./model.js"

/** A parse either gives the value or every problem it found, each with its file and line. */
export type Parsed<A> = Either.Either<A, ReadonlyArray<InvalidInput>>

/** A text file as read from disk, its path relative to the project for messages. */
export interface TextFile {
  readonly path: string
  readonly text: string
}

/** Decodes bytes as UTF-8, or names the first line that is not. */
export const decodeUtf8 = (file: string, bytes: Uint8Array): Parsed<string> => {
  try {
    const text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes)
    return Either.right(text)
  } catch {
    let line = 1
    let start = 0
    const strict = new TextDecoder("utf-8", { fatal: true })
    for (let i = 0; i <= bytes.length; i++) {
      if (i === bytes.length || bytes[i] === 0x0a) {
        try {
          strict.decode(bytes.subarray(start, i))
        } catch {
          break
        }
        line++
        start = i + 1
      }
    }
    return Either.left([problem(file, "file is not valid UTF-8 text", line)])
  }
}

// ---------------------------------------------------------------------------------------------------------
// YAML

export interface YamlParsed {
  readonly doc: Document.Parsed
  readonly lines: LineCounter
  /** Line offset of the YAML within its file (front matter starts after the opening fence). */
  readonly offset: number
}

export const parseYaml = (file: TextFile, offset = 0): Either.Either<YamlParsed, ReadonlyArray<InvalidInput>> => {
  const lines = new LineCounter()
  const doc = parseDocument(file.text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true })
  if (doc.errors.length > 0) {
    return Either.left(
      doc.errors.map((e) => {
        const pos = e.pos[0] ?? 0
        const first = e.message.split("\n")[0] ?? e.message
        return problem(file.path, `invalid YAML: ${first}`, lines.linePos(pos).line + offset)
      })
    )
  }
  return Either.right({ doc, lines, offset })
}

/** The line of the node at `path` in a parsed YAML document, or of the closest ancestor that exists. */
const lineAt = (y: YamlParsed, path: ReadonlyArray<PropertyKey>): number => {
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? y.doc.contents : y.doc.getIn(path.slice(0, n) as Array<unknown>, true)
    if (isNode(node) && node.range) return y.lines.linePos(node.range[0]).line + y.offset
    // A key whose value is null has no value node: look the pair's key up instead.
    if (n > 0) {
      const parent = n === 1 ? y.doc.contents : y.doc.getIn(path.slice(0, n - 1) as Array<unknown>, true)
      if (isMap(parent)) {
        const pair = parent.items.find((p) => isNode(p.key) && "value" in p.key && p.key.value === path[n - 1])
        if (pair && isNode(pair.key) && pair.key.range) return y.lines.linePos(pair.key.range[0]).line + y.offset
      }
      if (isSeq(parent)) continue
    }
  }
  return 1 + y.offset
}

/** Decodes YAML against a schema, reporting every issue at the line of the offending key. */
export const decodeYaml = <A, I>(
  schema: Schema.Schema<A, I>,
  file: TextFile,
  y: YamlParsed,
  value: unknown = y.doc.toJS({ maxAliasCount: 100 })
): Parsed<A> =>
  Either.mapLeft(Schema.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "error" })(value), (error) =>
    ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) => {
      const field = issue.path.length === 0 ? undefined : issue.path.map(String).join(".")
      return problem(file.path, issue.message, lineAt(y, issue.path), field)
    })
  )

/**
 * Decodes a whole YAML file (agentsync.yaml and the like) against a schema: every problem, of syntax or of
 * schema, with its file:line. An empty file is an empty map.
 */
export const decodeYamlFile = <A, I>(schema: Schema.Schema<A, I>, file: TextFile): Parsed<A> =>
  Either.flatMap(parseYaml(file), (y) =>
    // An optional key that is malformed also fails its `undefined` alternative: that echo says nothing.
    Either.mapLeft(decodeYaml(schema, file, y, y.doc.toJS({ maxAliasCount: 100 }) ?? {}), (all) => {
      const real = all.filter((p) => !p.reason.startsWith("Expected undefined, actual"))
      return joinAlternatives(real.length > 0 ? real : all)
    })
  )

const EXPECTED = /^Expected (.+), actual (.+)$/s

/** A union's members each report the same value at the same key: one problem, the alternatives joined. */
const joinAlternatives = (problems: ReadonlyArray<InvalidInput>): ReadonlyArray<InvalidInput> => {
  const out: Array<InvalidInput> = []
  for (const p of problems) {
    const prev = out.at(-1)
    const [here, there] = [EXPECTED.exec(p.reason), prev === undefined ? null : EXPECTED.exec(prev.reason)]
    if (
      prev !== undefined &&
      here !== null &&
      there !== null &&
      prev.field === p.field &&
      prev.line === p.line &&
      here[2] === there[2]
    ) {
      out[out.length - 1] = problem(
        p.file ?? "",
        `Expected ${there[1]} | ${here[1]}, actual ${here[2]}`,
        p.line,
        p.field
      )
    } else out.push(p)
  }
  return out
}

/** The line of the key at `path` in a YAML text (or of its closest ancestor that exists); 1 when it does not parse. */
export const yamlLine = (text: string, path: ReadonlyArray<PropertyKey>): number =>
  Either.match(parseYaml({ path: "", text }), { onLeft: () => 1, onRight: (y) => lineAt(y, path) })

/** The fields a reader fills in when a file leaves them out. */
const withDefaults = <A extends Record<string, unknown>>(
  value: unknown,
  defaults: (v: Record<string, unknown>) => A
) =>
  typeof value === "object" && value !== null && !Array.isArray(value)
    ? { ...defaults(value as Record<string, unknown>), ...(value as Record<string, unknown>) }
    : value

const collectErrors = (...parts: ReadonlyArray<Parsed<unknown>>): ReadonlyArray<InvalidInput> =>
  parts.flatMap((p) => (Either.isLeft(p) ? p.left : []))

// ---------------------------------------------------------------------------------------------------------
// Open maps of fields: the known ones become columns, the rest is kept in order as `extra`

/** A field agentsync knows: its name, the values that fit its column, and its value when absent. */
interface KnownField {
  readonly key: string
  readonly fits: (v: Json) => boolean
}

// Built once: a Schema guard costs more to make than to run.
const isId = Schema.is(Id)
const isContentPath = Schema.is(ContentPath)
const isText = (v: Json) => typeof v === "string"
const isBool = (v: Json) => typeof v === "boolean"
const isTexts = (v: Json) => Array.isArray(v) && v.every((x) => typeof x === "string")
const isTextOrNull = (v: Json) => v === null || typeof v === "string"
const isMapValue = (v: Json) => typeof v === "object" && v !== null && !Array.isArray(v)
const isIds = (v: Json) => Array.isArray(v) && v.every((x) => typeof x === "string" && isId(x))

/**
 * Splits a map of fields into the known ones whose value fits their column and everything else, in order.
 * A known name holding a value of another shape (an `author` map, a `tags` string) is kept as it is, as extra.
 */
const pick = (
  fields: Fields,
  known: ReadonlyArray<KnownField>
): { known: Record<string, Json>; extra: Record<string, Json> } => {
  const out: Record<string, Json> = {}
  const extra: Record<string, Json> = {}
  const byKey = new Map(known.map((k) => [k.key, k]))
  for (const [key, value] of Object.entries(fields)) {
    const k = byKey.get(key)
    if (k?.fits(value)) out[key] = value
    else extra[key] = value
  }
  return { known: out, extra }
}

/**
 * The map of fields that encodes `wanted` (known values) and `extra`, edited from `base`: a field keeps its
 * place, a changed one gets its new value, a new one goes last. `baseValues` are the known values `base`
 * itself gives (defaults included), so a field left at its default stays absent.
 */
const encode = (
  base: Fields,
  known: ReadonlyArray<KnownField>,
  baseValues: Readonly<Record<string, Json>>,
  wanted: Readonly<Record<string, Json>>,
  baseExtra: Fields,
  extra: Fields
): Fields => {
  const out: Record<string, Json> = { ...base }
  for (const key of Object.keys(baseExtra)) if (!Object.hasOwn(extra, key)) delete out[key]
  for (const [key, value] of Object.entries(extra)) if (!sameJson(baseExtra[key], value, true)) out[key] = value
  for (const { key } of known) if (!sameJson(baseValues[key], wanted[key], true)) out[key] = wanted[key]!
  return out
}

const checkExtra = (path: string, fields: Fields): ReadonlyArray<InvalidInput> =>
  Object.keys(fields).includes("__proto__") ? [problem(path, "a field may not be named __proto__", 1, "__proto__")] : []

/** A Markdown file split and its front matter read. */
const readMarkdown = (
  file: TextFile
): Either.Either<{ split: SplitFile; fields: Fields }, ReadonlyArray<InvalidInput>> =>
  Either.flatMap(
    Either.mapLeft(splitFrontMatter(file.path, file.text), (e) => [e]),
    (split) =>
      Either.flatMap(readFrontMatter(file.path, split), (fields) => {
        const bad = checkExtra(file.path, fields)
        return bad.length > 0 ? Either.left(bad) : Either.right({ split, fields })
      })
  )

/** Writes an item held as (head, body) whose fields may have changed since it was read: only those change. */
const renderMarkdown = (
  head: string,
  body: string,
  read: (fields: Fields, body: string) => { readonly known: Record<string, Json>; readonly extra: Fields },
  known: ReadonlyArray<KnownField>,
  wanted: Record<string, Json>,
  extra: Fields,
  fresh: () => Fields
): string => {
  const split = splitFrontMatter("", head)
  const fields = Either.isRight(split) ? readFrontMatter("", split.right) : undefined
  if (fields === undefined || Either.isLeft(fields) || Either.isLeft(split) || split.right.head !== head)
    return freshHead(fresh()) + body
  const base = read(fields.right, body)
  return (
    patchFrontMatter(split.right, fields.right, encode(fields.right, known, base.known, wanted, base.extra, extra)) +
    body
  )
}

// ---------------------------------------------------------------------------------------------------------
// Agents: agents/<id>/config.yaml + agents/<id>/system_prompt.md, or agents/<id>.md with front matter

const AgentConfig = Schema.Struct({
  id: Id,
  name: Schema.String,
  display_name: Schema.String,
  description: Schema.String,
  enabled: Schema.Boolean,
  tags: Schema.Array(Schema.String),
  settings: Schema.Record({ key: Schema.String, value: Json })
})

const AGENT_FIELDS: ReadonlyArray<KnownField> = [
  { key: "id", fits: isText },
  { key: "name", fits: isText },
  { key: "display_name", fits: isText },
  { key: "description", fits: isText },
  { key: "enabled", fits: isBool },
  { key: "tags", fits: isTexts },
  { key: "settings", fits: isMapValue }
]

/** The files an agent is made of, relative to services/. */
export const agentPaths = (a: Pick<Agent, "id" | "form">): ReadonlyArray<string> =>
  a.form === "file" ? [`agents/${a.id}.md`] : [`agents/${a.id}/config.yaml`, `agents/${a.id}/system_prompt.md`]

/** An agent's known values from its fields (defaults filled). */
const agentValues = (id: string, known: Record<string, Json>): Record<string, Json> => {
  const name = (known["name"] as string | undefined) ?? id
  return {
    id,
    name,
    display_name: known["display_name"] ?? name,
    description: known["description"] ?? "",
    enabled: known["enabled"] ?? true,
    tags: known["tags"] ?? [],
    settings: known["settings"] ?? {}
  }
}

export const parseAgent = (config: TextFile, prompt: TextFile | undefined, dirName?: string): Parsed<Agent> =>
  Either.flatMap(parseYaml(config), (y) => {
    const decoded = decodeYaml(
      AgentConfig,
      config,
      y,
      withDefaults(y.doc.toJS(), (v) => ({
        display_name: v["name"],
        description: "",
        enabled: true,
        tags: [],
        settings: {}
      }))
    )
    return Either.flatMap(decoded, (c) => {
      if (dirName !== undefined && c.id !== dirName) {
        return Either.left([
          problem(
            config.path,
            `id ${JSON.stringify(c.id)} does not match its folder ${JSON.stringify(dirName)}`,
            lineAt(y, ["id"]),
            "id"
          )
        ])
      }
      return Either.right(
        new Agent({ ...c, system_prompt: prompt?.text ?? "", form: "folder", original: config.text, extra: {} })
      )
    })
  })

/** A Claude Code subagent, `agents/<id>.md`: name, description and the rest of its front matter, the prompt below. */
export const parseAgentFile = (file: TextFile, id: string): Parsed<Agent> =>
  Either.flatMap(readMarkdown(file), ({ split, fields }) => {
    if (!isId(id))
      return Either.left([
        problem(file.path, `agent file name ${JSON.stringify(id)} is not a valid id (${ID_RULE})`, 1)
      ])
    const { known, extra } = pick(fields, AGENT_FIELDS.slice(1))
    // Every known value was checked against its column's shape by `pick`: no second validation.
    const v = agentValues(id, known) as Omit<Agent, "system_prompt" | "form" | "original" | "extra">
    return Either.right(new Agent({ ...v, system_prompt: split.body, form: "file", original: split.head, extra }, true))
  })

const agentWanted = (a: Agent): Record<string, Json> => ({
  id: a.id,
  name: a.name,
  display_name: a.display_name,
  description: a.description,
  enabled: a.enabled,
  tags: a.tags,
  settings: a.settings
})

/** An agent's files, relative to services/, each changed only where its fields changed. */
export const renderAgent = (a: Agent): ReadonlyArray<{ readonly path: string; readonly text: string }> => {
  const [first, second] = agentPaths(a)
  if (a.form === "file") {
    const { id: _, ...fresh } = agentWanted(a)
    const text = renderMarkdown(
      a.original ?? "",
      a.system_prompt,
      (fields) => {
        const p = pick(fields, AGENT_FIELDS.slice(1))
        return { known: agentValues(a.id, p.known), extra: p.extra }
      },
      AGENT_FIELDS.slice(1),
      agentWanted(a),
      a.extra,
      () => ({ ...fresh, ...a.extra })
    )
    return [{ path: first!, text }]
  }
  return [
    { path: first!, text: renderConfig(a.original, AGENT_FIELDS, (known) => agentValues(a.id, known), agentWanted(a)) },
    { path: second!, text: a.system_prompt }
  ]
}

/** A config.yaml: the original text with the changed fields edited in place, or every field written fresh. */
const renderConfig = (
  original: string | null,
  known: ReadonlyArray<KnownField>,
  values: (known: Record<string, Json>) => Record<string, Json>,
  wanted: Record<string, Json>
): string => {
  if (original !== null) {
    const fields = readYamlFields("", original)
    if (Either.isRight(fields)) {
      const base = pick(fields.right, known)
      const head = patchFrontMatter(
        { format: "yaml", head: original, inner: original, innerStart: 0 },
        fields.right,
        encode(fields.right, known, values(base.known), wanted, base.extra, base.extra)
      )
      return head
    }
  }
  return renderYaml(wanted)
}

// ---------------------------------------------------------------------------------------------------------
// Skills: skills/<id>/config.yaml + skills/<id>/SKILL.md, or an Agent Skills skills/<id>/SKILL.md alone

const SkillConfig = Schema.Struct({
  id: Id,
  name: Schema.String,
  description: Schema.String,
  enabled: Schema.Boolean,
  tags: Schema.Array(Schema.String),
  category: Schema.String,
  assigned_agents: Schema.Array(Id)
})

const SKILL_FIELDS: ReadonlyArray<KnownField> = [
  { key: "id", fits: isText },
  { key: "name", fits: isText },
  { key: "description", fits: isText },
  { key: "enabled", fits: isBool },
  { key: "tags", fits: isTexts },
  { key: "category", fits: isText },
  { key: "assigned_agents", fits: isIds }
]

export const skillPaths = (s: Pick<Skill, "id" | "form">): ReadonlyArray<string> =>
  s.form === "file" ? [`skills/${s.id}/SKILL.md`] : [`skills/${s.id}/config.yaml`, `skills/${s.id}/SKILL.md`]

const skillValues = (id: string, known: Record<string, Json>): Record<string, Json> => ({
  id,
  name: known["name"] ?? id,
  description: known["description"] ?? "",
  enabled: known["enabled"] ?? true,
  tags: known["tags"] ?? [],
  category: known["category"] ?? "general",
  assigned_agents: known["assigned_agents"] ?? []
})

const skillWanted = (s: Skill): Record<string, Json> => ({
  id: s.id,
  name: s.name,
  description: s.description,
  enabled: s.enabled,
  tags: s.tags,
  category: s.category,
  assigned_agents: s.assigned_agents
})

export const parseSkill = (config: TextFile, instructions: TextFile | undefined, dirName?: string): Parsed<Skill> =>
  Either.flatMap(parseYaml(config), (y) =>
    Either.flatMap(
      decodeYaml(
        SkillConfig,
        config,
        y,
        withDefaults(y.doc.toJS(), () => ({
          description: "",
          enabled: true,
          tags: [],
          category: "general",
          assigned_agents: []
        }))
      ),
      (c) => {
        if (dirName !== undefined && c.id !== dirName) {
          return Either.left([
            problem(
              config.path,
              `id ${JSON.stringify(c.id)} does not match its folder ${JSON.stringify(dirName)}`,
              lineAt(y, ["id"]),
              "id"
            )
          ])
        }
        return Either.right(
          new Skill({ ...c, instructions: instructions?.text ?? "", form: "folder", original: config.text, extra: {} })
        )
      }
    )
  )

/** An Agent Skills folder: `SKILL.md` with `name`, `description` (and any other field) in its front matter. */
export const parseSkillFile = (file: TextFile, id: string): Parsed<Skill> =>
  Either.flatMap(readMarkdown(file), ({ split, fields }) => {
    if (!isId(id))
      return Either.left([
        problem(file.path, `skill folder name ${JSON.stringify(id)} is not a valid id (${ID_RULE})`, 1)
      ])
    const { known, extra } = pick(fields, SKILL_FIELDS.slice(1))
    const v = skillValues(id, known) as Omit<Skill, "instructions" | "form" | "original" | "extra">
    return Either.right(new Skill({ ...v, instructions: split.body, form: "file", original: split.head, extra }, true))
  })

export const renderSkill = (s: Skill): ReadonlyArray<{ readonly path: string; readonly text: string }> => {
  const [first, second] = skillPaths(s)
  if (s.form === "file") {
    const { id: _, ...fresh } = skillWanted(s)
    return [
      {
        path: first!,
        text: renderMarkdown(
          s.original ?? "",
          s.instructions,
          (fields) => {
            const p = pick(fields, SKILL_FIELDS.slice(1))
            return { known: skillValues(s.id, p.known), extra: p.extra }
          },
          SKILL_FIELDS.slice(1),
          skillWanted(s),
          s.extra,
          () => ({ ...fresh, ...s.extra })
        )
      }
    ]
  }
  return [
    { path: first!, text: renderConfig(s.original, SKILL_FIELDS, (known) => skillValues(s.id, known), skillWanted(s)) },
    { path: second!, text: s.instructions }
  ]
}

// ---------------------------------------------------------------------------------------------------------
// Content: any Markdown file below content/<source>/, with front matter in YAML, TOML or JSON, or none

const ID_RULE = "letters, digits, '_', '-', '.'; not starting with '-' or '.'"

const CONTENT_FIELDS: ReadonlyArray<KnownField> = [
  { key: "title", fits: isText },
  { key: "kind", fits: isText },
  { key: "description", fits: isText },
  { key: "author", fits: isText },
  { key: "keywords", fits: isTexts },
  { key: "image", fits: isTextOrNull },
  { key: "public", fits: isBool },
  { key: "tags", fits: isTexts },
  { key: "published_at", fits: isTextOrNull },
  { key: "updated_at", fits: isTextOrNull }
]

/** A content source's settings, `content/<source>/source.yaml`. */
export const SourceConfig = Schema.Struct({
  layout: Schema.optionalWith(Schema.Literal("flat", "directory"), { default: () => "flat" as const }),
  description: Schema.optional(Schema.String)
})
/** A source's settings and the text they were read from. */
export type SourceConfig = typeof SourceConfig.Type & { readonly original: string }

export const sourceConfigPath = (source: string) => `content/${source}/source.yaml`

export const parseSourceConfig = (file: TextFile): Parsed<SourceConfig> =>
  Either.flatMap(parseYaml(file), (y) =>
    Either.map(decodeYaml(SourceConfig, file, y, y.doc.toJS() ?? {}), (c) => ({ ...c, original: file.text }))
  )

/** The file of an item below services/. */
export const contentPath = (c: Pick<Content, "source" | "path">): string => `content/${c.source}/${c.path}`

/** Where a new item (one that never had a file) goes: `<slug>.md`, or `<slug>/index.md` in a directory source. */
export const defaultContentPath = (slug: string, layout: ContentLayout): string =>
  layout === "directory" ? `${slug}/index.md` : `${slug}.md`

/**
 * The slug of a Markdown file below its source: the path without its extension, and for a bundle
 * (`<slug>/index.md`, `<slug>/_index.md`) the folder; undefined for a file that is not Markdown.
 */
export const contentSlug = (path: string): string | undefined => {
  const m = MARKDOWN.exec(path)
  if (m === null) return undefined
  const base = path.slice(0, m.index)
  const slash = base.lastIndexOf("/")
  const name = base.slice(slash + 1)
  return slash > 0 && (name === "index" || name === "_index") ? base.slice(0, slash) : base
}

/** The first ATX heading of a Markdown body outside code fences, as plain text. */
const firstHeading = (body: string): string | undefined => {
  let fence: string | undefined
  for (const line of body.split("\n")) {
    const f = /^ {0,3}(`{3,}|~{3,})/.exec(line)
    if (f) {
      if (fence === undefined) fence = f[1]![0]
      else if (f[1]![0] === fence) fence = undefined
      continue
    }
    if (fence !== undefined) continue
    const h = /^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*\r?$/.exec(line)
    if (h && h[1] !== "") return h[1]
  }
  return undefined
}

/** The title of a file that gives none: its first heading, else its name (a bundle's folder name). */
const derivedTitle = (slug: string, body: string) => firstHeading(body) ?? slug.slice(slug.lastIndexOf("/") + 1)

const contentValues = (slug: string, body: string, known: Record<string, Json>): Record<string, Json> => ({
  title: known["title"] ?? derivedTitle(slug, body),
  kind: known["kind"] ?? "article",
  description: known["description"] ?? "",
  author: known["author"] ?? "",
  keywords: known["keywords"] ?? [],
  image: known["image"] ?? null,
  public: known["public"] ?? true,
  tags: known["tags"] ?? [],
  published_at: known["published_at"] ?? null,
  updated_at: known["updated_at"] ?? null
})

/** Known values and extra fields of front matter; a `slug` equal to the item's own is agentsync's and not extra. */
const readContentFields = (slug: string, fields: Fields, body: string) => {
  const { known, extra } = pick(fields, CONTENT_FIELDS)
  if (extra["slug"] === slug) delete extra["slug"]
  return { known: contentValues(slug, body, known), extra }
}

const contentWanted = (c: Content): Record<string, Json> => ({
  title: c.title,
  kind: c.kind,
  description: c.description,
  author: c.author,
  keywords: c.keywords,
  image: c.image,
  public: c.public,
  tags: c.tags,
  published_at: c.published_at,
  updated_at: c.updated_at
})

/** Parses a content file; `path` is its place below the source folder (`guides/install/index.md`). */
export const parseContent = (file: TextFile, source: string, path: string): Parsed<Content> => {
  const slug = contentSlug(path)
  if (slug === undefined) return Either.left([problem(file.path, "a content item must be a .md or .markdown file", 1)])
  if (!isId(source))
    return Either.left([
      problem(file.path, `source folder ${JSON.stringify(source)} is not a valid name (${ID_RULE})`, 1)
    ])
  if (!isContentPath(path))
    return Either.left([
      problem(file.path, "the file name cannot be stored as a slug (a control character, or a segment '.' or '..')", 1)
    ])
  return Either.map(readMarkdown(file), ({ split, fields }) => {
    const { known, extra } = readContentFields(slug, fields, split.body)
    // Every value was checked against its column's shape by `pick`: no second validation.
    return new Content(
      {
        source,
        slug,
        path,
        format: split.format,
        head: split.head,
        ...(known as ReturnType<typeof contentWanted> as Pick<
          Content,
          | "title"
          | "kind"
          | "description"
          | "author"
          | "keywords"
          | "image"
          | "public"
          | "tags"
          | "published_at"
          | "updated_at"
        >),
        extra,
        body: split.body
      },
      true
    )
  })
}

/** Every field of an item never read from a file, in agentsync's order (the slug too, as agentsync writes it). */
const freshContent = (c: Content): Fields => {
  const { title, ...rest } = contentWanted(c)
  return { title: title ?? c.title, slug: c.slug, ...rest, ...c.extra }
}

/** A content file: its original bytes where the item did not change, else with only the changed fields edited. */
export const renderContent = (c: Content): string =>
  c.head === null
    ? freshHead(freshContent(c)) + c.body
    : renderMarkdown(
        c.head,
        c.body,
        (fields, body) => readContentFields(c.slug, fields, body),
        CONTENT_FIELDS,
        contentWanted(c),
        c.extra,
        () => freshContent(c)
      )

// ---------------------------------------------------------------------------------------------------------
// Access rules: access-control/config.yaml

export const ACCESS_RULES_PATH = "access-control/config.yaml"

const AccessRulesFile = Schema.Struct({ rules: Schema.Array(AccessRule) })

export const parseAccessRules = (file: TextFile): Parsed<ReadonlyArray<AccessRule>> =>
  Either.flatMap(parseYaml(file), (y) =>
    Either.flatMap(decodeYaml(AccessRulesFile, file, y, y.doc.toJS() ?? { rules: [] }), ({ rules }) => {
      const seen = new Map<string, number>()
      const errors: Array<InvalidInput> = []
      rules.forEach((r, i) => {
        const key = accessRuleKey(r)
        const earlier = seen.get(key)
        if (earlier !== undefined) {
          errors.push(
            problem(
              file.path,
              `duplicate rule for ${r.entity_type} ${JSON.stringify(r.entity_id)} (${r.access}); first declared as rules.${earlier}`,
              lineAt(y, ["rules", i]),
              `rules.${i}`
            )
          )
        } else seen.set(key, i)
      })
      return errors.length > 0 ? Either.left(errors) : Either.right(rules)
    })
  )

export const renderAccessRules = (rules: ReadonlyArray<AccessRule>): string =>
  renderYaml({
    rules: rules.map((r) => ({
      entity_type: r.entity_type,
      entity_id: r.entity_id,
      access: r.access,
      roles: r.roles,
      ...(r.justification === undefined ? {} : { justification: r.justification })
    }))
  })

export { collectErrors }
