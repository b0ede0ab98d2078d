/** Which test files share their workers (vitest's `shared` project) and what a shared file must never do. */
import { readdirSync } from "node:fs"
import { join } from "node:path"

/**
 * Of these folders, the files named stay in a process of their own: they set the environment (git's isolation,
 * XDG_CACHE_HOME, AGENTSYNC_*) or pass it on changed, mock or spy on a module, set the umask, keep a map on
 * `globalThis`, count a module's threads, read the process's memory, or write to its stdout; the stage-thread files
 * test a thread's first start and its end. A name ending in `*` is a prefix.
 */
const KEPT_APART: Readonly<Record<string, ReadonlyArray<string>>> = {
  api: ["openapi"],
  cli: ["output"],
  programs: ["dbSync", "filesDelta", "filesHandoff", "filesPullAhead", "localSyncMode", "skillSync*"],
  server: ["accessLog", "deploy", "dockerfile", "downloadPool", "heapGrowth", "uploadBatches"],
  services: ["Git", "SyncApiGet", "WorkspaceRead", "embeddedTemplate", "stateReadAhead"],
  "stages/files": ["stageThread*"]
}

/** Whole folders whose every file shares its worker. */
const SHARED_TREES = ["domain", "stages/db"]

const named = (names: ReadonlyArray<string>, name: string) =>
  names.some((n) => (n.endsWith("*") ? name.startsWith(n.slice(0, -1)) : name === n))

/** Whether `rel` (`test/cli/x.test.ts`, `/`-separated) shares its worker. */
export const isShared = (rel: string): boolean => {
  const inside = rel.slice("test/".length)
  const slash = inside.lastIndexOf("/")
  if (slash < 0) return true
  const dir = inside.slice(0, slash)
  if (SHARED_TREES.some((t) => dir === t || dir.startsWith(`${t}/`))) return true
  const names = KEPT_APART[dir]
  return names !== undefined && !named(names, inside.slice(slash + 1, -".test.ts".length))
}

/** Every test file below `root`'s test folder, `/`-separated and relative to `root`, sorted. */
export const testFiles = (root: string): ReadonlyArray<string> =>
  (readdirSync(join(root, "test"), { recursive: true }) as Array<string>)
    .map((p) => `test/${p.split("\\").join("/")}`)
    .filter((p) => p.endsWith(".test.ts"))
    .sort()

/** What leaves state behind in a worker for the next file: each is reason enough to keep a file apart. */
export const LEAKS: ReadonlyArray<readonly [RegExp, string]> = [
  [/\bvi\.(mock|doMock|spyOn|stubEnv|stubGlobal|useFakeTimers)\b/, "mocks, spies or fakes a module, a global or time"],
  [/process\.env(\.\w+|\[[^\]]+\])\s*=(?!=)|delete process\.env/, "sets the environment"],
  [/\bisolateGit\(/, "sets the environment (git's isolation)"],
  [/process\.(chdir|umask)\(\s*[^)\s]/, "changes the working folder or the umask"],
  [/process\.(on|once|addListener)\(/, "adds a process listener"],
  [/process\.exitCode\s*=/, "sets the exit code"],
  [/globalThis\.\w+\s*=/, "sets a global"]
]
