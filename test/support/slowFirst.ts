/**
 * The order test files start in: the longest first, so that the last to start are short and the workers finish
 * together. Vitest's own order goes by the durations it cached on this machine, and without them (a fresh CI
 * checkout) by file size, which started e2e/demo (one test of ~95 s in 44 lines) last, alone on one core.
 */
import { statSync } from "node:fs"
import { relative } from "node:path"
import { BaseSequencer, type TestSpecification } from "vitest/node"

/**
 * Seconds each of the longest files took in a whole run on the 2-core CI machine. A figure need not be exact: it
 * only orders the files, and a file not listed starts after these, the larger first.
 */
export const DURATIONS: Readonly<Record<string, number>> = {
  "test/e2e/demo.test.ts": 96,
  "test/e2e/skill.test.ts": 92,
  "test/e2e/safety.test.ts": 91,
  "test/e2e/deploy.test.ts": 87,
  "test/e2e/package.test.ts": 78,
  "test/e2e/settled.test.ts": 62,
  "test/programs/skillSync.test.ts": 52,
  "test/e2e/db.test.ts": 49,
  "test/e2e/files.test.ts": 40,
  "test/e2e/launcher.test.ts": 37
}

/** `files` (paths relative to the root) in the order to start them: listed by duration, then by `size`, larger first. */
export const slowFirst = (files: ReadonlyArray<string>, size: (file: string) => number): Array<string> => {
  const key = (f: string) => [DURATIONS[f] ?? -1, DURATIONS[f] === undefined ? size(f) : 0] as const
  return [...files].sort((a, b) => {
    const [da, sa] = key(a)
    const [db, sb] = key(b)
    return db - da || sb - sa || (a < b ? -1 : a > b ? 1 : 0)
  })
}

/** Vitest's sequencer with this order, its cache of durations left aside (CI never has one). */
export class SlowFirst extends BaseSequencer {
  override async sort(files: Array<TestSpecification>): Promise<Array<TestSpecification>> {
    const root = this.ctx.config.root
    const byPath = new Map(files.map((f) => [relative(root, f.moduleId).split("\\").join("/"), f]))
    return slowFirst([...byPath.keys()], (f) => statSync(`${root}/${f}`).size).map((f) => byPath.get(f)!)
  }
}
