/** Unified diffs of text: Myers' shortest edit script over lines, grouped into hunks with context, rendered as `git diff` does. */

/**
 * A text's lines, each with its own line ending: the last has none when the text does not end with one, so
 * "a" and "a\n" differ in their last line and joining the lines gives the text back exactly.
 */
export const linesOf = (text: string): ReadonlyArray<string> => text.match(/[^\n]*\n|[^\n]+$/g) ?? []

export type Op = " " | "-" | "+"

export interface HunkLine {
  readonly op: Op
  readonly text: string
}

export interface Hunk {
  /** 1-based first line in the old text (0 when the hunk holds none of it), and how many lines it spans. */
  readonly oldStart: number
  readonly oldLines: number
  readonly newStart: number
  readonly newLines: number
  readonly lines: ReadonlyArray<HunkLine>
}

/**
 * The shortest edit script from `a` to `b` (Myers 1986, greedy forward search with the furthest-reaching path
 * of each diagonal kept per step, then traced back), after the common start and end are set aside.
 */
export const editScript = (a: ReadonlyArray<string>, b: ReadonlyArray<string>): Array<HunkLine> => {
  let start = 0
  while (start < a.length && start < b.length && a[start] === b[start]) start++
  let endA = a.length
  let endB = b.length
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--
    endB--
  }
  const head = a.slice(0, start).map((text): HunkLine => ({ op: " ", text }))
  const tail = a.slice(endA).map((text): HunkLine => ({ op: " ", text }))
  const x0 = a.slice(start, endA)
  const y0 = b.slice(start, endB)
  return [...head, ...middle(x0, y0), ...tail]
}

/** Past this many differences the script is every old line out, then every new line in (valid, not shortest). */
export const MAX_EDITS = 4000

const middle = (a: ReadonlyArray<string>, b: ReadonlyArray<string>): Array<HunkLine> => {
  const n = a.length
  const m = b.length
  const replaceAll = (): Array<HunkLine> => [
    ...a.map((text): HunkLine => ({ op: "-", text })),
    ...b.map((text): HunkLine => ({ op: "+", text }))
  ]
  if (n === 0 || m === 0) return replaceAll()
  const max = n + m
  const offset = max + 1
  const v = new Int32Array(2 * max + 3)
  // trace[d]: the furthest x of diagonals -d-1 … d+1 before step d (what step d chose from), O(D²) in all.
  const trace: Array<Int32Array> = []
  let found = false
  for (let d = 0; d <= max && !found; d++) {
    if (d > MAX_EDITS) return replaceAll()
    trace.push(v.slice(offset - d - 1, offset + d + 2))
    for (let k = -d; k <= d; k += 2) {
      // v holds every diagonal -max-1 … max+1 and step d reads only -d-1 … d+1: no read is out of range. (Read
      // inline: an accessor function here costs a fifth more time on a diff with many changes.)
      let x =
        k === -d || (k !== d && v[offset + k - 1]! < v[offset + k + 1]!) ? v[offset + k + 1]! : v[offset + k - 1]! + 1
      let y = x - k
      while (x < n && y < m && a[x] === b[y]) {
        x++
        y++
      }
      v[offset + k] = x
      if (x >= n && y >= m) {
        found = true
        break
      }
    }
  }
  // Back from (n, m), last step first: each step came down (an insertion) or right (a deletion), then ran along
  // its diagonal. The lines are collected last first and put in order at the end.
  const out: Array<HunkLine> = []
  const push = (op: Op, lines: Array<string>) => {
    for (const text of lines.reverse()) out.push({ op, text })
  }
  let x = n
  let y = m
  for (const [d, vd] of [...trace.entries()].reverse()) {
    if (d === 0) break
    // This step's row holds diagonals -d-1 … d+1, and k and the diagonal it came from lie within -d … d.
    const at = (k: number): number => vd[k + d + 1]!
    const k = x - y
    const down = k === -d || (k !== d && at(k - 1) < at(k + 1))
    const prevK = down ? k + 1 : k - 1
    const prevX = at(prevK)
    const prevY = prevX - prevK
    push(" ", a.slice(down ? prevX : prevX + 1, x))
    if (down) push("+", b.slice(prevY, prevY + 1))
    else push("-", a.slice(prevX, prevX + 1))
    x = prevX
    y = prevY
  }
  // Step 0 is the diagonal from the start (x = y there).
  push(" ", a.slice(0, x))
  return out.reverse()
}

