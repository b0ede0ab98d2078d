/** Progress of long stages (bundle, upload, download) on a terminal's stderr; silent elsewhere. */
import { Effect } from "effect"

export interface Progress {
  /** A new phase: its label and, when known, the total of its unit. */
  readonly start: (label: string, total?: number, unit?: "files" | "bytes") => void
  readonly advance: (amount: number) => void
  readonly done: () => void
}

export const silentProgress: Progress = { start: () => {}, advance: () => {}, done: () => {} }

const human = (n: number, unit: "files" | "bytes") => {
  if (unit === "files") return `${n}`
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`
  return `${(n / 1024 / 1024).toFixed(1)} MiB`
}

/** One line, redrawn at most every 100 ms, on the given stream (stderr), never on stdout. */
export const ttyProgress = (out: NodeJS.WriteStream = process.stderr): Progress => {
  let label = ""
  let total: number | undefined
  let unit: "files" | "bytes" = "files"
  let current = 0
  let last = 0
  const draw = (force: boolean) => {
    const now = Date.now()
    if (!force && now - last < 100) return
    last = now
    const of = total === undefined ? "" : ` / ${human(total, unit)}`
    out.write(`\r\x1b[K${label}: ${human(current, unit)}${of}${unit === "files" ? " files" : ""}`)
  }
  return {
    start: (l, t, u = "files") => {
      label = l
      total = t
      unit = u
      current = 0
      draw(true)
    },
    advance: (n) => {
      current += n
      draw(false)
    },
    done: () => {
      draw(true)
      out.write("\n")
    }
  }
}

/** Progress for a command: drawn only when stderr is a terminal and output is for a person. */
export const progressFor = (json: boolean): Progress => (process.stderr.isTTY && !json ? ttyProgress() : silentProgress)

/** Runs `effect` as one phase of `progress`: started first, and its line ended however the effect ends (an interruption too). */
export const withProgress = <A, E, R>(
  progress: Progress,
  label: string,
  total: number | undefined,
  unit: "files" | "bytes",
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> =>
  Effect.acquireUseRelease(
    Effect.sync(() => progress.start(label, total, unit)),
    () => effect,
    () => Effect.sync(() => progress.done())
  )
