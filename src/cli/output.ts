/** Output of the command line: one JSON document on stdout with --json, else human text; logs go to stderr. */
import { Console, Effect } from "effect"
import { globals } from "./root.js"

/** Prints the result of a command: `value` as JSON with --json, else the text `human` makes. */
export const emit = (value: unknown, human: () => string) =>
  Effect.flatMap(globals, (g) => (g.json ? Console.log(JSON.stringify(value, null, 2)) : Console.log(human())))

/** A line for a person on stderr, never mixed into --json output. */
export const note = (line: string) => Console.error(line)

/** A fixed-width table for terminal output. */
export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string | number>>): string => {
  const all = [header, ...rows.map((r) => r.map(String))]
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)))
  return all
    .map((r) =>
      r
        .map((c, i) => (c ?? "").padEnd(widths[i]!))
        .join("  ")
        .trimEnd()
    )
    .join("\n")
}