/** The edit script in hunks, each change with up to `context` unchanged lines around it (3, as `git diff`). */
export const hunksOf = (a: ReadonlyArray<string>, b: ReadonlyArray<string>, context = 3): Array<Hunk> => {
  const script = editScript(a, b)
  const changed = script.map((l, i) => (l.op === " " ? -1 : i)).filter((i) => i >= 0)
  if (changed.length === 0) return []
  // Runs of script indexes to show: each change widened by the context, overlapping or touching ones merged.
  const ranges: Array<[number, number]> = []
  for (const i of changed) {
    const from = Math.max(0, i - context)
    const to = Math.min(script.length, i + context + 1)
    const last = ranges[ranges.length - 1]
    if (last !== undefined && from <= last[1]) last[1] = Math.max(last[1], to)
    else ranges.push([from, to])
  }
  // The ranges are in order and apart: one sweep counts the old and new lines before each.
  let o = 0
  let nw = 0
  let at = 0
  return ranges.map(([from, to]) => {
    for (const l of script.slice(at, from)) {
      if (l.op !== "+") o++
      if (l.op !== "-") nw++
    }
    const lines = script.slice(from, to)
    const oldLines = lines.filter((l) => l.op !== "+").length
    const newLines = lines.filter((l) => l.op !== "-").length
    const hunk = {
      oldStart: oldLines === 0 ? o : o + 1,
      oldLines,
      newStart: newLines === 0 ? nw : nw + 1,
      newLines,
      lines
    }
    o += oldLines
    nw += newLines
    at = to
    return hunk
  })
}

/** The old text with the hunks applied: the new text, when the hunks were made from it. */
export const applyHunks = (old: string, hunks: ReadonlyArray<Hunk>): string => {
  const a = linesOf(old)
  const out: Array<string> = []
  let at = 0
  for (const h of hunks) {
    const start = h.oldLines === 0 ? h.oldStart : h.oldStart - 1
    for (const line of a.slice(at, start)) out.push(line)
    at = Math.max(at, start)
    for (const l of h.lines) {
      if (l.op === "+") out.push(l.text)
      else {
        if (a[at] !== l.text) throw new Error(`hunk does not apply at old line ${at + 1}`)
        if (l.op === " ") out.push(l.text)
        at++
      }
    }
  }
  for (const line of a.slice(at)) out.push(line)
  return out.join("")
}

const range = (start: number, lines: number) => (lines === 1 ? `${start}` : `${start},${lines}`)

/** A unified diff of one file, as `git diff` prints it (`--- a/…`, `+++ b/…`, `@@ … @@`, `\ No newline…`). */
export const unified = (
  path: { readonly old: string | undefined; readonly new: string | undefined },
  oldText: string,
  newText: string
): string => {
  const hunks = hunksOf(linesOf(oldText), linesOf(newText))
  if (hunks.length === 0) return ""
  const out = [
    `--- ${path.old === undefined ? "/dev/null" : `a/${path.old}`}`,
    `+++ ${path.new === undefined ? "/dev/null" : `b/${path.new}`}`
  ]
  for (const h of hunks) {
    out.push(`@@ -${range(h.oldStart, h.oldLines)} +${range(h.newStart, h.newLines)} @@`)
    for (const l of h.lines) {
      const text = l.text.endsWith("\n") ? l.text.slice(0, -1) : l.text
      out.push(`${l.op}${text}`)
      if (!l.text.endsWith("\n")) out.push("\\ No newline at end of file")
    }
  }
  return `${out.join("\n")}\n`
}

/** Whether bytes are text to show line by line: valid UTF-8 without a NUL in them (as git judges, roughly). */
export const isText = (bytes: Uint8Array): boolean => {
  if (bytes.subarray(0, 8000).includes(0)) return false
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes)
    return true
  } catch {
    return false
  }
}
