/** Guards for everything that reaches git or the file system from user input: names, refs, URLs, source URIs. */
import { Either } from "effect"
import { InvalidInput } from "../../errors.js"
import { groups } from "../text.js"

const refuse = (field: string, value: string, why: string) =>
  Either.left(new InvalidInput({ field, reason: `${JSON.stringify(value)} refused: ${why}` }))

// Control characters (newline included) never belong in a name, a ref or a URL: they break argv and logs.
// biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to find them
const CONTROL = /[\u0000-\u001f\u007f]/

const common = (field: string, value: string): Either.Either<string, InvalidInput> => {
  if (value.length === 0) return refuse(field, value, "empty")
  if (value.length > 512) return refuse(field, value.slice(0, 40), "longer than 512 characters")
  if (value.startsWith("-")) return refuse(field, value, "starts with '-' (it would be read as an option)")
  if (CONTROL.test(value)) return refuse(field, value, "contains a control character or newline")
  if (value.includes("..")) return refuse(field, value, "contains '..'")
  return Either.right(value)
}

const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._+@-]*$/

/** A source or tool name: one path segment, letters, digits, `._+@-`, not starting with `-` or `.`. */
export const checkName = (field: string, value: string): Either.Either<string, InvalidInput> =>
  Either.flatMap(common(field, value), (v) =>
    v.includes("/") || v.includes("\\")
      ? refuse(field, v, "contains a path separator")
      : SEGMENT.test(v)
        ? Either.right(v)
        : refuse(field, v, "only letters, digits and . _ + @ - are allowed")
  )

/** A unit name: `/`-separated segments (`skills/foo`, `agents/group/bar`), each a safe name. */
export const checkUnitName = (value: string): Either.Either<string, InvalidInput> =>
  Either.flatMap(common("unit", value), (v) => {
    if (v.includes("\\")) return refuse("unit", v, "contains a backslash")
    const segments = v.split("/")
    return segments.every((s) => SEGMENT.test(s))
      ? Either.right(v)
      : refuse("unit", v, "has an empty or unsafe path segment")
  })

/** A git ref (branch, tag or commit): the rules of `git check-ref-format`, plus no leading `-`. */
export const checkRef = (value: string): Either.Either<string, InvalidInput> =>
  Either.flatMap(common("ref", value), (v) => {
    if (/[\s~^:?*[\\]/.test(v)) return refuse("ref", v, "contains a space or one of ~ ^ : ? * [ \\")
    if (v.includes("@{") || v === "@") return refuse("ref", v, "contains '@{'")
    if (v.startsWith("/") || v.endsWith("/") || v.includes("//")) return refuse("ref", v, "has an empty path component")
    if (v.endsWith(".") || v.endsWith(".lock")) return refuse("ref", v, "ends with '.' or '.lock'")
    if (v.split("/").some((s) => s.startsWith("."))) return refuse("ref", v, "has a component starting with '.'")
    return Either.right(v)
  })

/** git's scp-like remote, `user@host:path` (the path relative to the user's home, or absolute). */
export const SCP_LIKE = /^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:./

/** A git remote URL: https/http/ssh/git/file URLs, scp-like `user@host:path`, or an absolute path; never `ext::`. */
export const checkGitUrl = (value: string): Either.Either<string, InvalidInput> =>
  Either.flatMap(common("url", value), (v) => {
    if (/\s/.test(v)) return refuse("url", v, "contains whitespace")
    if (/^[A-Za-z][A-Za-z0-9+.-]*::/.test(v))
      return refuse("url", v, "transport helpers (<transport>::) are not allowed")
    const scheme = groups(/^([A-Za-z][A-Za-z0-9+.-]*):\/\//, v, 1)
    if (scheme) {
      const s = scheme[0].toLowerCase()
      return ["https", "http", "ssh", "git", "file"].includes(s)
        ? Either.right(v)
        : refuse("url", v, `scheme ${s} is not allowed (https, http, ssh, git, file)`)
    }
    if (v.startsWith("/")) return Either.right(v)
    if (SCP_LIKE.test(v)) return Either.right(v)
    return refuse("url", v, "not an absolute path or a https/ssh/git/file URL")
  })

/** Where a source's units come from. */
export type SourceLocation =
  | { readonly _tag: "Git"; readonly url: string }
  | { readonly _tag: "Local"; readonly path: string }

/**
 * Parses a source URI: `gh:owner/repo` (GitHub over https), `git:<url or absolute path>`, `local:<absolute path>`.
 * Relative paths are resolved by the caller before this check, so that the stored URI means one place.
 */
export const parseSourceUri = (uri: string): Either.Either<SourceLocation, InvalidInput> => {
  const colon = uri.indexOf(":")
  const scheme = colon < 0 ? "" : uri.slice(0, colon)
  const rest = colon < 0 ? uri : uri.slice(colon + 1)
  switch (scheme) {
    case "gh": {
      const m = /^([A-Za-z0-9][A-Za-z0-9-]*)\/([A-Za-z0-9._-]+?)(?:\.git)?$/.exec(rest)
      if (!m || rest.includes("..")) return refuse("uri", uri, "expected gh:owner/repo")
      return Either.right({ _tag: "Git", url: `https://github.com/${m[1]}/${m[2]}.git` })
    }
    case "git":
      return Either.map(checkGitUrl(rest), (url) => ({ _tag: "Git" as const, url }))
    case "local":
      return Either.flatMap(common("uri", rest), (p) =>
        p.startsWith("/")
          ? Either.right({ _tag: "Local" as const, path: p.replace(/\/+$/, "") || "/" })
          : refuse("uri", uri, "local: needs an absolute path")
      )
    default:
      return refuse(
        "uri",
        uri,
        "expected gh:owner/repo, git:<url>, local:<path> or a git URL (https://, ssh://, user@host:path)"
      )
  }
}

/** A default source name from its URI: the last path segment without `.git`. */
export const defaultSourceName = (uri: string): string => {
  const last =
    uri
      .replace(/[/\\]+$/, "")
      .split(/[/:\\]/)
      .pop() ?? "source"
  const base = last
    .replace(/\.git$/, "")
    .replace(/[^A-Za-z0-9._+@-]/g, "-")
    .replace(/^[-.]+/, "")
  return base === "" ? "source" : base
}
