/** Output of the command line: one JSON document on stdout with --json (a failure's included), else human text; logs go to stderr. */
import * as Options from "@effect/cli/Options"
import { Console, Data, Effect } from "effect"
import type { IoError } from "../errors.js"
import { colorOn, type Paint, paint } from "./color.js"
import { globals } from "./root.js"
import { writeText } from "./writeOut.js"

/** A failure after a command made its report: with --json, one document holds both. */
export class Reported extends Data.TaggedError("Reported")<{ readonly report: unknown; readonly error: unknown }> {}

/** An exit code that is an answer, not a failure (`diff --exit-code`: 1 when something differs); nothing more is printed. */
export class ExitWith extends Data.TaggedError("ExitWith")<{ readonly code: number }> {}

/** `--exit-code` of every diff: exit 1 when something differs, as `git diff --exit-code`. */
export const exitCodeOption = Options.boolean("exit-code").pipe(
  Options.withDescription("exit 1 when something differs, 0 when all is in step")
)

/** `-p` / `--patch` of a diff: what changed inside each file, as `git diff` shows it. */
export const patchOption = Options.boolean("patch").pipe(
  Options.withAlias("p"),
  Options.withDescription("show what changed inside each file as a unified diff (binaries by size and hash)")
)

/**
 * A diff's report with its patches: with --json one document (the patches in it), else the report's text then
 * each patch, coloured as `git diff` when colour is on (the Paint of the one colour decision).
 */
export const emitPatches = <E = never, R = never>(
  value: unknown,
  human: (paint: Paint) => string,
  patches: ReadonlyArray<{ readonly patch: string }>,
  outcome: Effect.Effect<void, E, R> = Effect.void
) => emit(value, (p) => [human(p), ...patches.map((x) => p.patch(x.patch).trimEnd())].join("\n"), outcome)

/** With --exit-code, ends the run with 1 when `differs`. */
export const exitIfDiffers = (enabled: boolean, differs: boolean) =>
  enabled && differs ? Effect.fail(new ExitWith({ code: 1 })) : Effect.void

/**
 * Prints the result of a command: `value` as JSON with --json, else the text `human` makes (with colours when stdout
 * takes them); then runs `outcome` (the failure the report means, if any). With --json a failed outcome is printed
 * with the report, in one document. Either is written by `writeText` (the JSON, megabytes for a run over thousands
 * of files, in pieces): a reader that has gone ends it quietly, and a write that fails otherwise is an IoError, unless
 * the outcome (run all the same) fails too: then its failure is the run's.
 */
export const emit = <E = never, R = never>(
  value: unknown,
  human: (paint: Paint) => string,
  outcome: Effect.Effect<void, E, R> = Effect.void
): Effect.Effect<void, E | Reported | IoError, R | typeof globals.Identifier> =>
  Effect.flatMap(
    globals,
    (g): Effect.Effect<void, E | Reported | IoError, R> =>
      g.json
        ? Effect.matchEffect(outcome, {
            onFailure: (error) => Effect.fail(new Reported({ report: value, error })),
            onSuccess: () => writeText(JSON.stringify(value, null, 2) ?? String(value))
          })
        : // The outcome runs even when the text cannot be written, and its failure wins (a conflict's exit 3 against
          // a full disk): the write's failure is reported only where the outcome has none.
          Effect.flatMap(Effect.either(writeText(human(paint(colorOn(g, process.stdout))))), (written) =>
            Effect.zipRight(outcome, written)
          )
  )

/** A line for a person on stderr, never mixed into --json output; --quiet leaves it out. */
export const note = (line: string) => Effect.flatMap(globals, (g) => (g.quiet ? Effect.void : Console.error(line)))

/** What an error says in a --json document: its tag, message and own fields (a cause left out). */
export const errorFields = (error: unknown): Record<string, unknown> => {
  if (typeof error !== "object" || error === null) return { tag: "Unexpected", message: String(error) }
  const fields: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(error)) if (k !== "cause" && k !== "_tag" && k !== "_id") fields[k] = v
  const tag = "_tag" in error && typeof error._tag === "string" ? error._tag : "Unexpected"
  const message = error instanceof Error ? error.message : String(error)
  return { tag, message, ...fields }
}

/** The one document a failed command prints with --json: its report (if it made one) and the error. */
export const failureDocument = (error: unknown): string => {
  const [report, inner] = error instanceof Reported ? [error.report, error.error] : [undefined, error]
  const base = typeof report === "object" && report !== null && !Array.isArray(report) ? report : {}
  return JSON.stringify({ ...base, error: errorFields(inner) }, null, 2)
}

export { table, tableOf } from "./table.js"
