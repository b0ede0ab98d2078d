/** The skill manager's state: `manifest.yaml` (what is wanted) and `lock.yaml` (what was deployed, the three-way base). */
import { Either, ParseResult, Schema } from "effect"
import { isNode, LineCounter, parseDocument, stringify } from "yaml"
import { InvalidInput } from "../../errors.js"
import { Sha256 } from "../model.js"
import { checkGitUrl, checkName, checkRef, checkUnitName, parseSourceUri } from "./guards.js"

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
      p.length > 0 && !p.startsWith("/") && !p.includes("\\") && p.split("/").every((s) => s !== "" && s !== "." && s !== ".."),
    { message: () => "must be a relative path without '..'" }
  )
)

/** One layout rule: a repo file matching `glob` anchors a unit whose root is `repo` in the repo and `home` in a tool home. */
export const LayoutMapping = Schema.Struct({ glob: LayoutPath, home: LayoutPath, repo: LayoutPath })
export type LayoutMapping = typeof LayoutMapping.Type

export const ManifestSource = Schema.Struct({
  name: SourceName,
  uri: SourceUri,
  ref: Schema.optionalWith(GitRef, { default: () => "main" }),
  enabled: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  read_only: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  target_layout: Schema.optionalWith(Schema.Array(LayoutMapping), { default: () => [] })
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

/** Unit files: SHA-256 by path relative to the unit root (`""` for a single-file unit). */
export const UnitFiles = Schema.Record({ key: Schema.String, value: Sha256 })
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
      new InvalidInput({ file, line: lines.linePos(first.pos[0]).line, reason: `invalid YAML: ${first.message.split("\n")[0]}` })
    )
  }
  const value = doc.toJS({ maxAliasCount: 100 }) ?? {}
  return Either.mapLeft(Schema.decodeUnknownEither(schema, { errors: "first", onExcessProperty: "error" })(value), (e) => {
    const issue = ParseResult.ArrayFormatter.formatErrorSync(e)[0]
    const path = issue?.path ?? []
    let line = 1
    for (let n = path.length; n >= 0; n--) {
      const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n) as Array<unknown>, true)
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
  })
}

export const parseManifest = (file: string, text: string) => parseState(Manifest, file, text)
export const parseLock = (file: string, text: string) => parseState(Lock, file, text)

const render = (value: unknown) => stringify(value, { lineWidth: 0, indent: 2, aliasDuplicateObjects: false })

export const renderManifest = (m: Manifest): string =>
  `# agentsync skill manifest: sources and which units go to which tools\n${render(Schema.encodeSync(Manifest)(m))}`

export const renderLock = (l: Lock): string =>
  `# agentsync skill lock: written by agentsync, the base of every three-way decision; do not edit\n${render(Schema.encodeSync(Lock)(l))}`
