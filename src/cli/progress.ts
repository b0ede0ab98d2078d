/**
 * Progress drawn on a terminal's stderr: the phase in progress on one line redrawn in place, then its summary (how
 * much, how long, how fast); nothing at all in a pipe, with --json or --quiet.
 */

import type { PhaseEnd, Progress, ProgressUnit } from "../services/Progress.js"
import { silentProgress } from "../services/Progress.js"
import type { Globals } from "./argv.js"

const amount = (n: number, unit: ProgressUnit) => {
  if (unit !== "bytes") return `${n.toLocaleString("en-US")} ${n === 1 ? unit.replace(/s$/, "") : unit}`
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`
  return `${(n / 1024 / 1024).toFixed(1)} MiB`
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`

export interface Terminal {
  readonly write: (text: string) => unknown
  readonly columns?: number | undefined
}

interface Phase {
  readonly label: string
  readonly total: number | undefined
  readonly unit: ProgressUnit
  readonly started: number
  current: number
}

/**
 * A `Progress` that draws on `out`. A phase that counted nothing and ended within a second leaves no line (a
 * migration check that found nothing to do); any other leaves its summary. `finish` ends the run with one line of
 * its elapsed time when something was drawn.
 */
export const terminalProgress = (
  out: Terminal = process.stderr,
  clock: () => number = () => performance.now()
): Progress & { readonly finish: (ok: boolean) => void } => {
  const began = clock()
  let phase: Phase | undefined
  let lastDraw = 0
  let kept = 0
  let timer: ReturnType<typeof setInterval> | undefined
  // One terminal line at most: a line that wraps cannot be redrawn in place.
  // A terminal that reports no size (0 columns) is taken as 80 wide.
  const oneLine = (text: string) => text.slice(0, Math.max((out.columns || 80) - 1, 20))
  const draw = (force: boolean) => {
    if (phase === undefined) return
    const now = clock()
    if (!force && now - lastDraw < 100) return
    lastDraw = now
    const of = phase.total === undefined ? "" : ` of ${amount(phase.total, phase.unit).replace(/ \w+$/, "")}`
    const done = phase.current > 0 || phase.total !== undefined ? ` ${amount(phase.current, phase.unit)}${of}` : ""
    out.write(`\r\x1b[K${oneLine(`${phase.label}…${done} (${seconds(now - phase.started)})`)}`)
  }
  const end = (how: PhaseEnd) => {
    if (phase === undefined) return
    if (timer !== undefined) clearInterval(timer)
    timer = undefined
    const p = phase
    phase = undefined
    const ms = clock() - p.started
    const counted = p.current > 0
    if (how === "done" && !counted && ms < 1000) {
      out.write("\r\x1b[K")
      return
    }
    const rate =
      counted && ms >= 100 && (p.unit === "rows" || p.unit === "bytes")
        ? ` (${amount(Math.round((p.current * 1000) / ms), p.unit)}/s)`
        : ""
    const what = counted ? `${amount(p.current, p.unit)} in ${seconds(ms)}${rate}` : `done in ${seconds(ms)}`
    const summary = how === "done" ? what : `${how} after ${seconds(ms)}`
    out.write(`\r\x1b[K${oneLine(`${p.label}: ${summary}`)}\n`)
    kept++
  }
  return {
    start: (label, total, unit = "files") => {
      end("done")
      phase = { label, total, unit, started: clock(), current: 0 }
      draw(true)
      // The elapsed time moves on while nothing is counted (the embedded database starting).
      timer = setInterval(() => draw(true), 250)
      timer.unref()
    },
    advance: (n) => {
      if (phase === undefined) return
      phase.current += n
      draw(false)
    },
    done: (how = "done") => end(how),
    finish: (ok) => {
      end(ok ? "done" : "failed")
      if (kept > 0) out.write(`${ok ? "done" : "stopped"} in ${seconds(clock() - began)}\n`)
    }
  }
}

/** The progress of a command: drawn on stderr when it is a terminal (not TERM=dumb) and output is for a person. */
export const progressFor = (g: Globals, env: NodeJS.ProcessEnv = process.env) =>
  process.stderr.isTTY === true && !g.json && !g.quiet && env.TERM !== "dumb"
    ? terminalProgress()
    : { ...silentProgress, finish: (_ok: boolean) => {} }
