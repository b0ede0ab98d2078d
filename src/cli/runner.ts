/** How a command tree runs on argv: global options, help, usage problems, and how a failure becomes a message and an exit code. */
import * as Command from "@effect/cli/Command"
import * as ValidationError from "@effect/cli/ValidationError"
import { Cause, ConfigError, Console, Effect, Exit, Layer, Logger, LogLevel } from "effect"
import { ExitCode, exitCodeOf, isSyncError, messageLines } from "../errors.js"
import { ProgressReporter } from "../services/Progress.js"
import { type Globals, helpHint, preprocess, type UsageProblem } from "./argv.js"
import { errorLine, useColor } from "./color.js"
import { render } from "./help.js"
import { ExitWith, errorFields, failureDocument, Reported } from "./output.js"
import { progressFor } from "./progress.js"
import { CliGlobals } from "./root.js"
import { find, specOf, textOf } from "./spec.js"

export const VERSION = "0.1.0"

/**
 * Node's platform (file system, terminal, child processes), initialised only when a command runs: help, completion
 * and usage errors answer without it, which is a tenth of their start-up.
 */
const nodeContext = Layer.unwrapEffect(
  Effect.map(
    Effect.promise(() => import("@effect/platform-node/NodeContext")),
    (m) => m.layer
  )
)

/** Log lines only ever on stderr, as text or JSON, from --log-level on (Effect's default otherwise). */
const logging =
  (g: Globals) =>
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
    const logger = Logger.withConsoleError(g.logFormat === "json" ? Logger.jsonLogger : Logger.logfmtLogger)
    const level = LogLevel.allLevels.find((l) => l._tag.toLowerCase() === g.logLevel)
    const logged = Effect.provide(self, Logger.replace(Logger.defaultLogger, logger))
    return level === undefined ? logged : Logger.withMinimumLogLevel(logged, level)
  }

/** A usage mistake found before parsing, said once on stderr (and as the document with --json): exit 2. */
const usageProblem = (g: Globals, problem: UsageProblem) =>
  Effect.as(
    Effect.zipRight(
      Console.error([errorLine(g, problem.message), ...problem.details].join("\n")),
      g.json
        ? Console.log(
            JSON.stringify(
              { error: { tag: "UsageError", message: problem.message, suggestions: problem.suggestions } },
              null,
              2
            )
          )
        : Effect.void
    ),
    ExitCode.Usage
  )

/** @effect/cli's words for a value that is not of its type (`'abc' is not a integer`): the value and the type. */
const NOT_OF_TYPE = /^'(.*)' is not a (integer|float)$/s

/**
 * A usage error @effect/cli found in its own words ("Missing argument <NAME>", "'abc' is not a integer"), as this
 * CLI words its errors (`invalid value "abc": not an integer`, as argv.ts says it of an option's value).
 */
const usageMessage = (error: ValidationError.ValidationError) => {
  const text = textOf(error.error).trim()
  const typed = NOT_OF_TYPE.exec(text)
  if (typed !== null)
    return `invalid value ${JSON.stringify(typed[1])}: not ${typed[2] === "integer" ? "an integer" : "a number"}`
  return text.replace(/^[A-Z](?=[a-z])/, (c) => c.toLowerCase())
}

/**
 * The exit code of a failure; its message goes to stderr, and with --json its document to stdout. A usage error
 * from a command (`usage`) was said when it was found; one @effect/cli found while parsing (`parsing`) is said
 * here, as every other error is, with where help is.
 */
