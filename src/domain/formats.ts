/** Disk formats of a project's `services/` tree: parse and render each kind, with file:line errors. */
import { Either, ParseResult, Schema } from "effect"
import { type Document, isMap, isNode, isSeq, LineCounter, parseDocument, stringify } from "yaml"
import { InvalidInput } from "../errors.js"
import { fastParseYaml, fastRenderYaml } from "./fastYaml.js"
import { AccessRule, Agent, Content, type ContentLayout, Id, IsoDate, Json, Skill } from "./model.js"

/** A parse either gives the value or every problem it found, each with its file and line. */
export type Parsed<A> = Either.Either<A, ReadonlyArray<InvalidInput>>

/** A text file as read from disk, its path relative to the project for messages. */
export interface TextFile {
  readonly path: string
  readonly text: string
}

const problem = (file: string, reason: string, line?: number, field?: string): InvalidInput =>
  new InvalidInput({
    file,
    reason,
    ...(line === undefined ? {} : { line }),
    ...(field === undefined ? {} : { field })
  })

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
  Either.mapLeft(
    Schema.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "error" })(value),
    (error) =>
      ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) => {
        const field = issue.path.length === 0 ? undefined : issue.path.map(String).join(".")
        return problem(file.path, issue.message, lineAt(y, issue.path), field)
      })
  )

/** The fast renderer where the value is in its subset (byte-identical, see fastYaml.ts), else the library. */
const renderYaml = (value: unknown): string =>
  (typeof value === "object" && value !== null && !Array.isArray(value)
    ? fastRenderYaml(value as Record<string, string | boolean | null | ReadonlyArray<string>>)
    : undefined) ??
  stringify(value, { lineWidth: 0, minContentWidth: 0, indent: 2, aliasDuplicateObjects: false, blockQuote: false })

/** The fields a reader fills in when a file leaves them out. */
const withDefaults = <A extends Record<string, unknown>>(value: unknown, defaults: (v: Record<string, unknown>) => A) =>
  typeof value === "object" && value !== null && !Array.isArray(value)
    ? { ...defaults(value as Record<string, unknown>), ...(value as Record<string, unknown>) }
    : value

const collectErrors = (...parts: ReadonlyArray<Parsed<unknown>>): ReadonlyArray<InvalidInput> =>
  parts.flatMap((p) => (Either.isLeft(p) ? p.left : []))

// ---------------------------------------------------------------------------------------------------------
// Agents: agents/<id>/config.yaml + agents/<id>/system_prompt.md

const AgentConfig = Schema.Struct({
  id: Id,
  name: Schema.String,
  display_name: Schema.String,
  description: Schema.String,
  enabled: Schema.Boolean,
  tags: Schema.Array(Schema.String),
  settings: Schema.Record({ key: Schema.String, value: Json })
})

export const agentPaths = (id: string) => ({
  config: `agents/${id}/config.yaml`,
  prompt: `agents/${id}/system_prompt.md`
})

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
        return Either.left([problem(config.path, `id ${JSON.stringify(c.id)} does not match its folder ${JSON.stringify(dirName)}`, lineAt(y, ["id"]), "id")])
      }
      return Either.right(new Agent({ ...c, system_prompt: prompt?.text ?? "" }))
    })
  })

export const renderAgent = (a: Agent): { readonly config: string; readonly prompt: string } => ({
  config: renderYaml({
    id: a.id,
    name: a.name,
    display_name: a.display_name,
    description: a.description,
    enabled: a.enabled,
    tags: a.tags,
    settings: a.settings
  }),
  prompt: a.system_prompt
})

// ---------------------------------------------------------------------------------------------------------
// Skills: skills/<id>/config.yaml + skills/<id>/SKILL.md

const SkillConfig = Schema.Struct({
  id: Id,
  name: Schema.String,
  description: Schema.String,
  enabled: Schema.Boolean,
  tags: Schema.Array(Schema.String),
  category: Schema.String,
  assigned_agents: Schema.Array(Id)
})

export const skillPaths = (id: string) => ({
  config: `skills/${id}/config.yaml`,
  instructions: `skills/${id}/SKILL.md`
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
          return Either.left([problem(config.path, `id ${JSON.stringify(c.id)} does not match its folder ${JSON.stringify(dirName)}`, lineAt(y, ["id"]), "id")])
        }
        return Either.right(new Skill({ ...c, instructions: instructions?.text ?? "" }))
      }
    )
  )

export const renderSkill = (s: Skill): { readonly config: string; readonly instructions: string } => ({
  config: renderYaml({
    id: s.id,
    name: s.name,
    description: s.description,
    enabled: s.enabled,
    tags: s.tags,
    category: s.category,
    assigned_agents: s.assigned_agents
  }),
  instructions: s.instructions
})

// ---------------------------------------------------------------------------------------------------------
// Content: content/<source>/<slug>.md, or content/<source>/<slug>/index.md for a `layout: directory` source

const FrontMatter = Schema.Struct({
  title: Schema.String,
  slug: Id,
  kind: Schema.String,
  description: Schema.String,
  author: Schema.String,
  keywords: Schema.Array(Schema.String),
  image: Schema.NullOr(Schema.String),
  public: Schema.Boolean,
  tags: Schema.Array(Schema.String),
  published_at: Schema.NullOr(IsoDate),
  updated_at: Schema.NullOr(IsoDate)
})

