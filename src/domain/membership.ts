/** Bundle membership: the one list of what file sync carries, used by client and server alike, plus ignore globs. */

import { builtinSegment, ignoreRulesOf } from "./membershipWalk.js"

/** The top-level folders of `services/` that file sync carries. */
export const MEMBERSHIP: ReadonlyArray<string> = [
  "agents",
  "skills",
  "content",
  "access-control",
  "config",
  "profiles",
  "mcp",
  "ai",
  "web",
  "plugins",
  "hooks"
]

/** The ignore file at the root of `services/`, one glob a line, `#` comments, `!` to re-include. */
export const IGNORE_FILE = ".agentsyncignore"

/** Always left out: editor and OS litter, and agentsync's own temporary files. */
export const BUILTIN_IGNORES = [".DS_Store", "*.swp", "*~", ".agentsync-tmp-*", ".git"]

/** Compiles a glob (`*`, `**`, `?`, `[...]`) to a RegExp over POSIX relative paths. */
export const globToRegExp = (glob: string): RegExp => {
  let g = glob.trim()
  const anchored = g.startsWith("/")
  if (anchored) g = g.slice(1)
  if (g.endsWith("/")) g = `${g}**`
  let re = ""
  for (let i = 0; i < g.length; i++) {
    const c = g.charAt(i)
    if (c === "*") {
      if (g[i + 1] === "*") {
        const slashAfter = g[i + 2] === "/"
        re += slashAfter ? "(?:.*/)?" : ".*"
        i += slashAfter ? 2 : 1
      } else re += "[^/]*"
    } else if (c === "?") re += "[^/]"
    else if (c === "[") {
      const end = g.indexOf("]", i + 1)
      if (end === -1) re += "\\["
      else {
        re += `[${g
          .slice(i + 1, end)
          .replace(/^!/, "^")
          .replace(/\\/g, "\\\\")}]`
        i = end
      }
    } else re += c.replace(/[.+^${}()|\\]/g, "\\$&")
  }
  // A pattern with no slash matches at any depth, as in .gitignore: some whole segment matches it (written as a
  // search for that segment, much cheaper than `^(?:.*/)?…$`, when the pattern cannot itself span a `/`).
  if (!anchored && !glob.includes("/"))
    return re.includes(".*") ? new RegExp(`^(?:.*/)?${re}(?:/.*)?$`) : new RegExp(`(?:^|/)${re}(?:/|$)`)
  return new RegExp(`^${re}(?:/.*)?$`)
}

const TOP = new Set(MEMBERSHIP)

const builtinIgnored = (path: string): boolean => {
  let from = 0
  for (let to = path.indexOf("/"); to !== -1; to = path.indexOf("/", from)) {
    if (builtinSegment(path.slice(from, to))) return true
    from = to + 1
  }
  return builtinSegment(path.slice(from))
}

/**
 * Whether a tree path may travel in a bundle at all: inside one of the membership folders (not the folder's
 * own name) or the ignore file itself, and nothing the built-in ignores leave out (`.git`, agentsync's temp
 * files, editor litter). The server checks every upload against this and the client every remote path before
 * a pull writes anything; the client's walker also applies `.agentsyncignore`.
 */
export const isMemberPath = (path: string): boolean => {
  if (path === IGNORE_FILE) return true
  const slash = path.indexOf("/")
  return slash > 0 && slash < path.length - 1 && TOP.has(path.slice(0, slash)) && !builtinIgnored(path)
}

export interface Membership {
  readonly includes: (path: string) => boolean
  /**
   * Whether a name at the top of `services/` is left out without being asked: not a membership folder nor the
   * ignore file, and neither the built-in ignores nor `.agentsyncignore` name it (or everything below it).
   */
  readonly unasked: (name: string) => boolean
}

/** Builds the membership test from the contents of `.agentsyncignore` (empty when there is none). */
export const makeMembership = (ignoreText = ""): Membership => {
  // The built-in ignores are part of isMemberPath, checked first: an ignore file cannot re-include them.
  type Rule = { readonly negate: boolean; readonly re: RegExp }
  const rules: Array<Rule> = []
  for (const raw of ignoreText.split(/\r?\n/)) {
    const line = raw.trim()
    if (line === "" || line.startsWith("#")) continue
    const negate = line.startsWith("!")
    rules.push({ negate, re: globToRegExp(negate ? line.slice(1) : line) })
  }
  // The last matching rule decides; consecutive rules of the same polarity act as one, so each run of them is
  // tested as one alternation (one regex per file instead of one per rule: the test runs for every file).
  const groups: Array<{ readonly negate: boolean; readonly rules: [Rule, ...Array<Rule>] }> = []
  for (const r of rules) {
    const last = groups[groups.length - 1]
    if (last !== undefined && last.negate === r.negate) last.rules.push(r)
    else groups.push({ negate: r.negate, rules: [r] })
  }
  const runs = groups.map(({ negate, rules: [first, ...more] }) => ({
    negate,
    re: more.length === 0 ? first.re : new RegExp([first, ...more].map((r) => `(?:${r.re.source})`).join("|"))
  }))
  const ruled = (path: string) => {
    let included = true
    for (const r of runs) if (r.re.test(path)) included = r.negate
    return included
  }
  const membership: Membership = {
    includes: (path) => isMemberPath(path) && ruled(path),
    unasked: (name) =>
      name !== IGNORE_FILE && !TOP.has(name) && !builtinSegment(name) && ruled(name) && ruled(`${name}/-`)
  }
  ignoreRulesOf.set(membership, ruled)
  return membership
}

/** One name at the top of `services/`, and whether it is a folder (a link to one is not). */
export interface TopEntry {
  readonly name: string
  readonly folder: boolean
}

/**
 * What at the top of `services/` file sync leaves out unasked (`Membership.unasked`), from one listing of it:
 * sorted, a folder's name ending in `/`. Push, pull, diff and doctor name these; nothing below the top is looked at.
 */
export const leftOutAtTop = (membership: Membership, entries: Iterable<TopEntry>): Array<string> => {
  const out: Array<string> = []
  for (const e of entries) if (membership.unasked(e.name)) out.push(e.folder ? `${e.name}/` : e.name)
  return out.sort()
}
