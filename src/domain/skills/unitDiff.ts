/** The diff between a unit's repo copy and its home copy (pure): unified hunks per text file; binaries by size and hash; modes and links named. */
import { isText, editScript as lineScript } from "../patch.js"
import { kindOf, shaOf } from "./model.js"

/** One file of one side: its digest (mode included) and its bytes (a link's target for a link). */
export interface SideFile {
  readonly digest: string
  readonly bytes: Uint8Array
}

/** A file that differs between the two sides; an absent side is `undefined`. */
export interface FilePair {
  /** Relative to the unit root (`""` for a single-file unit). */
  readonly path: string
  /** How each side's file is named in the diff: its path in the repository and in the tool home. */
  readonly repoName: string
  readonly homeName: string
  readonly repo: SideFile | undefined
  readonly home: SideFile | undefined
}

/** The edit script between two line arrays: each line kept (` `), removed from `a` (`-`) or added from `b` (`+`). */
type Op = { readonly op: " " | "-" | "+"; readonly line: string }

/** Myers' shortest edit script (the one of domain/patch.ts), line by line. */
export const editScript = (a: ReadonlyArray<string>, b: ReadonlyArray<string>): ReadonlyArray<Op> =>
  lineScript(a, b).map((l) => ({ op: l.op, line: l.text }))

const splitLines = (text: string): ReadonlyArray<string> => {
  if (text === "") return []
  const lines = text.split("\n")
  if (lines[lines.length - 1] === "") lines.pop()
  else lines[lines.length - 1] += " (no newline at end)"
  return lines
}

/** Unified hunks (`@@ -a,n +b,m @@`) with `context` lines around each change. */
export const unifiedHunks = (a: string, b: string, context = 3): ReadonlyArray<string> => {
  const ops = editScript(splitLines(a), splitLines(b))
  const out: Array<string> = []
  const changed = ops.map((o) => o.op !== " ")
  let i = 0
  while (i < ops.length) {
    if (!changed[i]) {
      i++
      continue
    }
    // A hunk: from `context` lines before this change to `context` lines after the last change it absorbs.
    const start = Math.max(0, i - context)
    let end = i
    let last = i
    while (end < ops.length && end <= last + 2 * context) {
      if (changed[end]) last = end
      end++
    }
    end = Math.min(ops.length, last + context + 1)
    let aLine = 1
    let bLine = 1
    for (const o of ops.slice(0, start)) {
      if (o.op !== "+") aLine++
      if (o.op !== "-") bLine++
    }
    const body = ops.slice(start, end)
    const aCount = body.filter((o) => o.op !== "+").length
    const bCount = body.filter((o) => o.op !== "-").length
    out.push(`@@ -${aCount === 0 ? aLine - 1 : aLine},${aCount} +${bCount === 0 ? bLine - 1 : bLine},${bCount} @@`)
    for (const o of body) out.push(`${o.op}${o.line}`)
    i = end
  }
  return out
}

const kindWord = (digest: string) => ({ file: "file", exec: "executable", link: "link" })[kindOf(digest)]

const describeSide = (f: SideFile) =>
  kindOf(f.digest) === "link"
    ? `link to ${new TextDecoder().decode(f.bytes)}`
    : `${f.bytes.length} bytes, sha256 ${shaOf(f.digest).slice(0, 12)}`

/** The diff of one file as lines: `--- repo/<path>` / `+++ home/<path>` and its hunks, or a line on what differs. */
export const fileDiff = (f: FilePair): ReadonlyArray<string> => {
  const header = [
    `--- ${f.repo === undefined ? "/dev/null" : `repo/${f.repoName}`}`,
    `+++ ${f.home === undefined ? "/dev/null" : `home/${f.homeName}`}`
  ]
  const { repo, home } = f
  if (repo !== undefined && home !== undefined && shaOf(repo.digest) === shaOf(home.digest))
    return [...header, `mode: repo ${kindWord(repo.digest)}, home ${kindWord(home.digest)}`]
  const textual = (s: SideFile | undefined) => s === undefined || (kindOf(s.digest) !== "link" && isText(s.bytes))
  if (
    !textual(repo) ||
    !textual(home) ||
    kindOf(repo?.digest ?? "") === "link" ||
    kindOf(home?.digest ?? "") === "link"
  )
    return [
      ...header,
      `binary or link: repo ${repo === undefined ? "absent" : describeSide(repo)}; home ${home === undefined ? "absent" : describeSide(home)}`
    ]
  const decode = (s: SideFile | undefined) => (s === undefined ? "" : new TextDecoder().decode(s.bytes))
  const modes =
    repo !== undefined && home !== undefined && kindOf(repo.digest) !== kindOf(home.digest)
      ? [`mode: repo ${kindWord(repo.digest)}, home ${kindWord(home.digest)}`]
      : []
  return [...header, ...modes, ...unifiedHunks(decode(repo), decode(home))]
}

/** The whole unit: each differing file in path order, or one line saying both copies are equal. */
export const unitDiff = (files: ReadonlyArray<FilePair>): ReadonlyArray<string> => {
  if (files.length === 0) return ["home and repo copies are identical"]
  return [...files].sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0)).flatMap(fileDiff)
}
