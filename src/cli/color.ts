/** The one colour decision (--color, NO_COLOR, TERM=dumb, a terminal; never with --json) and the colours of human output. */
import { escapeHidden } from "../domain/text.js"
import type { ColorMode, Globals } from "./argv.js"

/** Whether to colour: `always`, or `auto` on a terminal without NO_COLOR or TERM=dumb. */
export const useColor = (mode: ColorMode, isTTY: boolean, env: NodeJS.ProcessEnv = process.env) =>
  mode === "always" || (mode === "auto" && isTTY && (env.NO_COLOR ?? "") === "" && env.TERM !== "dumb")

/** Colours for human output; each is the identity when colour is off. */
export interface Paint {
  readonly red: (s: string) => string
  readonly green: (s: string) => string
  readonly yellow: (s: string) => string
  readonly bold: (s: string) => string
  readonly cyan: (s: string) => string
  /** A status word or a line about it, coloured by what it means: added green, modified yellow, removed and conflicts red. */
  readonly status: (status: string, text?: string) => string
  /** A file's unified diff as `git diff` colours it: header lines bold, hunk lines cyan, removals red, additions green. */
  readonly patch: (patch: string) => string
}

const sgr = (on: boolean, code: string) => (s: string) => (on ? `\x1b[${code}m${s}\x1b[0m` : s)

/** The colours of a run: on where `colorOn` says so. */
export const paint = (on: boolean): Paint => {
  const red = sgr(on, "31")
  const green = sgr(on, "32")
  const yellow = sgr(on, "33")
  const bold = sgr(on, "1")
  const cyan = sgr(on, "36")
  return {
    red,
    green,
    yellow,
    bold,
    cyan,
    patch: (patch) => {
      const lines = patch.split("\n")
      // The header (`diff --git`, modes, `---`/`+++`, a binary line) is every line before the first hunk.
      const hunk = lines.findIndex((l) => l.startsWith("@@"))
      return lines
        .map((line, i) =>
          i < (hunk === -1 ? lines.length : hunk)
            ? bold(line)
            : line.startsWith("@@")
              ? cyan(line)
              : line.startsWith("-")
                ? red(line)
                : line.startsWith("+")
                  ? green(line)
                  : line
        )
        .join("\n")
    },
    status: (status, text = status) => {
      const s = status.toLowerCase()
      if (s.startsWith("add") || s === "create" || s === "+") return green(text)
      if (s.startsWith("modif") || s === "update" || s === "~" || s.includes("changed") || s.startsWith("behind"))
        return yellow(text)
      if (s.startsWith("remov") || s.startsWith("delet") || s.startsWith("conflict") || s === "-" || s === "!")
        return red(text)
      return text
    }
  }
}

/** The one colour decision for a stream: --color, NO_COLOR, TERM=dumb and a terminal, as for help; never with --json. */
export const colorOn = (g: Globals, stream: { readonly isTTY?: boolean }) =>
  !g.json && useColor(g.color, stream.isTTY === true)

/**
 * `error: message` for stderr, the prefix in red where colour is on: the one place an error reaches a terminal, so
 * each of the message's lines (a string is one line) is shown with its control, format and separator characters
 * escaped (a name in it can neither forge a line nor clear the screen); the newlines between them and the colour are
 * its own. The message itself stays raw, as `--json` and the logs carry it.
 */
export const errorLine = (g: Globals, message: string | ReadonlyArray<string>) => {
  const p = paint(colorOn(g, process.stderr))
  const lines = typeof message === "string" ? [message] : message
  return `${p.bold(p.red("error:"))} ${lines.map(escapeHidden).join("\n")}`
}

/** No colour: for text that may go anywhere. */
export const noPaint: Paint = paint(false)
