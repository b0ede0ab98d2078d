/** Content: any Markdown or MDX file below content/<source>/, with front matter in YAML, TOML or JSON, or none. */
import { Either, Schema } from "effect"
import { freshHead, sameJson } from "../frontMatter/render.js"
import { codeFenceOf, type Fields, problem } from "../frontMatter/split.js"
import { Content, type ContentLayout, type Json, MARKDOWN, MDX } from "../model.js"
import { groups } from "../text.js"
import {
  ID_RULE,
  isBool,
  isContentPath,
  isId,
  isText,
  isTextOrNull,
  isTexts,
  type KnownField,
  pick,
  readMarkdown,
  renderMarkdown
} from "./fields.js"
import { decodeYaml, type Parsed, parseYaml, type TextFile } from "./yaml.js"

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

/**
 * Where a new item (one that never had a file) goes: `<slug>.md`, or `<slug>/index.md` in a directory source.
 * Always `.md`, even in a source of MDX pages: every site generator reads it, and text typed without JSX in mind
 * (`a < b`, `{x}`) can fail to compile as MDX.
 */
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
    const f = groups(/^ {0,3}(`{3,}|~{3,})/, line, 1)
    if (f) {
      const mark = f[0].charAt(0)
      if (fence === undefined) fence = mark
      else if (mark === fence) fence = undefined
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

/** A content item's known front-matter fields by name: what its file states, and its row keeps beside place and body. */
export const contentKnownFields = (c: Content) => ({
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

const contentWanted = (c: Content): Record<string, Json> => contentKnownFields(c)

/** Parses a content file; `path` is its place below the source folder (`guides/install/index.md`). */
export const parseContent = (file: TextFile, source: string, path: string): Parsed<Content> => {
  const slug = contentSlug(path)
  if (slug === undefined)
    return Either.left([problem(file.path, "a content item must be a .md, .markdown or .mdx file", 1)])
  if (!isId(source))
    return Either.left([
      problem(file.path, `source folder ${JSON.stringify(source)} is not a valid name (${ID_RULE})`, 1)
    ])
  if (!isContentPath(path))
    return Either.left([
      problem(file.path, "the file name cannot be stored as a slug (a control character, or a segment '.' or '..')", 1)
    ])
  return Either.map(readMarkdown(file, !MDX.test(path)), ({ split, fields }) => {
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

/**
 * Why `text` (what `renderContent` gave for `c`) cannot be written: a page whose front matter is code (`---js`)
 * is body as a whole, and an edit of its fields would put YAML front matter above the code, which Eleventy would
 * then read instead. A body-only page whose first text is an opener that does not read (never closed, not a map)
 * is not such a page: a block at its first byte is what every generator reads. Undefined when the text is the
 * page as read, or the page has no code block.
 */
export const unwritableContent = (c: Content, text: string): string | undefined => {
  const code = c.format === "none" ? codeFenceOf(c.body) : undefined
  return code === undefined || text === (c.head ?? "") + c.body
    ? undefined
    : `${contentPath(c)}:${code.line}: front matter in ${code.language} cannot be written from the database; the file is left as it is`
}

/**
 * Why an item's edit, which `renderContent` could not write, is refused: no text in the format of its front matter
 * reads back as its fields (TOML holds no null, say), and front matter in another format would change how every
 * generator reads the page.
 */
export const uneditable = (c: Content): string =>
  `${contentPath(c)}:1: this edit of its ${c.format.toUpperCase()} front matter cannot be written from the database (no text in that format reads back as the database's fields); the file is left as it is`

/** Whether a text starts with a blank Hugo skips before front matter (space, tab, CR, LF; not VT or FF). */
const BLANK_FIRST = /^[\t\n\r ]/

/**
 * A row as this version reads its page. Earlier versions read a page whose front matter follows blank lines as
 * body as a whole: such a row has no front matter, and the block in its body. Read now, the blank lines and the
 * block are its head, its fields come from the block; what the row changed in the database under the old reading
 * (a known field whose value is not the one that reading gave it, any extra field: it had none) is kept as the
 * change it was, so the row renders as its page with that change edited in place, never with a block above it.
 * Any other item is returned as it is.
 */
export const asReadNow = (c: Content): Content => {
  if (c.format !== "none" || c.head === null || !BLANK_FIRST.test(c.body)) return c
  const read = readMarkdown({ path: contentPath(c), text: c.head + c.body }, !MDX.test(c.path))
  if (Either.isLeft(read) || read.right.split.format === "none") return c
  const { split, fields } = read.right
  const was = readContentFields(c.slug, {}, c.body).known
  const now = readContentFields(c.slug, fields, split.body)
  const row: Record<string, Json> = contentKnownFields(c)
  const known = Object.fromEntries(
    CONTENT_FIELDS.map(({ key }) => [key, sameJson(row[key], was[key], true) ? now.known[key] : row[key]])
  )
  return new Content(
    {
      ...c,
      format: split.format,
      head: split.head,
      ...(known as ReturnType<typeof contentKnownFields>),
      extra: { ...now.extra, ...c.extra },
      body: split.body
    },
    true
  )
}

/**
 * A content file: its original bytes where the item did not change, else with only the changed fields edited.
 * Undefined when the change cannot be written in the format of the page's front matter (see `uneditable`).
 */
export const renderContent = (c: Content): string | undefined =>
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
