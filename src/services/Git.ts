/** The Git port: the few git operations skill sync needs, over Shell, argv only, prompts off, refs and URLs guarded. */
import { Context, Effect, Either, Layer, Option } from "effect"
import { checkGitUrl, checkRef } from "../domain/skills/guards.js"
import { CommandFailed, type InvalidInput } from "../errors.js"
import { Shell, type ShellShape, showCommand } from "./Shell.js"

export interface TreeEntry {
  readonly path: string
  readonly oid: string
}

export interface GitShape {
  readonly clone: (url: string, dir: string) => Effect.Effect<void, CommandFailed | InvalidInput>
  /** Fetches every branch and tag of origin into remote-tracking refs. */
  readonly fetch: (dir: string) => Effect.Effect<void, CommandFailed>
  /** The commit a revision names, if any. */
  readonly resolve: (dir: string, rev: string) => Effect.Effect<Option.Option<string>, CommandFailed | InvalidInput>
  readonly isAncestor: (dir: string, ancestor: string, descendant: string) => Effect.Effect<boolean, CommandFailed>
  readonly currentBranch: (dir: string) => Effect.Effect<Option.Option<string>, CommandFailed>
  /** Points `branch` at `commit` and makes the work tree exactly that commit (the cache clone is ours). */
  readonly checkout: (dir: string, branch: string, commit: string) => Effect.Effect<void, CommandFailed | InvalidInput>
  /** Every file of a commit with its blob id. */
  readonly listTree: (dir: string, commit: string) => Effect.Effect<ReadonlyArray<TreeEntry>, CommandFailed>
  /** The bytes of many blobs in one process. */
  readonly readBlobs: (dir: string, oids: ReadonlyArray<string>) => Effect.Effect<ReadonlyMap<string, Uint8Array>, CommandFailed>
  /** The bytes of one file at a commit. */
  readonly showFile: (dir: string, commit: string, path: string) => Effect.Effect<Uint8Array, CommandFailed>
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
  LC_ALL: "C"
})

/** Options for every call: no transport helpers (`ext::`), no credential prompts. */
const BASE = ["-c", "protocol.ext.allow=never", "-c", "core.askPass=", "-c", "credential.interactive=never"]

const FALLBACK_IDENTITY = ["-c", "user.name=agentsync", "-c", "user.email=agentsync@localhost"]

const guard = <A>(e: Either.Either<A, InvalidInput>) => (Either.isLeft(e) ? Effect.fail(e.left) : Effect.succeed(e.right))

export const make = (shell: ShellShape): GitShape => {
  const env = gitEnv()
  const run = (dir: string | undefined, args: ReadonlyArray<string>, stdin?: Uint8Array | string) =>
    shell.run("git", [...BASE, ...(dir === undefined ? [] : ["-C", dir]), ...args], { env, stdin })
  const exec = (dir: string | undefined, args: ReadonlyArray<string>, stdin?: Uint8Array | string) =>
    shell.exec("git", [...BASE, ...(dir === undefined ? [] : ["-C", dir]), ...args], { env, stdin }).pipe(
      // Messages show the operation, not the hardening options every call carries.
      Effect.mapError((e) => new CommandFailed({ command: showCommand("git", args), exitCode: e.exitCode, stderr: e.stderr }))
    )
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes).trim()

  const clone = Effect.fn("Git.clone")(function* (url: string, dir: string) {
    yield* guard(checkGitUrl(url))
    yield* exec(undefined, ["clone", "--quiet", "--no-tags", "--", url, dir])
  })

  const fetch = Effect.fn("Git.fetch")(function* (dir: string) {
    yield* exec(dir, ["fetch", "--quiet", "--prune", "--tags", "--force", "--", "origin", "+refs/heads/*:refs/remotes/origin/*"])
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

  const checkout = Effect.fn("Git.checkout")(function* (dir: string, branch: string, commit: string) {
    yield* guard(checkRef(branch))
    yield* exec(dir, ["checkout", "--quiet", "--force", "-B", branch, commit, "--"])
  })

  const listTree = Effect.fn("Git.listTree")(function* (dir: string, commit: string) {
    const r = yield* exec(dir, ["ls-tree", "-r", "-z", "--full-tree", commit, "--"])
    const out: Array<TreeEntry> = []
    for (const line of new TextDecoder().decode(r.stdout).split("\0")) {
      if (line === "") continue
      // <mode> SP <type> SP <oid> TAB <path>; submodules (commit) and symlinks (120000) are not unit files.
      const tab = line.indexOf("\t")
      const [mode, type, oid] = line.slice(0, tab).split(" ")
      if (type !== "blob" || mode === "120000" || oid === undefined) continue
      out.push({ path: line.slice(tab + 1), oid })
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
      const header = new TextDecoder().decode(buf.subarray(at, nl)).split(" ")
      if (header[1] === "missing") {
        return yield* new CommandFailed({ command: "git cat-file --batch", exitCode: 0, stderr: `object ${header[0]} missing` })
      }
      const size = Number(header[2])
      out.set(header[0]!, buf.slice(nl + 1, nl + 1 + size))
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
    yield* exec(dir, ["add", "--all", "--", ...paths])
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

  return { clone, fetch, resolve, isAncestor, currentBranch, checkout, listTree, readBlobs, showFile, add, commit, push, rebase, clean }
}

export const layer: Layer.Layer<Git, never, Shell> = Layer.effect(Git, Effect.map(Shell, make))
