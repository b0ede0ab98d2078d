/** The Shell port: runs a program with an argv (never through a shell) and reports its exit code, stdout and stderr. */
import * as PlatformCommand from "@effect/platform/Command"
import * as CommandExecutor from "@effect/platform/CommandExecutor"
import { Chunk, Context, Effect, Layer, Stream } from "effect"
import { CommandFailed } from "../errors.js"

export interface RunOptions {
  readonly cwd?: string | undefined
  /** Added to the inherited environment (with `extendEnv: false`, the whole environment). */
  readonly env?: Readonly<Record<string, string>> | undefined
  readonly extendEnv?: boolean | undefined
  readonly stdin?: Uint8Array | string | undefined
  /** Called with each line of output as it arrives (stdout and stderr alike), so output can be shown while it runs. */
  readonly onLine?: ((line: string, from: "stdout" | "stderr") => Effect.Effect<void>) | undefined
}

export interface RunResult {
  readonly exitCode: number
  readonly stdout: Uint8Array
  readonly stderr: string
}

export interface ShellShape {
  /** Runs to completion whatever the exit code; fails only when the program cannot be started. */
  readonly run: (
    command: string,
    args: ReadonlyArray<string>,
    options?: RunOptions
  ) => Effect.Effect<RunResult, CommandFailed>
  /** Runs to completion; a non-zero exit is a `CommandFailed` carrying the tail of stderr. */
  readonly exec: (
    command: string,
    args: ReadonlyArray<string>,
    options?: RunOptions
  ) => Effect.Effect<RunResult, CommandFailed>
}

export class Shell extends Context.Tag("agentsync/Shell")<Shell, ShellShape>() {}

/** The command as shown in messages: credentials in URLs are masked. */
export const showCommand = (command: string, args: ReadonlyArray<string>): string =>
  [command, ...args].map((a) => a.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@\s]+@/i, "$1***@")).join(" ")

const concat = (parts: ReadonlyArray<Uint8Array>) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

const collect = <E>(stream: Stream.Stream<Uint8Array, E>) =>
  Effect.map(Stream.runCollect(stream), (chunks) => concat(Chunk.toReadonlyArray(chunks)))

/** Collects a stream while handing each complete line (and a last unterminated one) to `onLine`. */
const collectLines = <E>(stream: Stream.Stream<Uint8Array, E>, onLine: (line: string) => Effect.Effect<void>) =>
  Effect.suspend(() => {
    const decoder = new TextDecoder()
    const parts: Array<Uint8Array> = []
    let pending = ""
    return Stream.runForEach(stream, (chunk) => {
      parts.push(chunk)
      const lines = (pending + decoder.decode(chunk, { stream: true })).split("\n")
      pending = lines.pop() ?? ""
      return Effect.forEach(lines, (l) => onLine(l.replace(/\r$/, "")), { discard: true })
    }).pipe(
      Effect.zipRight(
        Effect.suspend(() => {
          const last = (pending + decoder.decode()).replace(/\r$/, "")
          return last === "" ? Effect.void : onLine(last)
        })
      ),
      Effect.map(() => concat(parts))
    )
  })

const decoder = new TextDecoder()

/** The stderr tail kept on a failure: enough to act on, never a whole log. */
const tail = (s: string) => s.split("\n").slice(-20).join("\n").slice(-4000)

export const make = (executor: CommandExecutor.CommandExecutor): ShellShape => {
  const run = Effect.fn("Shell.run")(function* (
    command: string,
    args: ReadonlyArray<string>,
    options: RunOptions = {}
  ) {
    let cmd = PlatformCommand.make(command, ...args)
    if (options.cwd !== undefined) cmd = PlatformCommand.workingDirectory(cmd, options.cwd)
    if (options.env !== undefined) cmd = PlatformCommand.env(cmd, options.env, { extendEnv: options.extendEnv ?? true })
    if (options.stdin !== undefined) {
      const bytes = typeof options.stdin === "string" ? new TextEncoder().encode(options.stdin) : options.stdin
      cmd = PlatformCommand.stdin(cmd, Stream.make(bytes))
    }
    // `Command.string` would succeed on a non-zero exit: start the process and read its exit code instead.
    return yield* Effect.scoped(
      Effect.gen(function* () {
        const proc = yield* executor.start(cmd)
        const onLine = options.onLine
        const read = <E>(stream: Stream.Stream<Uint8Array, E>, from: "stdout" | "stderr") =>
          onLine === undefined ? collect(stream) : collectLines(stream, (line) => onLine(line, from))
        const [stdout, stderr, exitCode] = yield* Effect.all(
          [read(proc.stdout, "stdout"), read(proc.stderr, "stderr"), proc.exitCode],
          {
            concurrency: 3
          }
        )
        return { exitCode: Number(exitCode), stdout, stderr: decoder.decode(stderr) }
      })
    ).pipe(
      Effect.mapError(
        (e) => new CommandFailed({ command: showCommand(command, args), exitCode: -1, stderr: e.message })
      )
    )
  })

  const exec = Effect.fn("Shell.exec")(function* (
    command: string,
    args: ReadonlyArray<string>,
    options: RunOptions = {}
  ) {
    const result = yield* run(command, args, options)
    if (result.exitCode !== 0) {
      return yield* new CommandFailed({
        command: showCommand(command, args),
        exitCode: result.exitCode,
        stderr: tail(result.stderr)
      })
    }
    return result
  })

  return { run, exec }
}

/** The live Shell over the platform's CommandExecutor (NodeContext provides it). */
export const layer: Layer.Layer<Shell, never, CommandExecutor.CommandExecutor> = Layer.effect(
  Shell,
  Effect.map(CommandExecutor.CommandExecutor, make)
)
