/** The skill manager's state: `manifest.yaml` (what is wanted) and `lock.yaml` (what was deployed, the three-way base). */
import { Either, ParseResult, Schema } from "effect"
import { isNode, LineCounter, parseDocument, stringify } from "yaml"
import { InvalidInput } from "../../errors.js"
import { linkTargetProblem } from "../model.js"
import { checkGitUrl, checkName, checkRef, checkUnitName, parseSourceUri } from "./guards.js"
import { layoutProblem } from "./layout.js"

const guarded = (check: (s: string) => Either.Either<string, InvalidInput>, id: string) =>
  Schema.String.pipe(
    Schema.filter((s) => Either.match(check(s), { onLeft: (e) => e.reason, onRight: () => true })),
    Schema.annotations({ identifier: id })
  )

export const SourceName = guarded((s) => checkName("source", s), "SourceName")
export const ToolName = guarded((s) => checkName("tool", s), "ToolName")
export const UnitName = guarded(checkUnitName, "UnitName")
export const GitRef = guarded(checkRef, "GitRef")
export const SourceUri = guarded((s) => Either.map(parseSourceUri(s), () => s), "SourceUri")
export const GitUrl = guarded(checkGitUrl, "GitUrl")

/** A path template or glob of a layout mapping: relative, `/`-separated, no `..`. */
const LayoutPath = Schema.String.pipe(
  Schema.filter(
    (p) =>
      p.length > 0 &&
      !p.startsWith("/") &&
      !p.includes("\\") &&
      p.split("/").every((s) => s !== "" && s !== "." && s !== ".."),
    { message: () => "must be a relative path without '..'" }
  )
)

/**
 * One layout rule: a repo file matching `glob` anchors a unit whose root is `repo` in the repo and `home` in a tool
 * home; repo files matching an `exclude` glob are neither anchors nor members of its units.
 */
export const LayoutMapping = Schema.Struct({
  glob: LayoutPath,
  /** The unit's root; `.` is the repository's top folder (a repository that is one skill). */
  repo: Schema.Union(Schema.Literal("."), LayoutPath),
  home: LayoutPath,
  exclude: Schema.optional(Schema.Array(LayoutPath))
})
export type LayoutMapping = typeof LayoutMapping.Type

/** A list of layout rules that compiles: the error points at the rule (and so at its line) that does not. */
export const TargetLayout = Schema.Array(LayoutMapping).pipe(
  Schema.filter((rules) => {
    const problem = layoutProblem(rules)
    return problem === undefined
      ? true
      : {
          path: [problem.index, problem.field],
          message: `${JSON.stringify(problem.value)} ${problem.reason}`
        }
  })
)

export const ManifestSource = Schema.Struct({
  name: SourceName,
  uri: SourceUri,
  ref: Schema.optionalWith(GitRef, { default: () => "main" }),
  enabled: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  read_only: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  /** Empty: the layout is detected from the repository's own markers. */
  target_layout: Schema.optionalWith(TargetLayout, { default: () => [] })
})
export type ManifestSource = typeof ManifestSource.Type

/** Which units of a source go to which tools: `name` is a unit name or a glob over unit names (`*`, `skills/*`). */
export const ManifestUnits = Schema.Struct({
  source: SourceName,
  name: Schema.optionalWith(Schema.String.pipe(Schema.minLength(1)), { default: () => "**" }),
  tools: Schema.Array(ToolName).pipe(Schema.minItems(1))
})
export type ManifestUnits = typeof ManifestUnits.Type

export const Manifest = Schema.Struct({
  version: Schema.optionalWith(Schema.Literal(1), { default: () => 1 as const }),
  sources: Schema.optionalWith(Schema.Array(ManifestSource), { default: () => [] }),
  units: Schema.optionalWith(Schema.Array(ManifestUnits), { default: () => [] })
})
export type Manifest = typeof Manifest.Type

/**
 * What a unit file is, as one string: the SHA-256 of its bytes (of its target, for a symbolic link), then `+x` for
 * an executable file or `+l` for a link. Two files are the same when their digests are equal, mode included.
 */
export const FileDigest = Schema.String.pipe(
  Schema.pattern(/^[0-9a-f]{64}(?:\+[xl])?$/),
  Schema.annotations({ identifier: "FileDigest" })
)

export type FileKind = "file" | "exec" | "link"

export const digestOf = (sha: string, kind: FileKind): string =>
  kind === "file" ? sha : `${sha}+${kind === "exec" ? "x" : "l"}`

export const kindOf = (digest: string): FileKind =>
  digest.endsWith("+x") ? "exec" : digest.endsWith("+l") ? "link" : "file"

/** The SHA-256 part of a digest. */
export const shaOf = (digest: string): string => digest.slice(0, 64)

/** The kind of a file from its git mode (`100755` executable, `120000` link). */
export const kindOfGitMode = (mode: string): FileKind =>
  mode === "100755" ? "exec" : mode === "120000" ? "link" : "file"

/**
 * Why a symbolic link at `rel` (relative to a unit root) pointing at `target` is not part of the unit, or undefined
 * when it is: file sync's rule (`linkTargetProblem`) with the unit as the tree, so a carried link never climbs
 * through another link out of the unit. A single-file unit (`rel` empty) that is a link always leads out.
 */
export const unitLinkProblem = (rel: string, target: string): string | undefined =>
  rel === "" ? `its target ${target} leaves the unit` : linkTargetProblem(rel, target, "the unit")

