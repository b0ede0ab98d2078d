/**
 * The progress port: long steps report their phases here as data (a label, a total, amounts done, how each ended);
 * the command line draws them (cli/progress.ts). Programs never write to the terminal themselves.
 */
import { Context, Effect, Exit, Option } from "effect"

export type ProgressUnit = "files" | "bytes" | "items" | "rows" | "changes"

/** How a phase ended: its summary says so. */
export type PhaseEnd = "done" | "failed" | "interrupted"

export interface Progress {
  /** A new phase: its label and, when known, the total of its unit. */
  readonly start: (label: string, total?: number, unit?: ProgressUnit) => void
  readonly advance: (amount: number) => void
  readonly done: (end?: PhaseEnd) => void
}

export const silentProgress: Progress = { start: () => {}, advance: () => {}, done: () => {} }

/** The progress of this run: what the command line provides (drawn on a terminal), else nothing. */
export class ProgressReporter extends Context.Tag("agentsync/Progress")<ProgressReporter, Progress>() {}

/** The run's progress port, silent when none is provided. */
export const currentProgress: Effect.Effect<Progress> = Effect.map(
  Effect.serviceOption(ProgressReporter),
  Option.getOrElse(() => silentProgress)
)

const endOf = (exit: Exit.Exit<unknown, unknown>): PhaseEnd =>
  Exit.isSuccess(exit) ? "done" : Exit.isInterrupted(exit) ? "interrupted" : "failed"

/** Runs `effect` as one phase of `progress`: started first, and ended however the effect ends (an interruption too). */
export const withProgress = <A, E, R>(
  progress: Progress,
  label: string,
  total: number | undefined,
  unit: ProgressUnit,
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> =>
  Effect.acquireUseRelease(
    Effect.sync(() => progress.start(label, total, unit)),
    () => effect,
    (_, exit) => Effect.sync(() => progress.done(endOf(exit)))
  )

/**
 * Runs `effect` as a phase of the run's progress. `count` says how much of `unit` its result holds (rows a table
 * import wrote), for a summary with a rate when the effect does not `advance` as it goes.
 */
export const phase = <A, E, R>(
  label: string,
  effect: Effect.Effect<A, E, R>,
  options: { readonly total?: number; readonly unit?: ProgressUnit; readonly count?: (a: A) => number } = {}
): Effect.Effect<A, E, R> =>
  Effect.flatMap(currentProgress, (p) => {
    const count = options.count
    const counted = count === undefined ? effect : Effect.tap(effect, (a) => Effect.sync(() => p.advance(count(a))))
    return withProgress(p, label, options.total, options.unit ?? "items", counted)
  })

/** Reports `amount` more done in the current phase. */
export const advance = (amount: number): Effect.Effect<void> =>
  Effect.flatMap(currentProgress, (p) => Effect.sync(() => p.advance(amount)))
