/** A source made ready for a run: its cache clone checked (recovered, or cloned again), its ref resolved explicitly, its layout found, its units read as digests. */
import * as nodePath from "node:path"
import { Array as Arr, Effect, Either } from "effect"
import { sha256 } from "../../domain/hash.js"
import { held as pureHeld } from "../../domain/held.js"
import { describeTree, detectLayout } from "../../domain/skills/detect.js"
import { discoverUnits, nestedHomes, type Withheld, withholdCollisions } from "../../domain/skills/discover.js"
import { checkRef, parseSourceUri, type SourceLocation } from "../../domain/skills/guards.js"
import { compileLayout, type Layout, memberPath, type UnitLayout } from "../../domain/skills/layout.js"
import {
  digestOf,
  kindOfGitMode,
  type ManifestSource,
  type UnitFiles,
  unitLinkProblem
} from "../../domain/skills/model.js"
import { type CommandFailed, InvalidInput, type IoError } from "../../errors.js"
import { Git, type TreeEntry } from "../../services/Git.js"
import { SkillStore } from "../../services/SkillStore.js"
import { UnitDisk } from "../../services/UnitDisk.js"
import { ensureClone, resolveRef, settleBranch } from "./clone.js"

export interface RepoUnit {
  readonly layout: UnitLayout
  /** `undefined` when the unit is absent from the repo. */
  readonly files: UnitFiles | undefined
  /** Object ids by relative path, for git sources. */
  readonly oids: Readonly<Record<string, string>>
}

export interface Finding {
  readonly path: string
  readonly reason: string
}

export interface PreparedSource {
  readonly source: ManifestSource
  readonly location: SourceLocation
  readonly layout: Layout
  /** What the layout was detected from (the source declares none); empty: the common layouts. */
  readonly detected: ReadonlyArray<string>
  /** The folder units are read from and written to: the cache clone, or the local folder. */
  readonly dir: string
  readonly commit: string | undefined
  /** The branch ToRepo commits go to; `undefined` for tags, commits and local folders. */
  readonly branch: string | undefined
  readonly readOnly: boolean
  readonly units: ReadonlyMap<string, RepoUnit>
  /** Units of a detected layout that one home path would hold: left out, neither side touched. */
  readonly withheld: ReadonlyArray<Withheld>
  /** Repo files left out (unsafe names, links leading out of their unit, submodules). */
  readonly ignored: ReadonlyArray<Finding>
  /** What was repaired on the way (a stale git lock removed, a broken clone put aside). */
  readonly notes: ReadonlyArray<string>
  /** What the tree holds, for a layout that matches nothing (`found 42 SKILL.md under plugins/*\/skills/*`). */
  readonly holds: () => ReadonlyArray<string>
  /** Which of these repo paths the repository ignores (`git check-ignore` at the source's commit). */
  readonly ignores: (paths: ReadonlyArray<string>) => Effect.Effect<ReadonlySet<string>, CommandFailed | IoError>
  /** Temp files of interrupted writes in a local source. */
  readonly temps: ReadonlyArray<string>
}

/**
 * A value that an earlier step of the same run produced for this one (a tree entry for a path of its listing, the
 * bytes `git cat-file` returned for an id asked for): missing, it is a fault of the program, not a state of the disk.
 */
export const held = <A>(value: A | undefined, what: string): Effect.Effect<A> =>
  Effect.sync(() => pureHeld(value, `${what} in skill sync`))

/** The blob-id → SHA-256 memo of a cache clone; a missing or unreadable memo is simply empty. */
const readHashCache = (file: string) =>
  Effect.map(Effect.either(Effect.flatMap(UnitDisk, (disk) => disk.readBytes(file))), (bytes) => {
    if (Either.isLeft(bytes)) return {} as Record<string, unknown>
    try {
      const value: unknown = JSON.parse(new TextDecoder().decode(bytes.right))
      return typeof value === "object" && value !== null && !Array.isArray(value)
        ? (value as Record<string, unknown>)
        : {}
    } catch {
      return {}
    }
  })

/** The layout in force: the source's own rules, else the one its markers show. */
const layoutFor = (source: ManifestSource, paths: ReadonlyArray<string>) => {
  if (source.target_layout.length > 0)
    return Effect.map(compileLayout(source.target_layout), (layout) => ({
      layout,
      detected: [] as ReadonlyArray<string>
    }))
  const detected = detectLayout(paths, source.name)
  return Effect.map(compileLayout(detected.mappings), (layout) => ({ layout, detected: detected.kinds }))
}

/**
 * Units of a tree. Two units on one home path under rules the user wrote are the error naming both; under a
 * detected layout they are left out (`withheld`) and the others are the source's units.
 */
