/** A CLI process: a command line on argv, on Node's platform, with the exit code it ends in (each entry bundle runs one). */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect, Exit } from "effect"
import * as RunStatus from "../services/RunStatus.js"
import { releaseStartSignals } from "./startSignals.js"

/** Runs `main` on the process's argv: what each entry bundle does (run.ts, filesRun.ts). */
export const runProcess = (
  main: (argv: ReadonlyArray<string>) => Effect.Effect<number, never, RunStatus.RunStatus>
) => {
  // SIGINT and SIGTERM interrupt the command (runMain's handlers, registered after these): its cleanup runs,
  // then the process ends with 128 + the signal's number and one line on what was and was not done. A second
  // signal ends it at once. A command that runs until stopped (serve, jobs run) ends with 0 when it stops cleanly.
  const EXIT = { SIGINT: 130, SIGTERM: 143 } as const
  let signal: keyof typeof EXIT | undefined
  for (const s of ["SIGINT", "SIGTERM"] as const) {
    process.on(s, () => {
      if (signal !== undefined) process.exit(EXIT[s])
      signal = s
    })
  }
  // The settled check's handlers held the signals while the launcher loaded this bundle: a signal that came in
  // meanwhile is handled here, once this run has started (it interrupts the command, as any other).
  releaseStartSignals()

  const status = RunStatus.make()

  /**
   * Ends the process once stdout and stderr have taken what was written. A one-shot command is done when its
   * program is: left to drain, the event loop waits for idle keep-alive connections to close (measured 0.5–0.7 s
   * of wall and 0.15–0.3 s of CPU after a push's report).
   */
  const exitWhenFlushed = () => {
    let pending = 2
    const done = () => {
      if (--pending === 0) process.exit()
    }
    process.stdout.write("", done)
    process.stderr.write("", done)
  }

  main(process.argv).pipe(
    Effect.flatMap((code) =>
      Effect.sync(() => {
        process.exitCode = code
      })
    ),
    Effect.provideService(RunStatus.RunStatus, status),
    NodeRuntime.runMain({
      disableErrorReporting: true,
      disablePrettyLogger: true,
      teardown: (exit, onExit) => {
        // The exit code is the one main set (process.exitCode); a server or the scheduler that stops by itself
        // still drains.
        if (signal === undefined && Exit.isSuccess(exit) && !status.isUntilStopped()) return exitWhenFlushed()
        if (signal === undefined) return onExit(Exit.isFailure(exit) ? 1 : 0)
        // A server or the scheduler is meant to run until stopped: a clean stop is its success.
        if (status.isUntilStopped() && (Exit.isSuccess(exit) || Exit.isInterrupted(exit))) {
          process.stderr.write(`stopped by ${signal}\n`)
          return onExit(0)
        }
        const done =
          status.get() ??
          "stopped before it finished: what it completed stays, the rest was not done; run it again to finish"
        process.stderr.write(`interrupted by ${signal}: ${done}\n`)
        onExit(EXIT[signal])
      }
    })
  )
}
