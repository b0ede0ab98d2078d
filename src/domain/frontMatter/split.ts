/** Front matter as real sites write it (YAML `---`, TOML `+++`, JSON `{…}`, a named fence such as `---json`, or none): a file split into head and body. */
// A file is `head + body`. The head is every byte before the body (BOM, blank lines before the opening fence,
// fences, the front matter, one blank line after the closing fence); it is kept as read, so an item whose fields
// did not change is written back byte for byte.
import { Either } from "effect"
import { InvalidInput } from "../../errors.js"
import type { Json } from "../model.js"
import { groups } from "../text.js"

export type FrontMatterFormat = "yaml" | "toml" | "json" | "none"

/** An ordered map of front-matter fields. */
export type Fields = { readonly [key: string]: Json }

export interface SplitFile {
  readonly format: FrontMatterFormat
  /** Every byte before the body; "" when the file has no front matter (and no BOM). */
  readonly head: string
  /** The front matter's own text: between the fences, or the JSON object. */
  readonly inner: string
  /** Where `inner` starts in `head`, and on which line of the file (1-based). */
  readonly innerStart: number
  readonly innerLine: number
  readonly body: string
}

/** A problem of a file, at a line and a field where known. */
export const problem = (file: string, reason: string, line?: number, field?: string): InvalidInput =>
  new InvalidInput({
    file,
    reason,
    ...(line === undefined ? {} : { line }),
    ...(field === undefined ? {} : { field })
  })

type Fence = { readonly format: Exclude<FrontMatterFormat, "none">; readonly close: ReadonlyArray<string> }

const FENCES: Record<string, Fence> = {
  "---": { format: "yaml", close: ["---", "..."] },
  "+++": { format: "toml", close: ["+++"] }
}

// gray-matter (Eleventy, Docusaurus) names the language after the opening dashes (`---json`, `---toml`), closed
// by `---`. Only the languages read as data here; `---js` is code, and such a page stays body as a whole.
const LANGUAGES: Record<string, Fence["format"]> = { yaml: "yaml", yml: "yaml", json: "json", toml: "toml" }

/** The language named after the opening dashes of a (bare) first line, as written. */
const languageOf = (line: string) => groups(/^---[ \t]*([A-Za-z]+)$/, line, 1)?.[0]

/** The fence a first line opens, if any. */
const fenceOf = (line: string): Fence | undefined => {
  const fence = FENCES[line]
  if (fence !== undefined) return fence
  const language = LANGUAGES[languageOf(line)?.toLowerCase() ?? ""]
  return language === undefined ? undefined : { format: language, close: ["---"] }
}

/**
 * Where a page's first text starts: past a BOM and the blanks Hugo's page lexer skips before front matter
 * (`lexIntroSection`: `isSpace`, space and tab, and `isEndOfLine`, CR and LF). A VT or FF is text: it ends the
 * intro, and Hugo then reads no front matter. Front matter opens there, not only at the first byte.
 */
export const firstText = (text: string): number => {
  let i = text.startsWith("\uFEFF") ? 1 : 0
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c !== 32 && c !== 9 && c !== 10 && c !== 13) break
  }
  return i
}

/** The line of `offset` in `text`, 1-based. */
export const lineOf = (text: string, offset: number) => {
  let line = 1
  for (let i = text.indexOf("\n"); i !== -1 && i < offset; i = text.indexOf("\n", i + 1)) line++
  return line
}

/**
 * The language a page's first text names when it is one not read as data (`---js`, `---coffee`), and its line:
 * such front matter is code, kept as body; gray-matter (Eleventy) runs it, so front matter written above it
 * would be wrong.
 */
export const codeFenceOf = (text: string): { readonly language: string; readonly line: number } | undefined => {
  const start = firstText(text)
  const name = languageOf(bare(text.slice(start, lineEnd(text, start))))
  return name === undefined || LANGUAGES[name.toLowerCase()] !== undefined
    ? undefined
    : { language: name, line: lineOf(text, start) }
}

/** A line without its end and trailing blanks (Jekyll accepts `--- ` as a fence). */
const bare = (line: string) => line.replace(/[ \t\r\n]+$/, "")

/** The end of the line starting at `pos`, past its newline (or the end of the text). */
export const lineEnd = (text: string, pos: number) => {
  const nl = text.indexOf("\n", pos)
  return nl === -1 ? text.length : nl + 1
}