/** A content source's settings, `content/<source>/source.yaml`. */
export const SourceConfig = Schema.Struct({
  layout: Schema.optionalWith(Schema.Literal("flat", "directory"), { default: () => "flat" as const }),
  description: Schema.optional(Schema.String)
})
export type SourceConfig = typeof SourceConfig.Type

export const sourceConfigPath = (source: string) => `content/${source}/source.yaml`

export const parseSourceConfig = (file: TextFile): Parsed<SourceConfig> =>
  Either.flatMap(parseYaml(file), (y) => decodeYaml(SourceConfig, file, y, y.doc.toJS() ?? {}))

export const contentPath = (source: string, slug: string, layout: ContentLayout): string =>
  layout === "directory" ? `content/${source}/${slug}/index.md` : `content/${source}/${slug}.md`

const FENCE = "---"

/** Splits `---\n<yaml>---\n<body>`; one blank line after the closing fence belongs to the format. */
const splitFrontMatter = (file: TextFile): Either.Either<{ yaml: string; body: string }, ReadonlyArray<InvalidInput>> => {
  const text = file.text.startsWith("\uFEFF") ? file.text.slice(1) : file.text
  const firstEnd = text.indexOf("\n")
  const first = (firstEnd === -1 ? text : text.slice(0, firstEnd)).replace(/\r$/, "")
  if (first !== FENCE) return Either.left([problem(file.path, "content must start with a '---' front matter line", 1)])
  let pos = firstEnd + 1
  while (firstEnd !== -1 && pos <= text.length) {
    const end = text.indexOf("\n", pos)
    const line = (end === -1 ? text.slice(pos) : text.slice(pos, end)).replace(/\r$/, "")
    if (line === FENCE) {
      const yaml = text.slice(firstEnd + 1, pos)
      let body = end === -1 ? "" : text.slice(end + 1)
      if (body.startsWith("\r\n")) body = body.slice(2)
      else if (body.startsWith("\n")) body = body.slice(1)
      return Either.right({ yaml, body })
    }
    if (end === -1) break
    pos = end + 1
  }
  return Either.left([problem(file.path, "front matter opened here is never closed (no closing '---' line)", 1)])
}

const frontMatterDefaults = (slug: string) => () => ({
  slug,
  kind: "article",
  description: "",
  author: "",
  keywords: [],
  image: null,
  public: true,
  tags: [],
  published_at: null,
  updated_at: null
})

const decodeFrontMatter = Schema.decodeUnknownEither(FrontMatter, { errors: "all", onExcessProperty: "error" })
const isId = Schema.is(Id)

/**
 * The common case: front matter in the flat subset agentsync writes, valid, agreeing with the path. Anything
 * else returns undefined and goes through the full parser, whose errors carry their lines.
 */
const parseContentFast = (yaml: string, body: string, source: string, slug: string): Content | undefined => {
  const value = fastParseYaml(yaml)
  if (value === undefined) return undefined
  const fm = decodeFrontMatter(withDefaults(value, frontMatterDefaults(slug)))
  if (Either.isLeft(fm) || fm.right.slug !== slug || !isId(source)) return undefined
  // Every field was just decoded with the schema of its Content field: no second validation.
  return new Content({ ...fm.right, source, body }, true)
}

/** Parses a content file; `source` and `slug` come from its path and must agree with the front matter. */
export const parseContent = (file: TextFile, source: string, slug: string): Parsed<Content> =>
  Either.flatMap(splitFrontMatter(file), ({ yaml, body }) => {
    const fast = parseContentFast(yaml, body, source, slug)
    if (fast !== undefined) return Either.right(fast)
    return Either.flatMap(parseYaml({ path: file.path, text: yaml }, 1), (y) =>
      Either.flatMap(decodeYaml(FrontMatter, file, y, withDefaults(y.doc.toJS(), frontMatterDefaults(slug))), (fm) => {
        if (fm.slug !== slug) {
          return Either.left([problem(file.path, `slug ${JSON.stringify(fm.slug)} does not match the file name ${JSON.stringify(slug)}`, lineAt(y, ["slug"]), "slug")])
        }
        if (!isId(source)) {
          return Either.left([problem(file.path, `source folder ${JSON.stringify(source)} is not a valid id`, 1)])
        }
        return Either.right(new Content({ ...fm, source, body }, true))
      })
    )
  })

export const renderContent = (c: Content): string =>
  `${FENCE}\n${renderYaml({
    title: c.title,
    slug: c.slug,
    kind: c.kind,
    description: c.description,
    author: c.author,
    keywords: c.keywords,
    image: c.image,
    public: c.public,
    tags: c.tags,
    published_at: c.published_at,
    updated_at: c.updated_at
  })}${FENCE}\n\n${c.body}`

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
        const key = `${r.entity_type}:${r.entity_id}:${r.access}`
        const earlier = seen.get(key)
        if (earlier !== undefined) {
          errors.push(
            problem(file.path, `duplicate rule for ${r.entity_type} ${JSON.stringify(r.entity_id)} (${r.access}); first declared as rules.${earlier}`, lineAt(y, ["rules", i]), `rules.${i}`)
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
