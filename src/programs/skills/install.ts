/** Sources and install: sources added, listed and removed, their layouts set and shown, and a source installed for some tools. */
import * as nodePath from "node:path"
import { Effect, Either, Option } from "effect"
import { describeTree, detectLayout } from "../../domain/skills/detect.js"
import { checkName, checkRef, defaultSourceName, parseSourceUri, SCP_LIKE } from "../../domain/skills/guards.js"
import { layoutProblem } from "../../domain/skills/layout.js"
import { type LayoutMapping, type Manifest, type ManifestSource, parseLayout } from "../../domain/skills/model.js"
import { InvalidInput } from "../../errors.js"
import { Git } from "../../services/Git.js"
import { KNOWN_TOOLS, SkillStore } from "../../services/SkillStore.js"
import { UnitDisk } from "../../services/UnitDisk.js"
import type { Planned } from "./snapshot.js"
import { syncWith } from "./sync.js"

export interface SourceInput {
  readonly uri: string
  readonly name?: string | undefined
  readonly ref?: string | undefined
  readonly readOnly?: boolean | undefined
  /** Layout rules (`target_layout`); none: detected from the repository's markers. */
  readonly layout?: ReadonlyArray<LayoutMapping> | undefined
}

/** Checks layout rules given in code (a file is checked by `readLayoutFile`, with its lines). */
const checkLayout = (rules: ReadonlyArray<LayoutMapping>) => {
  const problem = layoutProblem(rules)
  return problem === undefined
    ? Effect.succeed(rules)
    : Effect.fail(
        new InvalidInput({
          field: `target_layout.${problem.index}.${problem.field}`,
          reason: `${JSON.stringify(rules[problem.index]?.[problem.field])} ${problem.reason}`
        })
      )
}

/** A source's manifest entry: a new one, or the one there is with its layout replaced when rules are given. */
const sourceEntry = (
  existing: ManifestSource | undefined,
  input: {
    readonly name: string
    readonly uri: string
    readonly ref: string
    readonly readOnly: boolean | undefined
    readonly layout: ReadonlyArray<LayoutMapping> | undefined
  }
): ManifestSource =>
  existing === undefined
    ? {
        name: input.name,
        uri: input.uri,
        ref: input.ref,
        enabled: true,
        read_only: input.readOnly === true,
        target_layout: input.layout ?? []
      }
    : input.layout === undefined
      ? existing
      : { ...existing, target_layout: input.layout }

/** Reads a layout file (a YAML list of `{glob, repo, home, exclude?}`); a problem is reported as file:line. */
export const readLayoutFile = Effect.fn("SkillSync.readLayoutFile")(function* (file: string) {
  const disk = yield* UnitDisk
  const text = new TextDecoder().decode(yield* disk.readBytes(file))
  return yield* parseLayout(file, text)
})

/**
 * A git URL as a user pastes it, without a source scheme, as the URI it stands for: a GitHub URL (any case of its
 * scheme and host, `www.`, http, a final `.git` or `/`, the browser's `?tab=…` or `#readme`) is `gh:owner/repo`, one
 * source however it was named; any other https, http, ssh, git or file URL and an scp-like `user@host:path` is
 * `git:<url>`. A page inside a GitHub repository is refused, naming the repository's URI. Anything else is left as
 * it was typed.
 */
