/** Test support: runs the built command line (`dist/bin.js`) as a user would, capturing output and exit code. */
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { staleBecause } from "../../scripts/built.js"

export const BIN = fileURLToPath(new URL("../../dist/bin.js", import.meta.url))
export const REPO = fileURLToPath(new URL("../..", import.meta.url))

/**
 * Fails unless dist/ is a finished build of the current sources (`withTypes`: with declarations). `npm test` builds
 * first; any other run builds once before its files start (`test/support/buildOnce.ts`): a file never builds itself,
 * which removed dist/ under the files running beside it.
 */
export const ensureBuilt = (withTypes = false) => {
  const stale = staleBecause(REPO, withTypes)
  if (stale !== undefined)
    throw new Error(
      `dist/ is not a build of these sources (${stale}): run \`npm run build\`, or vitest, which builds it`
    )
}

export interface RunResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** This environment without DATABASE_URL or any AGENTSYNC_ setting, with `extra` laid over it. */
export const cleanEnv = (extra: Record<string, string | undefined> = {}): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(DATABASE_URL|AGENTSYNC_)/.test(k)) env[k] = v
  }
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k]
    else env[k] = v
  }
  return env
}

export interface Started {
  readonly child: ChildProcess
  /** Resolves when the process has ended, with its exit code (null when a signal ended it) and that signal. */
  readonly done: Promise<RunResult & { readonly signal: NodeJS.Signals | null }>
}

/**
 * Starts `agentsync ARGS` with `env` added to a clean environment (no DATABASE_URL, token or API URL leaks in),
 * killed after `limitMs` if it is still running.
 */
export const start = (
  args: ReadonlyArray<string>,
  options: {
    readonly cwd?: string
    readonly env?: Record<string, string | undefined>
    readonly input?: string
    readonly limitMs?: number
  } = {}
): Started => {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: options.cwd ?? REPO,
    env: cleanEnv(options.env),
    stdio: ["pipe", "pipe", "pipe"]
  })
  let stdout = ""
  let stderr = ""
  child.stdout!.on("data", (d) => {
    stdout += d
  })
  child.stderr!.on("data", (d) => {
    stderr += d
  })
  const timer = options.limitMs === undefined ? undefined : setTimeout(() => child.kill("SIGKILL"), options.limitMs)
  const done = new Promise<RunResult & { readonly signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.on("error", reject)
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      resolve({ code: code ?? 1, signal, stdout, stderr })
    })
  })
  child.stdin!.end(options.input ?? "")
  return { child, done }
}

/** Runs `agentsync ARGS` with `env` added to a clean environment (no DATABASE_URL, token or API URL leaks in). */
export const agentsync = (
  args: ReadonlyArray<string>,
  options: { readonly cwd?: string; readonly env?: Record<string, string | undefined>; readonly input?: string } = {}
): Promise<RunResult> => start(args, options).done

/**
 * Starts `agentsync serve --port 0` with `env` over the current environment and resolves once it listens.
 * The caller stops it (`child.kill()`). `bin`: another build's `dist/bin.js`.
 */
export const startServe = (env: Record<string, string>, cwd: string, bin = BIN) =>
  new Promise<{ url: string; child: ChildProcess }>((resolve, reject) => {
    const child = spawn(process.execPath, [bin, "serve", "--port", "0"], {
      cwd,
      env: { ...process.env, ...env },
      stdio: ["ignore", "ignore", "pipe"]
    })
    let err = ""
    child.stderr.on("data", (d) => {
      err += d
      const m = /listening on (http:\/\/\S+)/.exec(err)
      if (m) resolve({ url: m[1]!, child })
    })
    child.on("exit", (code) => reject(new Error(`serve exited ${code}: ${err}`)))
  })