const failed = (g: Globals, cause: Cause.Cause<unknown>, parsing: { readonly path: ReadonlyArray<string> } | false) => {
  const failure = Cause.failureOption(cause)
  const error = failure._tag === "Some" ? failure.value : undefined
  const inner = error instanceof Reported ? error.error : error
  const document = (doc: string) => (g.json ? Console.log(doc) : Effect.void)
  if (inner instanceof ExitWith) return Effect.succeed(inner.code)
  if (ValidationError.isValidationError(inner)) {
    const message = usageMessage(inner)
    const said =
      parsing === false ? Effect.void : Console.error(`${errorLine(g, message.split("\n"))}\n${helpHint(parsing.path)}`)
    return Effect.as(
      Effect.zipRight(said, document(JSON.stringify({ error: { tag: "UsageError", message } }, null, 2))),
      ExitCode.Usage
    )
  }
  if (isSyncError(inner))
    return Effect.as(
      Effect.zipRight(Console.error(errorLine(g, messageLines(inner))), document(failureDocument(error))),
      exitCodeOf(inner)
    )
  // A malformed environment variable read through Effect's Config: a usage problem, named.
  if (ConfigError.isConfigError(inner)) {
    const message = `invalid configuration: ${String(inner)}`
    return Effect.as(
      Effect.zipRight(
        Console.error(errorLine(g, message.split("\n"))),
        document(JSON.stringify({ error: { tag: "ConfigError", message } }, null, 2))
      ),
      ExitCode.Usage
    )
  }
  const pretty = Cause.pretty(cause)
  return Effect.as(
    Effect.zipRight(
      Console.error(`unexpected error: ${pretty}`),
      document(JSON.stringify({ error: { ...errorFields(inner ?? pretty), tag: "Unexpected" } }, null, 2))
    ),
    ExitCode.Failure
  )
}

/**
 * A command tree made runnable: `run` runs it on argv and resolves to the process exit code. Global options are
 * taken from anywhere before `--`; errors are printed once, on stderr, and with --json as one document on stdout.
 */
export const mainFor = <Name extends string, R, E, A>(command: Command.Command<Name, R, E, A>) => {
  const tree = specOf(command)
  const run = (argv: ReadonlyArray<string>) => {
    const parsed = preprocess(tree, argv.slice(2))
    const g = parsed.globals
    if (parsed._tag === "Usage") return usageProblem(g, parsed.problem)
    if (parsed._tag === "Help") {
      const page = render(find(tree, parsed.path) ?? tree, {
        width: process.stdout.isTTY ? (process.stdout.columns ?? 80) : 80,
        color: useColor(g.color, process.stdout.isTTY === true)
      })
      return Effect.as(
        Effect.sync(() => process.stdout.write(page)),
        ExitCode.Ok
      )
    }
    // Long steps report to the progress port; on a terminal it is drawn on stderr, with the run's elapsed time at the end.
    const progress = progressFor(g)
    // @effect/cli prints a parse error itself, in its own words, before it fails: until a command runs, its lines
    // on stderr are left out, and `failed` says the error as it says every other.
    let running = false
    const cli = Command.run(
      Command.transformHandler(command, (handler) =>
        Effect.zipRight(
          Effect.sync(() => {
            running = true
          }),
          handler
        )
      ),
      { name: "agentsync", version: VERSION }
    )
    const parserQuiet = <A, E, R>(self: Effect.Effect<A, E, R>) =>
      Effect.consoleWith((console) =>
        Effect.withConsole(self, {
          ...console,
          error: (...args: ReadonlyArray<unknown>) => (running ? console.error(...args) : Effect.void)
        })
      )
    return cli([...argv.slice(0, 2), ...parsed.argv]).pipe(
      parserQuiet,
      Effect.provideService(CliGlobals, g),
      Effect.provideService(ProgressReporter, progress),
      Effect.provide(nodeContext),
      logging(g),
      Effect.exit,
      Effect.tap((exit) => Effect.sync(() => progress.finish(Exit.isSuccess(exit)))),
      Effect.flatMap((exit) =>
        Exit.isSuccess(exit) ? Effect.succeed(ExitCode.Ok) : failed(g, exit.cause, !running && { path: parsed.path })
      )
    )
  }
  return { tree, run }
}