const fromPlainUrl = (uri: string): Either.Either<string, InvalidInput> => {
  const github =
    /^https?:\/\/(?:www\.)?github\.com\/([A-Za-z0-9][A-Za-z0-9-]*)\/([A-Za-z0-9_-][A-Za-z0-9._-]*?)(?:\.git)?(\/[^?#]*)?(?:[?#].*)?$/i.exec(
      uri
    )
  if (github !== null)
    return github[3] === undefined || github[3] === "/"
      ? Either.right(`gh:${github[1]}/${github[2]}`)
      : Either.left(
          new InvalidInput({
            field: "uri",
            reason: `${JSON.stringify(uri)} refused: a page inside a repository; a source is the whole repository (gh:${github[1]}/${github[2]}), and --layout chooses its units`
          })
        )
  if (/^(?:https?|ssh|git|file):\/\//i.test(uri) || SCP_LIKE.test(uri)) return Either.right(`git:${uri}`)
  return Either.right(uri)
}

/**
 * A URL with a password (a token) in it would be stored in manifest.yaml and printed by `source list`: refused
 * when added, with where credentials belong.
 */
const withoutPassword = (uri: string): Either.Either<string, InvalidInput> =>
  /^(?:git:)?[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/@\s]*:[^/@\s]*@/.test(uri)
    ? Either.left(
        new InvalidInput({
          field: "uri",
          reason:
            "refused: the URL holds a password or token, which would be stored in manifest.yaml and shown by `skill source list`; leave it out and let git's credential helper (git config credential.helper) or an SSH URL supply it"
        })
      )
    : Either.right(uri)

/**
 * Makes a user's URI absolute (`git:./repo`, `local:../x`) and checks it, before it reaches the manifest or git;
 * a plain git URL becomes the URI it stands for (`fromPlainUrl`).
 */
export const normalizeUri = (typed: string, cwd = process.cwd()): Either.Either<string, InvalidInput> =>
  Either.flatMap(Either.flatMap(withoutPassword(typed), fromPlainUrl), (uri) => absoluteUri(uri, cwd))

const absoluteUri = (uri: string, cwd: string): Either.Either<string, InvalidInput> => {
  const m = /^(?<scheme>git|local):(?<path>.*)$/s.exec(uri)?.groups
  let out = uri
  const path = m?.path ?? ""
  if (
    m !== undefined &&
    !path.startsWith("-") &&
    !/^[a-z][a-z0-9+.-]*:\/\//i.test(path) &&
    !/^[^/]+@[^/]+:/.test(path) &&
    !path.startsWith("/") &&
    path !== ""
  ) {
    // A relative path is resolved here, so a stored URI means one place; `..` is refused before resolving.
    if (path.split(/[\\/]/).includes(".."))
      return Either.left(new InvalidInput({ field: "uri", reason: `${JSON.stringify(uri)} refused: contains '..'` }))
    out = `${m.scheme}:${nodePath.resolve(cwd, path)}`
  }
  return Either.map(parseSourceUri(out), () => out)
}

/**
 * The ref a new source follows when none is given: a git source's default branch (what its HEAD names, asked once
 * here and then kept as the source's explicit ref); when HEAD names no branch (detached, or naming one the remote
 * lacks, as a bare repository made on `master` and pushed `main` does), the remote's only branch; else refused
 * naming `--ref`, never a guess (with a few of its tags where it has tags and no branch). A ref name holds no control
 * character (git refuses one), and the error line escapes what reaches a terminal. A local source has no branches: `main`, which it does not read.
 */
const defaultRef = (uri: string) =>
  Effect.gen(function* () {
    const location = yield* parseSourceUri(uri)
    if (location._tag !== "Git") return "main"
    const git = yield* Git
    const { head, branches, tags } = yield* git.defaultBranch(location.url).pipe(
      Effect.catchTag("CommandFailed", (e) =>
        Effect.fail(
          new InvalidInput({
            field: "ref",
            reason: `cannot ask the remote which branch to follow by default (${e.message}); check the URL and your access, or name the branch with --ref`
          })
        )
      )
    )
    const named = Option.filter(head, (b) => branches.includes(b))
    if (Option.isSome(named)) return named.value
    if (branches.length === 1) return branches[0]!
    const shown = branches.slice(0, 5).join(", ")
    return yield* new InvalidInput({
      field: "ref",
      reason:
        branches.length === 0
          ? `the remote has no branch${tags.length === 0 ? " yet" : ""}, so none to follow by default; ${tags.length === 0 ? "push one first, or " : ""}name a branch, tag or commit with --ref${tags.length === 0 ? "" : ` (its tags: ${tags.slice(0, 5).join(", ")}${tags.length > 5 ? ", …" : ""})`}`
          : `the remote's HEAD names none of its branches (${shown}${branches.length > 5 ? ", …" : ""}), so which to follow is not known; name it with --ref`
    })
  })

export const addSource = Effect.fn("SkillSync.addSource")(function* (input: SourceInput) {
  const store = yield* SkillStore
  const uri = yield* normalizeUri(input.uri)
  const name = yield* checkName("source", input.name ?? defaultSourceName(uri))
  const known = (yield* store.readManifest()).sources.find((s) => s.name === name && s.uri === uri)
  const ref = yield* checkRef(input.ref ?? known?.ref ?? (yield* defaultRef(uri)))
  return yield* store.withLock(
    Effect.gen(function* () {
      const manifest = yield* store.readManifest()
      const same = manifest.sources.find((s) => s.name === name)
      if (same !== undefined && same.uri !== uri) {
        return yield* new InvalidInput({
          field: "name",
          reason: `a source named ${name} already exists (${same.uri}); pick another --name`
        })
      }
      const layout = input.layout === undefined ? undefined : yield* checkLayout(input.layout)
      const source = sourceEntry(same, { name, uri, ref, readOnly: input.readOnly, layout })
      if (source !== same)
        yield* store.writeManifest({
          ...manifest,
          sources:
            same === undefined ? [...manifest.sources, source] : manifest.sources.map((x) => (x === same ? source : x))
        })
      return { source, added: same === undefined }
    })
  )
})

export const listSources = Effect.fn("SkillSync.listSources")(function* () {
  const store = yield* SkillStore
  const manifest = yield* store.readManifest()
  const lock = yield* store.readLock()
  return manifest.sources.map((s) => ({
    ...s,
    commit: lock.sources[s.name]?.commit,
    units: Object.keys(lock.sources[s.name]?.units ?? {}).length,
    tools: [...new Set(manifest.units.filter((u) => u.source === s.name).flatMap((u) => u.tools))].sort()
  }))
})

/** Forgets a source: its manifest entry, its unit selections and its lock entries. Deployed files stay where they are. */
export const removeSource = Effect.fn("SkillSync.removeSource")(function* (name: string) {
  const store = yield* SkillStore
  yield* checkName("source", name)
  return yield* store.withLock(
    Effect.gen(function* () {
      const manifest = yield* store.readManifest()
      const lock = yield* store.readLock()
      if (!manifest.sources.some((s) => s.name === name))
        return yield* new InvalidInput({ field: "source", reason: `no source named ${name}` })
      yield* store.writeManifest({
        ...manifest,
        sources: manifest.sources.filter((s) => s.name !== name),
        units: manifest.units.filter((u) => u.source !== name)
      })
      const { [name]: _, ...rest } = lock.sources
      yield* store.writeLock({ ...lock, sources: rest })
      return { removed: name, cache: store.cacheDir(name) }
    })
  )
})

/** The tools to deploy to when none are named: those whose home exists, else claude. */
export const defaultTools = Effect.fn("SkillSync.defaultTools")(function* () {
  const store = yield* SkillStore
  const disk = yield* UnitDisk
  const present: Array<string> = []
  for (const tool of KNOWN_TOOLS) if (yield* disk.exists(yield* store.toolHome(tool))) present.push(tool)
  return present.length > 0 ? present : ["claude"]
})

export interface InstallInput extends SourceInput {
  readonly tools?: ReadonlyArray<string> | undefined
  /** Which units: a unit name or glob (default every unit). */
  readonly units?: string | undefined
}

/**
 * Installs a source (a URI, or the name of a source already added) for some tools: records it, then deploys
 * repo → home. A home that already holds a different copy is a conflict, never overwritten.
 */
export const install = Effect.fn("SkillSync.install")(function* (input: InstallInput) {
  const store = yield* SkillStore
  const manifest = yield* store.readManifest()
  const byName = manifest.sources.find((s) => s.name === input.uri)
  const uri = byName?.uri ?? (yield* normalizeUri(input.uri))
  const name = yield* checkName(
    "source",
    input.name ?? byName?.name ?? manifest.sources.find((s) => s.uri === uri)?.name ?? defaultSourceName(uri)
  )
  const known = byName ?? manifest.sources.find((s) => s.name === name && s.uri === uri)
  const ref = yield* checkRef(input.ref ?? known?.ref ?? (yield* defaultRef(uri)))
  const tools = input.tools !== undefined && input.tools.length > 0 ? input.tools : yield* defaultTools()
  for (const t of tools) yield* checkName("tool", t)
  const layout = input.layout === undefined ? undefined : yield* checkLayout(input.layout)
  const existing = manifest.sources.find((s) => s.name === name)
  if (existing !== undefined && existing.uri !== uri) {
    return yield* new InvalidInput({
      field: "name",
      reason: `a source named ${name} already exists (${existing.uri}); pick another --name`
    })
  }
  const source = sourceEntry(existing, { name, uri, ref, readOnly: input.readOnly, layout })
  const unitName = input.units ?? "**"
  const selection = manifest.units.find((u) => u.source === name && u.name === unitName)
  const units =
    selection === undefined
      ? [...manifest.units, { source: name, name: unitName, tools: [...tools].sort() }]
      : manifest.units.map((u) => (u === selection ? { ...u, tools: [...new Set([...u.tools, ...tools])].sort() } : u))
  const next: Manifest = {
    ...manifest,
    sources:
      existing === undefined
        ? [...manifest.sources, source]
        : manifest.sources.map((s) => (s === existing ? source : s)),
    units
  }
  // Refused before anything is written: a source that cannot be read, or whose layout finds no unit.
  const check = (planned: Planned) => {
    const failed = planned.errors.find((e) => e.source === name)
    if (failed !== undefined)
      return Effect.fail(new InvalidInput({ field: "uri", reason: `cannot install ${input.uri}: ${failed.reason}` }))
    const p = planned.prepared.find((x) => x.source.name === name)
    if (p !== undefined && p.units.size === 0 && p.withheld.length > 0)
      return Effect.fail(
        new InvalidInput({
          field: "uri",
          reason: `every unit of ${input.uri} shares its home path with another: ${planned.withheld.map((w) => w.reason).join("; ")}`
        })
      )
    if (p !== undefined && p.units.size === 0) {
      const how =
        source.target_layout.length > 0
          ? "its target_layout"
          : p.detected.length > 0
            ? `the layout detected (${p.detected.join("; ")})`
            : "the common layouts (skills/*/SKILL.md, agents/*.md, agents/*/*.md, commands/*.md)"
      return Effect.fail(
        new InvalidInput({
          field: "uri",
          reason: `${input.uri} matches no unit with ${how}; ${p.holds().join("; ")}; describe where its units are with \`agentsync skill source layout ${name} FILE\` (a YAML list of {glob, repo, home, exclude}) and install again`
        })
      )
    }
    return Effect.void
  }
  const report = yield* syncWith({ scope: name, toHome: true }, next, check)
  yield* store.withLock(store.writeManifest(next))
  return { source, tools, report }
})

/**
 * Sets a source's layout rules (`target_layout`), or with none goes back to the layout detected from the
 * repository's markers. Rules are checked before anything is written.
 */
export const setLayout = Effect.fn("SkillSync.setLayout")(function* (
  name: string,
  rules: ReadonlyArray<LayoutMapping> | undefined
) {
  const store = yield* SkillStore
  yield* checkName("source", name)
  const layout = yield* checkLayout(rules ?? [])
  return yield* store.withLock(
    Effect.gen(function* () {
      const manifest = yield* store.readManifest()
      const source = manifest.sources.find((s) => s.name === name)
      if (source === undefined) return yield* new InvalidInput({ field: "source", reason: `no source named ${name}` })
      const next = { ...source, target_layout: layout }
      yield* store.writeManifest({ ...manifest, sources: manifest.sources.map((s) => (s === source ? next : s)) })
      return next
    })
  )
})

/**
 * The layout a source uses: its declared rules, or the rules detected from its repository (read from the cache
 * clone or the local folder, as the last run saw it), with what the tree holds.
 */
export const showLayout = Effect.fn("SkillSync.showLayout")(function* (name: string) {
  const store = yield* SkillStore
  const git = yield* Git
  const disk = yield* UnitDisk
  const manifest = yield* store.readManifest()
  const source = manifest.sources.find((s) => s.name === name)
  if (source === undefined) return yield* new InvalidInput({ field: "source", reason: `no source named ${name}` })
  const location = yield* parseSourceUri(source.uri)
  let paths: ReadonlyArray<string> | undefined
  if (location._tag === "Local") {
    if (yield* disk.exists(location.path)) paths = (yield* disk.listTree(location.path)).paths
  } else {
    const dir = store.cacheDir(name)
    if (yield* disk.exists(nodePath.join(dir, ".git"))) {
      // A clone git cannot read is only a layout not detected; a path that is not UTF-8 is the source's to fix.
      const tree = yield* git.listTree(dir, "HEAD").pipe(
        Effect.map(Option.some),
        Effect.catchTag("CommandFailed", () => Effect.succeed(Option.none()))
      )
      if (Option.isSome(tree)) paths = tree.value.filter((e) => e.mode !== "160000").map((e) => e.path)
    }
  }
  const detected = paths === undefined ? undefined : detectLayout(paths, name)
  return {
    source: name,
    declared: source.target_layout,
    detected: detected === undefined ? undefined : { kinds: detected.kinds, rules: detected.mappings },
    holds: paths === undefined ? [] : describeTree(paths)
  }
})
