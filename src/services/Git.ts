/** The Git port: the few git operations skill sync needs, over Shell, argv only, prompts off, refs and URLs guarded. */
import { isUtf8 } from "node:buffer"
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { Context, Effect, Either, Layer, Option } from "effect"
import { checkGitUrl, checkRef } from "../domain/skills/guards.js"
import { beforeFirst, groups } from "../domain/text.js"
import { CommandFailed, InvalidInput } from "../errors.js"
import { findLocks, gitRunningIn, originInConfig } from "./GitFiles.js"
import { escapeName } from "./nameBytes.js"
import { Shell, type ShellShape, showCommand } from "./Shell.js"

/** The path of the first `ls-tree -z` record whose path is not UTF-8 (its bytes), if any. */
const notUtf8Path = (stdout: Uint8Array): Uint8Array | undefined => {
  for (let at = 0; at < stdout.length; ) {
    const end = stdout.indexOf(0, at)
    const record = stdout.subarray(at, end < 0 ? stdout.length : end)
    const path = record.subarray(record.indexOf(0x09) + 1)
    if (!isUtf8(path)) return path
    at = end < 0 ? stdout.length : end + 1
  }
  return undefined
}

export interface TreeEntry {
  readonly path: string
  readonly oid: string
  /** `100644`, `100755` (executable), `120000` (symbolic link: the blob is its target) or `160000` (submodule). */
  readonly mode: string
}

