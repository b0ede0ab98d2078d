import { it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { expect } from "vitest"
import { BUILTIN_IGNORES, globToRegExp, isMemberPath, MEMBERSHIP } from "../../src/domain/membership.js"

// The built-in ignores as the globs say, with `.git` in any case: what isMemberPath's string tests must equal.
const reference = (path: string) => {
  const slash = path.indexOf("/")
  return (
    slash > 0 &&
    slash < path.length - 1 &&
    MEMBERSHIP.includes(path.slice(0, slash)) &&
    !BUILTIN_IGNORES.some((g) => globToRegExp(g).test(path)) &&
    !/(?:^|\/)\.git(?:\/|$)/i.test(path)
  )
}

// Segments built from the pieces the ignores are made of, so that hits and near misses are frequent.
const segment = fc
  .array(fc.constantFrom(".git", ".GiT", ".DS_Store", ".swp", "~", ".agentsync-tmp-", "a", ".", "x.md", "-", ""), {
    minLength: 0,
    maxLength: 3
  })
  .map((parts) => parts.join(""))
const path = fc
  .tuple(fc.constantFrom(...MEMBERSHIP, "other", ".git", ""), fc.array(segment, { minLength: 0, maxLength: 4 }))
  .map(([top, rest]) => [top, ...rest].join("/"))

it.prop("isMemberPath equals the built-in ignore globs on every path", [path], ([p]) => {
  expect([p, isMemberPath(p)]).toEqual([p, reference(p)])
})
