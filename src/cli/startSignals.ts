/**
 * The interrupt handlers of a run's start, held from the settled check (dist/settled.cjs) until the CLI process that
 * runs the program (`runProcess`, dist/files.cjs or dist/cli.cjs, loaded next in the same process) has its own: plain
 * Node, shared across the bundles of one process by a global slot. With no handler in between, a signal while the
 * launcher loads the bundle took Node's default (the process killed at once, nothing said).
 */

type Signal = "SIGINT" | "SIGTERM"

const SLOT = Symbol.for("agentsync.cli.startSignals")
const slot = globalThis as { [SLOT]?: ReadonlyArray<readonly [Signal, () => void]> }

/**
 * Installs `handlers` and holds them until `releaseStartSignals`: a signal is reported by them, never by Node's
 * default. Any held before are released first.
 */
export const holdStartSignals = (handlers: ReadonlyArray<readonly [Signal, () => void]>): void => {
  releaseStartSignals()
  for (const [s, h] of handlers) process.on(s, h)
  slot[SLOT] = handlers
}

/**
 * Removes the held handlers: the settled check when it answered the run itself, and the CLI process once its own
 * handlers are in place (so that the count of listeners never falls to none in between, when Node would restore the
 * signal's default).
 */
export const releaseStartSignals = (): void => {
  const held = slot[SLOT]
  delete slot[SLOT]
  for (const [s, h] of held ?? []) process.off(s, h)
}