export interface GitShape {
  /** Clones without checking anything out: the caller resolves its ref explicitly (never the remote's HEAD). */
  readonly clone: (url: string, dir: string) => Effect.Effect<void, CommandFailed | InvalidInput>
  /**
   * What a remote's HEAD names (`git ls-remote --symref`): its default branch; none when HEAD is detached or names
   * a branch the remote does not have (git then lists no symbolic ref). With the remote's branches and tags, in one
   * process.
   */
  readonly defaultBranch: (url: string) => Effect.Effect<
    {
      readonly head: Option.Option<string>
      readonly branches: ReadonlyArray<string>
      readonly tags: ReadonlyArray<string>
    },
    CommandFailed | InvalidInput
  >
  /**
   * Why `dir` is not a clone of `url` (no .git folder of its own, another origin), if it is not; read from the
   * files, so it costs no process. `revs` then tells whether git reads it and what its HEAD names.
   */
  readonly health: (dir: string, url: string) => Effect.Effect<Option.Option<string>>
  /**
   * What several revisions name, in one process (`git cat-file --batch-check` in `dir`'s own .git, never a parent
   * repository's); a revision that names nothing maps to `undefined`.
   */
  readonly revs: (
    dir: string,
    revs: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyMap<string, string | undefined>, CommandFailed>
  /**
   * Clears what an interrupted git leaves in a clone (lock files, a rebase in progress) when no git process runs
   * in it; returns what was removed. A lock held by a running git stays.
   */
  readonly recover: (dir: string) => Effect.Effect<ReadonlyArray<string>, CommandFailed>
  /**
   * The paths (relative to `dir`) that the repository's ignore rules leave out, as `git check-ignore` decides:
   * `.gitignore` files, `.git/info/exclude` and the user's global excludes. `workTree` reads the `.gitignore`
   * files from another folder (those of a commit not checked out); `noIndex` ignores what the index tracks.
   */
  readonly checkIgnore: (
    dir: string,
    paths: ReadonlyArray<string>,
    options?: { readonly workTree?: string | undefined; readonly noIndex?: boolean | undefined }
  ) => Effect.Effect<ReadonlySet<string>, CommandFailed>
  /** Fetches every branch and tag of origin into remote-tracking refs. */
  readonly fetch: (dir: string) => Effect.Effect<void, CommandFailed>
  /** The commit a revision names, if any. */
  readonly resolve: (dir: string, rev: string) => Effect.Effect<Option.Option<string>, CommandFailed | InvalidInput>
  readonly isAncestor: (dir: string, ancestor: string, descendant: string) => Effect.Effect<boolean, CommandFailed>
  readonly currentBranch: (dir: string) => Effect.Effect<Option.Option<string>, CommandFailed>
  /**
   * Points `branch` at `commit` (or detaches HEAD there, for a tag or a commit) and makes the work tree that commit
   * (the cache clone is ours).
   */
  readonly checkout: (
    dir: string,
    branch: string | undefined,
    commit: string
  ) => Effect.Effect<void, CommandFailed | InvalidInput>
  /** Every file, link and submodule of a commit with its object id and mode. */
  /** Every blob of a commit; a path that is not UTF-8 fails it, naming the path by its bytes (see `nameBytes.ts`). */
  readonly listTree: (
    dir: string,
    commit: string
  ) => Effect.Effect<ReadonlyArray<TreeEntry>, CommandFailed | InvalidInput>
  /** The bytes of many blobs in one process. */
  readonly readBlobs: (
    dir: string,
    oids: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyMap<string, Uint8Array>, CommandFailed>
  /** The bytes of one file at a commit. */
  readonly showFile: (dir: string, commit: string, path: string) => Effect.Effect<Uint8Array, CommandFailed>
  /** Stages the paths as they are on disk: tracked files (edits, modes, deletions) and new files the repository does not ignore. */
  readonly add: (dir: string, paths: ReadonlyArray<string>) => Effect.Effect<void, CommandFailed>
  /** Commits what is staged; `None` when nothing was staged. Uses a fallback identity when none is configured. */
  readonly commit: (dir: string, message: string) => Effect.Effect<Option.Option<string>, CommandFailed>
  readonly push: (dir: string, ref: string) => Effect.Effect<void, CommandFailed | InvalidInput>
  /** Replays local commits onto `onto`; aborts and fails when they do not apply cleanly. */
  readonly rebase: (dir: string, onto: string) => Effect.Effect<void, CommandFailed>
  /** Drops uncommitted changes of the cache clone (left by an interrupted run). */
  readonly clean: (dir: string) => Effect.Effect<void, CommandFailed>
}

export class Git extends Context.Tag("agentsync/Git")<Git, GitShape>() {}

/** Never prompt: a missing credential is an error, not a hung process. */
const gitEnv = (): Record<string, string> => ({
  GIT_TERMINAL_PROMPT: "0",
  GCM_INTERACTIVE: "never",
  GIT_SSH_COMMAND: process.env["GIT_SSH_COMMAND"] ?? "ssh -o BatchMode=yes",
  LC_ALL: "C",
  // Pathspecs as the calls give them: an inherited glob or case-blind setting would widen a path to others.
  GIT_GLOB_PATHSPECS: "0",
  GIT_NOGLOB_PATHSPECS: "0",
  GIT_ICASE_PATHSPECS: "0"
})

/** Options for every call: no transport helpers (`ext::`), no credential prompts. */
const BASE = ["-c", "protocol.ext.allow=never", "-c", "core.askPass=", "-c", "credential.interactive=never"]

const FALLBACK_IDENTITY = ["-c", "user.name=agentsync", "-c", "user.email=agentsync@localhost"]

const guard = <A>(e: Either.Either<A, InvalidInput>) =>
  Either.isLeft(e) ? Effect.fail(e.left) : Effect.succeed(e.right)

export const make = (shell: ShellShape): GitShape => {
  const env = gitEnv()
  const run = (dir: string | undefined, args: ReadonlyArray<string>, stdin?: Uint8Array | string) =>
    shell.run("git", [...BASE, ...(dir === undefined ? [] : ["-C", dir]), ...args], { env, stdin })
  const exec = (dir: string | undefined, args: ReadonlyArray<string>, stdin?: Uint8Array | string) =>
    shell.exec("git", [...BASE, ...(dir === undefined ? [] : ["-C", dir]), ...args], { env, stdin }).pipe(
      // Messages show the operation, not the hardening options every call carries.
      Effect.mapError(
        (e) => new CommandFailed({ command: showCommand("git", args), exitCode: e.exitCode, stderr: e.stderr })
      )
    )
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes).trim()

  const clone = Effect.fn("Git.clone")(function* (url: string, dir: string) {
    yield* guard(checkGitUrl(url))
    yield* exec(undefined, ["clone", "--quiet", "--no-checkout", "--no-tags", "--", url, dir])
  })

  const defaultBranch = Effect.fn("Git.defaultBranch")(function* (url: string) {
    yield* guard(checkGitUrl(url))
    const out = text(
      (yield* exec(undefined, ["ls-remote", "--symref", "--", url, "HEAD", "refs/heads/*", "refs/tags/*"])).stdout
    )
    const m = /^ref: refs\/heads\/(\S+)\tHEAD$/m.exec(out)
    const branches = [...out.matchAll(/^[0-9a-f]+\trefs\/heads\/(\S+)$/gm)].map((b) => b[1]!)
    // An annotated tag is listed twice, the second time peeled (`v1^{}`): once here.
    const tags = [...out.matchAll(/^[0-9a-f]+\trefs\/tags\/(\S+?)(\^\{\})?$/gm)].flatMap((t) =>
      t[2] === undefined ? [t[1]!] : []
    )
    return { head: m === null ? Option.none<string>() : Option.some(m[1]!), branches, tags }
  })

  const health = Effect.fn("Git.health")(function* (dir: string, url: string) {
    const gitDir = nodePath.join(dir, ".git")
    if (!fs.statSync(gitDir, { throwIfNoEntry: false })?.isDirectory()) return Option.some("it has no .git folder")
    let remote = originInConfig(gitDir)
    if (remote === undefined) {
      const r = yield* Effect.orElseSucceed(
        run(undefined, ["--git-dir", gitDir, "config", "--get", "remote.origin.url"]),
        () => undefined
      )
      remote = r === undefined || r.exitCode !== 0 ? "" : text(r.stdout)
    }
    if (remote !== url) return Option.some(remote === "" ? "it has no origin remote" : `its origin is ${remote}`)
    return Option.none()
  })

  const revs = Effect.fn("Git.revs")(function* (dir: string, asked: ReadonlyArray<string>) {
    const out = new Map<string, string | undefined>()
    if (asked.length === 0) return out
    if (asked.some((r) => /[\n\r\0]/.test(r) || r.startsWith("-")))
      return yield* new CommandFailed({
        command: "git cat-file --batch-check",
        exitCode: -1,
        stderr: "a revision with a newline or a leading '-'"
      })
    const r = yield* exec(
      undefined,
      ["--git-dir", nodePath.join(dir, ".git"), "cat-file", "--batch-check"],
      `${asked.join("\n")}\n`
    )
    const lines = new TextDecoder().decode(r.stdout).split("\n")
    asked.forEach((rev, i) => {
      const line = lines[i] ?? ""
      out.set(rev, / (missing|ambiguous)$/.test(line) || line === "" ? undefined : line.split(" ")[0])
    })
    return out
  })

  const recover = Effect.fn("Git.recover")(function* (dir: string) {
    const gitDir = nodePath.join(dir, ".git")
    const locks = findLocks(gitDir)
    const rebasing = ["rebase-merge", "rebase-apply"].some((d) => fs.existsSync(nodePath.join(gitDir, d)))
    if (locks.length === 0 && !rebasing) return []
    const running = gitRunningIn(dir)
    const removed: Array<string> = []
    for (const lock of locks) {
      // Without /proc, a lock untouched for ten minutes is taken as stale.
      const stale =
        running === undefined
          ? Date.now() - (fs.statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? 0) > 600_000
          : !running
      if (!stale) continue
      fs.rmSync(lock, { force: true })
      removed.push(lock)
    }
    if (rebasing && running === false) {
      yield* exec(dir, ["rebase", "--abort"])
      removed.push(nodePath.join(gitDir, "rebase-merge"))
    }
    return removed
  })

  const checkIgnore = Effect.fn("Git.checkIgnore")(function* (
    dir: string,
    paths: ReadonlyArray<string>,
    options: { readonly workTree?: string | undefined; readonly noIndex?: boolean | undefined } = {}
  ) {
    if (paths.length === 0) return new Set<string>()
    const r = yield* run(
      dir,
      [
        ...(options.workTree === undefined ? [] : ["--work-tree", options.workTree]),
        "check-ignore",
        ...(options.noIndex ? ["--no-index"] : []),
        "--stdin",
        "-z"
      ],
      `${paths.join("\0")}\0`
    )
    // 0: some are ignored, 1: none is.
    if (r.exitCode !== 0 && r.exitCode !== 1)
      return yield* new CommandFailed({ command: "git check-ignore", exitCode: r.exitCode, stderr: r.stderr })
    return new Set(
      new TextDecoder()
        .decode(r.stdout)
        .split("\0")
        .filter((p) => p !== "")
    )
  })

  const fetch = Effect.fn("Git.fetch")(function* (dir: string) {
    yield* exec(dir, [
      "fetch",
      "--quiet",
      "--prune",
      "--tags",
      "--force",
      "--",
      "origin",
      "+refs/heads/*:refs/remotes/origin/*"
    ])
  })

  const resolve = Effect.fn("Git.resolve")(function* (dir: string, rev: string) {
    yield* guard(checkRef(rev.replace(/^refs\/(remotes|heads|tags)\//, "")))
    const r = yield* run(dir, ["rev-parse", "--verify", "--quiet", "--end-of-options", `${rev}^{commit}`])
    return r.exitCode === 0 ? Option.some(text(r.stdout)) : Option.none()
  })

  const isAncestor = Effect.fn("Git.isAncestor")(function* (dir: string, ancestor: string, descendant: string) {
    const r = yield* run(dir, ["merge-base", "--is-ancestor", "--", ancestor, descendant])
    if (r.exitCode === 0) return true
    if (r.exitCode === 1) return false
    return yield* new CommandFailed({ command: "git merge-base --is-ancestor", exitCode: r.exitCode, stderr: r.stderr })
  })

  const currentBranch = Effect.fn("Git.currentBranch")(function* (dir: string) {
    const r = yield* run(dir, ["symbolic-ref", "--quiet", "--short", "HEAD"])
    return r.exitCode === 0 ? Option.some(text(r.stdout)) : Option.none()
  })

  const checkout = Effect.fn("Git.checkout")(function* (dir: string, branch: string | undefined, commit: string) {
    if (branch === undefined) {
      yield* exec(dir, ["checkout", "--quiet", "--force", "--detach", commit, "--"])
      return
    }
    yield* guard(checkRef(branch))
    yield* exec(dir, ["checkout", "--quiet", "--force", "-B", branch, commit, "--"])
  })

  const listTree = Effect.fn("Git.listTree")(function* (dir: string, commit: string) {
    const r = yield* exec(dir, ["ls-tree", "-r", "-z", "--full-tree", commit, "--"])
    // Decoded, a path that is not UTF-8 would name another file (each bad byte a U+FFFD): deployed under that name, it
    // would come back as a new one. The first such path refuses the source.
    const bad = isUtf8(r.stdout) ? undefined : notUtf8Path(r.stdout)
    if (bad !== undefined)
      return yield* new InvalidInput({
        file: `${dir} (${commit.slice(0, 12)})`,
        reason: `the path "${escapeName(bad)}" is not UTF-8: no skill path can hold it; rename it in the repository`
      })
    const out: Array<TreeEntry> = []
    for (const line of new TextDecoder().decode(r.stdout).split("\0")) {
      if (line === "") continue
      // <mode> SP <type> SP <oid> TAB <path>
      const tab = line.indexOf("\t")
      const [mode, , oid] = line.slice(0, tab).split(" ")
      if (mode === undefined || oid === undefined) continue
      out.push({ path: line.slice(tab + 1), oid, mode })
    }
    return out
  })

  const readBlobs = Effect.fn("Git.readBlobs")(function* (dir: string, oids: ReadonlyArray<string>) {
    const out = new Map<string, Uint8Array>()
    if (oids.length === 0) return out
    const r = yield* exec(dir, ["cat-file", "--batch"], `${oids.join("\n")}\n`)
    const buf = r.stdout
    let at = 0
    while (at < buf.length) {
      const nl = buf.indexOf(0x0a, at)
      if (nl < 0) break
      // <oid> SP <type> SP <size> LF <contents> LF, or <object> SP missing LF
      const header = new TextDecoder().decode(buf.subarray(at, nl))
      const found = groups(/^(\S+) \S+ (\d+)$/, header, 2)
      if (found === undefined) {
        return yield* new CommandFailed({
          command: "git cat-file --batch",
          exitCode: 0,
          stderr: header.endsWith(" missing")
            ? `object ${beforeFirst(header, " ")} missing`
            : `unexpected answer: ${header}`
        })
      }
      const [oid, sizeText] = found
      const size = Number(sizeText)
      out.set(oid, buf.slice(nl + 1, nl + 1 + size))
      at = nl + 1 + size + 1
    }
    return out
  })

  const showFile = Effect.fn("Git.showFile")(function* (dir: string, commit: string, path: string) {
    const r = yield* exec(dir, ["cat-file", "blob", `${commit}:${path}`])
    return r.stdout
  })

  const add = Effect.fn("Git.add")(function* (dir: string, paths: ReadonlyArray<string>) {
    if (paths.length === 0) return
    // Paths are names, never patterns (a member file named `*.md` is itself alone), in `ls-files` and `add` alike.
    // Tracked files and untracked ones the repository does not ignore, each named exactly: `add --all` of the
    // paths staged the same but exited 1 where a .gitignore names a folder holding tracked files (`analysis/`
    // over a force-added skill); `--update` stages a tracked file's edit, mode or deletion there without a word.
    const listed = (which: ReadonlyArray<string>) =>
      exec(dir, ["--literal-pathspecs", "ls-files", "-z", ...which, "--", ...paths]).pipe(
        Effect.map((r) =>
          new TextDecoder()
            .decode(r.stdout)
            .split("\0")
            .filter((p) => p !== "")
        )
      )
    // No names, no call: `add --update` without a path would stage every tracked change of the clone.
    const stage = (names: ReadonlyArray<string>, update: boolean) =>
      names.length === 0
        ? Effect.void
        : exec(dir, ["--literal-pathspecs", "add", ...(update ? ["--update"] : []), "--", ...names])
    yield* stage(yield* listed(["--cached"]), true)
    yield* stage(yield* listed(["--others", "--exclude-standard"]), false)
  })

  let known: ReadonlyArray<string> | undefined
  const identity = Effect.fn("Git.identity")(function* (dir: string) {
    if (known === undefined) {
      const name = yield* run(dir, ["config", "--get", "user.name"])
      const email = yield* run(dir, ["config", "--get", "user.email"])
      known = name.exitCode === 0 && email.exitCode === 0 ? [] : FALLBACK_IDENTITY
    }
    return known
  })

  const commit = Effect.fn("Git.commit")(function* (dir: string, message: string) {
    const staged = yield* run(dir, ["diff", "--cached", "--quiet"])
    if (staged.exitCode === 0) return Option.none<string>()
    yield* exec(dir, [...(yield* identity(dir)), "commit", "--quiet", "--no-verify", "-m", message])
    const head = yield* exec(dir, ["rev-parse", "HEAD"])
    return Option.some(text(head.stdout))
  })

  const push = Effect.fn("Git.push")(function* (dir: string, ref: string) {
    yield* guard(checkRef(ref))
    yield* exec(dir, ["push", "--quiet", "--", "origin", `refs/heads/${ref}:refs/heads/${ref}`])
  })

  const rebase = Effect.fn("Git.rebase")(function* (dir: string, onto: string) {
    const r = yield* run(dir, [...(yield* identity(dir)), "rebase", "--quiet", onto])
    if (r.exitCode !== 0) {
      yield* run(dir, ["rebase", "--abort"])
      return yield* new CommandFailed({ command: `git rebase ${onto}`, exitCode: r.exitCode, stderr: r.stderr })
    }
  })

  const clean = Effect.fn("Git.clean")(function* (dir: string) {
    yield* exec(dir, ["reset", "--quiet", "--hard", "HEAD"])
    yield* exec(dir, ["clean", "-q", "-f", "-d"])
  })

  return {
    clone,
    defaultBranch,
    health,
    revs,
    recover,
    checkIgnore,
    fetch,
    resolve,
    isAncestor,
    currentBranch,
    checkout,
    listTree,
    readBlobs,
    showFile,
    add,
    commit,
    push,
    rebase,
    clean
  }
}

export const layer: Layer.Layer<Git, never, Shell> = Layer.effect(Git, Effect.map(Shell, make))
