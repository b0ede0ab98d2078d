/** Real git fixtures for skill tests: a bare repository as the remote and a working clone that plays "upstream". */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"

/** Isolates git from the machine's configuration (identity, hooks, credential helpers) for this test process. */
export const isolateGit = (root: string) => {
  const empty = nodePath.join(root, "empty-gitconfig")
  fs.writeFileSync(empty, "")
  process.env["GIT_CONFIG_GLOBAL"] = empty
  process.env["GIT_CONFIG_NOSYSTEM"] = "1"
  process.env["HOME"] = nodePath.join(root, "home")
  fs.mkdirSync(process.env["HOME"], { recursive: true })
}

export const tempRoot = (prefix: string) =>
  fs.realpathSync(fs.mkdtempSync(nodePath.join(os.tmpdir(), `agentsync-${prefix}-`)))

const ID = ["-c", "user.name=Upstream", "-c", "user.email=upstream@example.com"]

export const git = (cwd: string, ...args: Array<string>) =>
  execFileSync("git", [...ID, ...args], { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim()

/** A file of a fixture: its text, an executable script, or a symbolic link to a relative target. */
export type FixtureFile = string | { readonly exec: string } | { readonly link: string }

/** Writes one fixture file at an absolute path (its folders made, whatever was there replaced). */
export const place = (abs: string, content: FixtureFile) => {
  fs.mkdirSync(nodePath.dirname(abs), { recursive: true })
  fs.rmSync(abs, { force: true })
  if (typeof content === "string") fs.writeFileSync(abs, content, { mode: 0o644 })
  else if ("exec" in content) {
    fs.writeFileSync(abs, content.exec)
    fs.chmodSync(abs, 0o755)
  } else fs.symlinkSync(content.link, abs)
}

export interface Upstream {
  readonly bare: string
  readonly work: string
  /** Writes (string) or deletes (null) files in the upstream clone, commits and pushes; returns the commit. */
  readonly commit: (files: Record<string, FixtureFile | null>, message?: string) => string
  readonly read: (path: string) => string | undefined
  readonly log: () => ReadonlyArray<string>
  /** The git mode of a path on main (`100644`, `100755`, `120000`), if present. */
  readonly mode: (path: string) => string | undefined
}

/**
 * A bare repository with an initial commit of `files` on `main`. `head` is the branch the bare repository's HEAD
 * names (a plain `git init --bare` names `master`, which may not exist).
 */
export const makeUpstream = (
  root: string,
  files: Record<string, FixtureFile>,
  name = "remote",
  head = "main"
): Upstream => {
  const bare = nodePath.join(root, `${name}.git`)
  const work = nodePath.join(root, `${name}-work`)
  execFileSync("git", ["init", "-q", "--bare", "-b", head, bare])
  execFileSync("git", ["clone", "-q", bare, work], { stdio: "ignore" })
  git(work, "checkout", "-q", "-b", "main")
  const commit = (changes: Record<string, FixtureFile | null>, message = "upstream change") => {
    git(work, "pull", "-q", "--ff-only", "origin", "main").toString()
    for (const [p, content] of Object.entries(changes)) {
      const abs = nodePath.join(work, p)
      if (content === null) fs.rmSync(abs, { force: true })
      else place(abs, content)
    }
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", message)
    git(work, "push", "-q", "origin", "main")
    return git(work, "rev-parse", "HEAD")
  }
  // The first commit has no branch to pull yet.
  for (const [p, content] of Object.entries(files)) place(nodePath.join(work, p), content)
  git(work, "add", "-A")
  git(work, "commit", "-q", "-m", "initial")
  git(work, "push", "-q", "-u", "origin", "main")
  return {
    bare,
    work,
    commit,
    read: (p) => {
      try {
        return execFileSync("git", ["--git-dir", bare, "show", `main:${p}`], {
          encoding: "utf8",
          stdio: ["ignore", "pipe", "ignore"]
        })
      } catch {
        return undefined
      }
    },
    log: () =>
      execFileSync("git", ["--git-dir", bare, "log", "--format=%s", "main"], { encoding: "utf8" }).trim().split("\n"),
    mode: (p) => {
      const line = execFileSync("git", ["--git-dir", bare, "ls-tree", "main", "--", p], { encoding: "utf8" }).trim()
      return line === "" ? undefined : line.split(" ")[0]
    }
  }
}

/**
 * A tree of files under `dir`, as relative path → content, for comparisons: a symbolic link is `-> target`, an
 * executable file's content is followed by ` [+x]`.
 */
export const readTree = (dir: string): Record<string, string> => {
  const out: Record<string, string> = {}
  const walk = (d: string, rel: string) => {
    if (!fs.existsSync(d)) return
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const r = rel === "" ? e.name : `${rel}/${e.name}`
      const abs = nodePath.join(d, e.name)
      if (e.isSymbolicLink()) out[r] = `-> ${fs.readlinkSync(abs)}`
      else if (e.isDirectory()) walk(abs, r)
      else out[r] = `${fs.readFileSync(abs, "utf8")}${fs.statSync(abs).mode & 0o100 ? " [+x]" : ""}`
    }
  }
  walk(dir, "")
  return out
}

export const SAMPLE: Record<string, string> = {
  "README.md": "# team skills\n",
  "skills/pdf/SKILL.md": "---\nname: pdf\n---\nFill PDF forms.\n",
  "skills/pdf/scripts/fill.py": "print('fill')\n",
  "agents/reviewer.md": "You review code.\n",
  "commands/ship.md": "Ship it.\n"
}

/** One unit's entry of a lock.yaml text (source "team"); the lock is JSON below its comment line. */
export const lockedUnit = (text: string | undefined, unit: string): unknown =>
  text === undefined ? undefined : JSON.parse(text.slice(text.indexOf("{"))).sources.team?.units[unit]