/** Unit files: a digest by path relative to the unit root (`""` for a single-file unit). */
export const UnitFiles = Schema.Record({ key: Schema.String, value: FileDigest })
export type UnitFiles = typeof UnitFiles.Type

export const LockedDeployment = Schema.Struct({
  commit: Schema.optional(Schema.String),
  files: UnitFiles
})
export type LockedDeployment = typeof LockedDeployment.Type

export const LockedSource = Schema.Struct({
  commit: Schema.optional(Schema.String),
  /** unit → tool → what was deployed there. */
  units: Schema.optionalWith(
    Schema.Record({ key: Schema.String, value: Schema.Record({ key: Schema.String, value: LockedDeployment }) }),
    { default: () => ({}) }
  )
})
export type LockedSource = typeof LockedSource.Type

export const Lock = Schema.Struct({
  version: Schema.optionalWith(Schema.Literal(1), { default: () => 1 as const }),
  sources: Schema.optionalWith(Schema.Record({ key: Schema.String, value: LockedSource }), { default: () => ({}) })
})
export type Lock = typeof Lock.Type

export const emptyManifest: Manifest = { version: 1, sources: [], units: [] }
export const emptyLock: Lock = { version: 1, sources: {} }

/** Parses a state file, reporting the first problem with its file and line. */
const parseState = <A, I>(schema: Schema.Schema<A, I>, file: string, text: string): Either.Either<A, InvalidInput> => {
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true })
  const first = doc.errors[0]
  if (first) {
    return Either.left(
      new InvalidInput({
        file,
        line: lines.linePos(first.pos[0]).line,
        reason: `invalid YAML: ${first.message.split("\n")[0]}`
      })
    )
  }
  const value = doc.toJS({ maxAliasCount: 100 }) ?? {}
  return Either.mapLeft(
    Schema.decodeUnknownEither(schema, { errors: "first", onExcessProperty: "error" })(value),
    (e) => {
      const issue = ParseResult.ArrayFormatter.formatErrorSync(e)[0]
      const path = issue?.path ?? []
      let line = 1
      for (let n = path.length; n >= 0; n--) {
        const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true)
        if (isNode(node) && node.range) {
          line = lines.linePos(node.range[0]).line
          break
        }
      }
      return new InvalidInput({
        file,
        line,
        ...(path.length > 0 ? { field: path.map(String).join(".") } : {}),
        reason: issue?.message ?? e.message
      })
    }
  )
}

export const parseManifest = (file: string, text: string) => parseState(Manifest, file, text)

/** A layout file for `skill source layout`: a YAML list of rules `{glob, repo, home, exclude?}`. */
export const parseLayout = (file: string, text: string) => parseState(TargetLayout, file, text)

/** Layout rules as YAML, in the form `parseLayout` reads. */
export const renderLayout = (rules: ReadonlyArray<LayoutMapping>): string =>
  render(Schema.encodeSync(Schema.Array(LayoutMapping))(rules))

/**
 * The lock is written as JSON (which is YAML) so that thousands of entries parse in milliseconds; anything else,
 * or anything invalid, goes through the YAML parser, which names the line.
 */
export const parseLock = (file: string, text: string): Either.Either<Lock, InvalidInput> => {
  const body = text.replace(/^(?:[ \t]*#[^\n]*\n|[ \t]*\n)*/, "")
  if (body.startsWith("{")) {
    let value: unknown
    try {
      value = JSON.parse(body)
    } catch {
      return parseState(Lock, file, text)
    }
    if (isLockShaped(value)) return Either.right(value)
  }
  return parseState(Lock, file, text)
}

const SHA = /^[0-9a-f]{64}(?:\+[xl])?$/
const isObject = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)
const only = (o: Record<string, unknown>, keys: ReadonlyArray<string>) => Object.keys(o).every((k) => keys.includes(k))

/**
 * The `Lock` schema's rules as a plain check, for the fast path over thousands of entries (the schema decode costs
 * ten times the JSON parse); whatever it refuses is decoded again by the schema for a precise message.
 */
const isLockShaped = (u: unknown): u is Lock => {
  if (!isObject(u) || u["version"] !== 1 || !only(u, ["version", "sources"]) || !isObject(u["sources"])) return false
  for (const src of Object.values(u["sources"])) {
    if (!isObject(src) || !only(src, ["commit", "units"]) || !isObject(src["units"])) return false
    if (src["commit"] !== undefined && typeof src["commit"] !== "string") return false
    for (const perTool of Object.values(src["units"])) {
      if (!isObject(perTool)) return false
      for (const d of Object.values(perTool)) {
        if (!isObject(d) || !only(d, ["commit", "files"]) || !isObject(d["files"])) return false
        if (d["commit"] !== undefined && typeof d["commit"] !== "string") return false
        for (const h of Object.values(d["files"])) if (typeof h !== "string" || !SHA.test(h)) return false
      }
    }
  }
  return true
}

const render = (value: unknown) => stringify(value, { lineWidth: 0, indent: 2, aliasDuplicateObjects: false })

export const renderManifest = (m: Manifest): string =>
  `# agentsync skill manifest: sources and which units go to which tools\n${render(Schema.encodeSync(Manifest)(m))}`

export const renderLock = (l: Lock): string =>
  `# agentsync skill lock: written by agentsync, the base of every three-way decision; do not edit\n${JSON.stringify(Schema.encodeSync(Lock)(l), null, 1)}\n`