const discover = (source: ManifestSource, layout: Layout, paths: ReadonlyArray<string>) => {
  const found = discoverUnits(layout, paths)
  if (found.collisions.length === 0) return Effect.succeed({ ...found, withheld: [] as ReadonlyArray<Withheld> })
  if (source.target_layout.length === 0) return Effect.succeed({ ...found, ...withholdCollisions(found) })
  const shown = found.collisions
    .slice(0, 5)
    .map((c) =>
      c.firstHome === c.home
        ? `${c.first} and ${c.second} both map to ${c.home}`
        : nestedHomes(c.firstHome, c.home)
          ? `${c.first} and ${c.second} map to ${c.firstHome} and ${c.home}, one inside the other`
          : `${c.first} and ${c.second} map to ${c.firstHome} and ${c.home}, both named ${c.unit.name}`
    )
  const more = found.collisions.length > 5 ? `; and ${found.collisions.length - 5} more` : ""
  return Effect.fail(
    new InvalidInput({
      field: "target_layout",
      reason: `source ${source.name}: ${shown.join("; ")}${more}; exclude one or change the home template (agentsync skill source layout ${source.name} FILE)`
    })
  )
}

const prepareGit = Effect.fn("SkillSync.prepareGit")(function* (
  source: ManifestSource,
  location: { readonly url: string },
  options: { readonly dryRun: boolean; readonly fetch: boolean; readonly skipPush: boolean }
) {
  const store = yield* SkillStore
  const git = yield* Git
  const disk = yield* UnitDisk
  const dir = store.cacheDir(source.name)
  const notes = yield* ensureClone(source, location.url, dir, options.fetch)
  const at = yield* resolveRef(dir, source, location.url)
  const commit = at.branch === undefined ? at.commit : yield* settleBranch(source, dir, at, options)
  if (at.branch === undefined && !options.dryRun) {
    yield* git.checkout(dir, undefined, commit)
    yield* git.clean(dir)
  }

  const tree = yield* git.listTree(dir, commit)
  const byPath = new Map<string, TreeEntry>()
  for (const e of tree) if (e.mode !== "160000") byPath.set(e.path, e)
  const paths = [...byPath.keys()]
  const { layout, detected } = yield* layoutFor(source, paths)
  const found = yield* discover(source, layout, paths)
  const ignored: Array<Finding> = [...found.skipped]
  const roots = new Set(found.units.filter((u) => u.folder).map((u) => u.repoRoot))
  for (const e of tree) {
    if (e.mode === "160000" && [...roots].some((r) => r === "." || e.path.startsWith(`${r}/`)))
      ignored.push({ path: e.path, reason: "a submodule: not deployed" })
  }

  // Links are read for their targets; other blobs are hashed once and remembered by id beside the clone.
  const members: Array<{ readonly unit: string; readonly rel: string; readonly path: string; readonly e: TreeEntry }> =
    []
  for (const u of found.units) {
    for (const rel of u.files) {
      const path = memberPath(u.repoRoot, rel)
      members.push({ unit: u.name, rel, path, e: yield* held(byPath.get(path), `the tree entry of ${path}`) })
    }
  }
  const links = members.filter((m) => m.e.mode === "120000")
  const targets = new Map<string, string>()
  for (const [oid, bytes] of yield* git.readBlobs(dir, [...new Set(links.map((m) => m.e.oid))]))
    targets.set(oid, new TextDecoder().decode(bytes))
  const wanted = new Set(members.filter((m) => m.e.mode !== "120000").map((m) => m.e.oid))
  const hashFile = nodePath.join(dir, ".git", "agentsync-sha256.json")
  const known = yield* readHashCache(hashFile)
  const hashOf = new Map<string, string>()
  const unknown: Array<string> = []
  for (const oid of wanted) {
    const h = known[oid]
    // The memo is ours: a length check is enough to skip what is not a hash.
    if (typeof h === "string" && h.length === 64) hashOf.set(oid, h)
    else unknown.push(oid)
  }
  for (const [oid, bytes] of yield* git.readBlobs(dir, unknown)) hashOf.set(oid, sha256(bytes))
  if (!options.dryRun && (unknown.length > 0 || Object.keys(known).length !== hashOf.size)) {
    yield* disk.writeAtomic(hashFile, JSON.stringify(Object.fromEntries(hashOf)))
  }
  for (const [oid, target] of targets) hashOf.set(oid, sha256(target))

  const filesOf = new Map<string, { readonly files: Record<string, string>; readonly oids: Record<string, string> }>()
  for (const { unit, rel, path, e } of members) {
    const problem =
      e.mode === "120000" ? unitLinkProblem(rel, yield* held(targets.get(e.oid), `the target of ${path}`)) : undefined
    if (problem !== undefined) {
      ignored.push({ path, reason: `a symbolic link not deployed: ${problem}` })
      continue
    }
    const mine = filesOf.get(unit) ?? { files: {}, oids: {} }
    mine.oids[rel] = e.oid
    mine.files[rel] = digestOf(yield* held(hashOf.get(e.oid), `the hash of ${path}`), kindOfGitMode(e.mode))
    filesOf.set(unit, mine)
  }
  const units = new Map<string, RepoUnit>()
  for (const u of found.units) {
    const mine = filesOf.get(u.name)
    if (mine !== undefined) units.set(u.name, { layout: u, ...mine })
  }

  // The .gitignore files of the commit, written out once when first asked, so that a run that has not checked the
  // commit out (status, a dry run) decides as a real run does.
  let ignoreTree: string | undefined
  const ignores = (asked: ReadonlyArray<string>) =>
    Effect.gen(function* () {
      if (asked.length === 0) return new Set<string>()
      if (ignoreTree === undefined) {
        const tree1 = nodePath.join(dir, ".git", "agentsync-ignores")
        const rules = tree.filter(
          (e) =>
            (e.path === ".gitignore" || e.path.endsWith("/.gitignore")) && e.mode !== "120000" && e.mode !== "160000"
        )
        const blobs = yield* git.readBlobs(
          dir,
          rules.map((e) => e.oid)
        )
        const files: Array<{ readonly path: string; readonly bytes: Uint8Array }> = []
        for (const e of rules)
          files.push({ path: e.path, bytes: yield* held(blobs.get(e.oid), `the blob of ${e.path}`) })
        yield* disk.replaceTree(tree1, files)
        ignoreTree = tree1
      }
      return yield* git.checkIgnore(dir, asked, { workTree: ignoreTree, noIndex: true })
    })

  return {
    source,
    location: { _tag: "Git", url: location.url },
    layout,
    detected,
    dir,
    commit,
    branch: at.branch,
    readOnly: source.read_only || at.branch === undefined,
    units,
    withheld: found.withheld,
    ignored,
    notes,
    holds: () => describeTree(paths),
    ignores,
    // The SHA-256 memo is written beside the clone's own files.
    temps: yield* disk.tempsIn(nodePath.join(dir, ".git"))
  } satisfies PreparedSource
})

