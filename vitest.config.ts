import { availableParallelism } from "node:os"
import { defineConfig } from "vitest/config"
import { isShared, testFiles } from "./test/support/sharedFiles.js"
import { SlowFirst } from "./test/support/slowFirst.js"

/** The files that share their workers (see test/support/sharedFiles.ts: which, and why the others do not). */
const SHARED = testFiles(".").filter(isShared)

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // A file's time goes mostly to waiting (on the built CLI it spawns, the server, PostgreSQL, git, timers), and each
    // file has its own database, temp folders and loopback ports, so files run side by side: one per core. Vitest's
    // default, cores - 1, ran one file at a time on a 2-core CI machine.
    maxWorkers: Math.max(2, availableParallelism()),
    minWorkers: 1,
    sequence: { sequencer: SlowFirst },
    // An isolated file starts in a fresh worker that imports Effect, the test runner and the sources again: about 2 s
    // of CPU a file. The shared files keep their workers' imports from one file to the next (the threads pool, not
    // isolated); the rest keep a fresh process each (the forks pool): they start servers, set the environment, mock
    // modules and handle signals.
    poolOptions: { threads: { isolate: false } },
    projects: [
      // First, as a group of its own: the two pools never run side by side, so no more workers than cores.
      { extends: true, test: { name: "shared", include: SHARED, pool: "threads", sequence: { groupOrder: 0 } } },
      {
        extends: true,
        // The shared files left out by a negated pattern, not by `exclude`: a project's own `exclude` would drop the
        // command line's `--exclude` (which CI's second run uses).
        test: {
          name: "isolated",
          include: ["test/**/*.test.ts", ...SHARED.map((p) => `!${p}`)],
          sequence: { groupOrder: 1 }
        }
      }
    ],
    // dist/ built once, before any file starts, when a file in the run needs it; one cache folder of the run's own
    // (see the modules).
    globalSetup: ["test/support/buildOnce.ts", "test/support/cacheHome.ts"]
  }
})
