/** The diff between a unit's repo copy and its home copy (pure): unified hunks per text file; binaries by size and hash; modes and links named. */
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

/** Beyond this many differing lines the script is given up on: the files are shown as wholly replaced. */
const MAX_EDITS = 4000

/** Myers' O((N+M)·D) shortest edit script, on the lines left once the common head and tail are set aside. */
export const editScript = (a: ReadonlyArray<string>, b: ReadonlyArray<string>): ReadonlyArray<Op> => {
  let head = 0
  while (head < a.length && head < b.length && a[head] === b[head]) head++
  let tail = 0
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++
  const x0 = a.slice(head, a.length - tail)
  const y0 = b.slice(head, b.length - tail)
  const middle = middleScript(x0, y0)
  return [
    ...a.slice(0, head).map((line) => ({ op: " " as const, line })),
    ...middle,
    ...a.slice(a.length - tail).map((line) => ({ op: " " as const, line }))
  ]
}

const middleScript = (a: ReadonlyArray<string>, b: ReadonlyArray<string>): ReadonlyArray<Op> => {
  const n = a.length
  const m = b.length
  const replaced = () => [
    ...a.map((line) => ({ op: "-" as const, line })),
    ...b.map((line) => ({ op: "+" as const, line }))
  ]
  if (n === 0 || m === 0) return replaced()
  const max = Math.min(n + m, MAX_EDITS)
  const off = max + 1
  const v = new Int32Array(2 * max + 3)
  const trace: Array<Int32Array> = []
  let found = -1
  for (let d = 0; d <= max && found < 0; d++) {
    trace.push(v.slice())
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[off + k - 1]! < v[off + k + 1]!) ? v[off + k + 1]! : v[off + k - 1]! + 1
      let y = x - k
      while (x < n && y < m && a[x] === b[y]) {
        x++
        y++
      }
      v[off + k] = x
      if (x >= n && y >= m) {
        found = d
        break
      }
    }
  }
  if (found < 0) return replaced()
  // Walk the trace back from (n, m), collecting the snake of each step.
  const out: Array<Op> = []
  let x = n
  let y = m
  for (let d = found; d > 0; d--) {
    const prev = trace[d]!
    const k = x - y
    const pk = k === -d || (k !== d && prev[off + k - 1]! < prev[off + k + 1]!) ? k + 1 : k - 1
    const px = prev[off + pk]!
    const py = px - pk
    while (x > px && y > py) {
      x--
      y--
      out.push({ op: " ", line: a[x]! })
    }
    if (x === px) {
      y--
      out.push({ op: "+", line: b[y]! })
    } else {
      x--
      out.push({ op: "-", line: a[x]! })
    }
  }
  while (x > 0 && y > 0) {
    x--
    y--
    out.push({ op: " ", line: a[x]! })
  }
  return out.reverse()
}

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
    for (let j = 0; j < start; j++) {
      if (ops[j]!.op !== "+") aLine++
      if (ops[j]!.op !== "-") bLine++
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

/** Whether bytes are shown as text: valid UTF-8 without a NUL in the first 8000 bytes (git's rule, plus UTF-8). */
const isText = (bytes: Uint8Array): boolean => {
  if (bytes.subarray(0, 8000).includes(0)) return false
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes)
    return true
  } catch {
    return false
  }
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
