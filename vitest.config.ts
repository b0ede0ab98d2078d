import { availableParallelism } from "node:os"
import { defineConfig } from "vitest/config"
import { SlowFirst } from "./test/support/slowFirst.js"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // A file's time goes mostly to waiting (on the built CLI it spawns, the server, PostgreSQL, git, timers), and each
    // file has its own database, temp folders and loopback ports, so files run side by side: one per core. Vitest's
    // default, cores - 1, ran one file at a time on a 2-core CI machine.
    maxWorkers: Math.max(2, availableParallelism()),
    minWorkers: 1,
    sequence: { sequencer: SlowFirst },
    // dist/ built once, before any file starts, when a file in the run needs it (see the module).
    globalSetup: ["test/support/buildOnce.ts"]
  }
})
