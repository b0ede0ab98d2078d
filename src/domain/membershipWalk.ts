/** What a tree's walk asks of a membership below the top, one segment at a time; internal, not the library's surface. */

/**
 * Whether one path segment is left out by the built-in ignores, or is one a case-insensitive disk would take for
 * `.git` (`.GIT`, `.Git`…). String tests rather than the globs' regular expressions: this runs for every file of
 * every listing, and the unanchored alternation cost more than the `stat` of the file (the equivalence with
 * `globToRegExp(BUILTIN_IGNORES)` is a property test).
 */
export const builtinSegment = (s: string): boolean =>
  s === ".DS_Store" ||
  s.endsWith(".swp") ||
  s.endsWith("~") ||
  s.startsWith(".agentsync-tmp-") ||
  (s.length === 4 && s.toLowerCase() === ".git")

/**
 * The ignore file's rules alone (true: the path is taken) of each membership `makeMembership` built, so that a walk
 * that knows a path's folders pass `isMemberPath` (a membership top folder, no folder a built-in ignore names) asks
 * only its last segment and the rules, where `includes` takes the whole path apart again. A membership made
 * elsewhere has none here, and its walk asks `includes`.
 */
export const ignoreRulesOf = new WeakMap<object, (path: string) => boolean>()