/** A `local:` folder: files its repository ignores (when it lies in a git work tree) are not part of it. */
const prepareLocal = Effect.fn("SkillSync.prepareLocal")(function* (source: ManifestSource, path: string) {
  const git = yield* Git
  const disk = yield* UnitDisk
  if (!(yield* disk.exists(path))) {
    return yield* new InvalidInput({ field: "uri", reason: `source ${source.name}: ${path} does not exist` })
  }
  const listed = yield* disk.listTree(path)
  const ignores = (asked: ReadonlyArray<string>) =>
    git.checkIgnore(path, asked).pipe(
      Effect.catchIf(
        (e) => /not a git repository/.test(e.stderr),
        () => Effect.succeed(new Set<string>())
      )
    )
  const ignoredHere = yield* ignores(listed.paths)
  const paths = listed.paths.filter((p) => !ignoredHere.has(p))
  const { layout, detected } = yield* layoutFor(source, paths)
  const found = yield* discover(source, layout, paths)
  const ignored: Array<Finding> = [...found.skipped]
  // Every member read in one synchronous pass.
  const members = found.units.flatMap((u) =>
    u.files.map((rel) => {
      const rp = memberPath(u.repoRoot, rel)
      return { u, rel, rp, abs: nodePath.join(path, ...rp.split("/")) }
    })
  )
  const entries = yield* disk.entries(members.map((m) => m.abs))
  if (entries.length !== members.length)
    return yield* Effect.dieMessage(`${entries.length} entries read for ${members.length} unit files`)
  const filesOf = new Map<string, Record<string, string>>()
  Arr.zip(members, entries).forEach(([{ u, rel, rp }, { digest, link }]) => {
    const problem = link === undefined ? undefined : unitLinkProblem(rel, link)
    if (problem !== undefined) {
      ignored.push({ path: rp, reason: `a symbolic link not deployed: ${problem}` })
      return
    }
    const files = filesOf.get(u.name) ?? {}
    files[rel] = digest
    filesOf.set(u.name, files)
  })
  const units = new Map<string, RepoUnit>()
  for (const u of found.units) {
    const files = filesOf.get(u.name)
    if (files !== undefined) units.set(u.name, { layout: u, files, oids: {} })
  }
  return {
    source,
    location: { _tag: "Local", path },
    layout,
    detected,
    dir: path,
    commit: undefined,
    branch: undefined,
    readOnly: source.read_only,
    units,
    withheld: found.withheld,
    ignored,
    notes: [],
    holds: () => describeTree(paths),
    ignores,
    temps: listed.temps
  } satisfies PreparedSource
})

/** Prepares one source; a hostile value in the manifest is refused before any git call. */
export const prepareSource = Effect.fn("SkillSync.prepareSource")(function* (
  source: ManifestSource,
  options: { readonly dryRun: boolean; readonly fetch: boolean; readonly skipPush: boolean }
) {
  const location = yield* parseSourceUri(source.uri)
  yield* checkRef(source.ref)
  return location._tag === "Local"
    ? yield* prepareLocal(source, location.path)
    : yield* prepareGit(source, location, options)
})
