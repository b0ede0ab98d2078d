/** RunStatus: where the run in progress stands, in words (what is done, what is not), for the line printed when it is interrupted. */
import { Context, Effect } from "effect"

export interface RunStatusShape {
  /** Records the run's current step. */
  readonly set: (text: string) => void
  /** The last step recorded, if any. */
  readonly get: () => string | undefined
  /** Marks the run as one that a stop signal ends normally (a server, the scheduler): it then exits 0. */
  readonly untilStopped: () => void
  readonly isUntilStopped: () => boolean
}

const ignored: RunStatusShape = {
  set: () => {},
  get: () => undefined,
  untilStopped: () => {},
  isUntilStopped: () => false
}

/** The run's status; by default it records nothing (a library caller has no interrupt line to print). */
export class RunStatus extends Context.Reference<RunStatus>()("agentsync/RunStatus", { defaultValue: () => ignored }) {}

/** A status that keeps the last step recorded. */
export const make = (): RunStatusShape => {
  let text: string | undefined
  let untilStopped = false
  return {
    set: (t) => {
      text = t
    },
    get: () => text,
    untilStopped: () => {
      untilStopped = true
    },
    isUntilStopped: () => untilStopped
  }
}

/** Records where the run stands: what has been done and what has not. */
export const note = (text: string): Effect.Effect<void> =>
  Effect.flatMap(RunStatus, (status) => Effect.sync(() => status.set(text)))

/** Declares that this run goes on until SIGINT or SIGTERM, which end it normally (exit 0 once it has stopped cleanly). */
export const runsUntilStopped: Effect.Effect<void> = Effect.flatMap(RunStatus, (status) =>
  Effect.sync(() => status.untilStopped())
)