/** The line break a text is written with: that of its first line (CRLF in a file from Windows). */
export const lineBreakOf = (text: string): "\r\n" | "\n" => {
  const nl = text.indexOf("\n")
  return nl > 0 && text[nl - 1] === "\r" ? "\r\n" : "\n"
}

/** One blank line after the front matter belongs to the head, so the body starts where the writer's text does. */
const withBlankLine = (text: string, pos: number) =>
  text.startsWith("\r\n", pos) ? pos + 2 : text.startsWith("\n", pos) ? pos + 1 : pos

/** The end of a JSON object starting at `start` (after its `}`), or -1 when it never closes. */
const jsonObjectEnd = (text: string, start: number): number => {
  let depth = 0
  let inString = false
  for (let i = start; i < text.length; i++) {
    const c = text[i]
    if (inString) {
      if (c === "\\") i++
      else if (c === '"') inString = false
    } else if (c === '"') inString = true
    else if (c === "{" || c === "[") depth++
    else if (c === "}" || c === "]") {
      depth--
      if (depth === 0) return i + 1
    }
  }
  return -1
}

/**
 * Whether the text at `pos` opens a template tag (`{% include %}`, `{{ page.title }}`, `{# note #}` in Eleventy,
 * Jekyll or Hugo): body text, never JSON. Any other leading brace is read as a JSON object, and refused at its
 * line when it is not one.
 */
const opensTemplateTag = (text: string, pos: number) => /^\{[%{#]/.test(text.slice(pos, pos + 2))

/** A page read as having no front matter: body as a whole, after its BOM. */
export const bodyOnly = (text: string): SplitFile => {
  const bom = text.startsWith("\uFEFF") ? 1 : 0
  return { format: "none", head: text.slice(0, bom), inner: "", innerStart: bom, innerLine: 1, body: text.slice(bom) }
}

/**
 * Whether a page's opener (fence or brace) comes after blanks, not at its first byte (after a BOM). Such a block
 * is front matter only when it closes and reads as a map of fields: Hugo fails on any other, and Jekyll and
 * gray-matter read the page as body, as earlier versions did; so it is body, never an error.
 */
export const opensAfterBlanks = (text: string) => firstText(text) > (text.startsWith("\uFEFF") ? 1 : 0)

/**
 * Splits a Markdown file into its head (front matter in whichever format) and its body. Front matter opens at
 * the page's first text: blank lines (and blanks) before the opening fence or brace are the head's, as Hugo
 * reads such a page, and kept byte for byte; such an opener never closed makes the page body, as it was read
 * before (`opensAfterBlanks`), where one at the first byte is refused at its line. Without `json` (an MDX page, where a leading `{` is an expression
 * such as `{/* comment *\/}`), a leading brace is body text.
 */
export const splitFrontMatter = (path: string, text: string, json = true): Either.Either<SplitFile, InvalidInput> => {
  const bom = text.startsWith("\uFEFF") ? 1 : 0
  const start = firstText(text)
  const line = lineOf(text, start)
  const firstEnd = lineEnd(text, start)
  const fence = fenceOf(bare(text.slice(start, firstEnd)))
  if (fence !== undefined) {
    let pos = firstEnd
    while (pos < text.length) {
      const end = lineEnd(text, pos)
      if (fence.close.includes(bare(text.slice(pos, end)))) {
        const headEnd = withBlankLine(text, end)
        return Either.right({
          format: fence.format,
          head: text.slice(0, headEnd),
          inner: text.slice(firstEnd, pos),
          innerStart: firstEnd,
          innerLine: line + 1,
          body: text.slice(headEnd)
        })
      }
      pos = end
    }
    return start > bom
      ? Either.right(bodyOnly(text))
      : Either.left(problem(path, `front matter opened here is never closed (no closing '${fence.close[0]}' line)`, 1))
  }
  if (json && text[start] === "{" && !opensTemplateTag(text, start)) {
    const close = jsonObjectEnd(text, start)
    if (close === -1)
      return start > bom
        ? Either.right(bodyOnly(text))
        : Either.left(problem(path, "JSON front matter opened here is never closed (no matching '}')", 1))
    const headEnd = withBlankLine(text, lineEnd(text, close))
    return Either.right({
      format: "json",
      head: text.slice(0, headEnd),
      inner: text.slice(start, close),
      innerStart: start,
      innerLine: line,
      body: text.slice(headEnd)
    })
  }
  return Either.right(bodyOnly(text))
}
