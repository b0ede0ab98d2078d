/** The terminal side of `skill ui`: raw keys in, changed lines out, commands run by the skill programs, the screen restored on every way out. */
import * as fsSync from "node:fs"
import * as Terminal from "@effect/platform/Terminal"
import { Cause, Config, Effect, Fiber, Option, Queue, Schedule } from "effect"
import { type Command, type Event, init, type Key, update } from "../../domain/skills/panel.js"
import { type Line, view } from "../../domain/skills/panelView.js"
import { isSyncError, NeedsTerminal } from "../../errors.js"
import * as SkillPanel from "../../programs/skillPanel.js"
import type { SkillSync } from "../../programs/skillSync.js"
import type { Git } from "../../services/Git.js"
import { RunStatus } from "../../services/RunStatus.js"
import type { SkillStore } from "../../services/SkillStore.js"
import { enter, frame, leave } from "./ansi.js"

const NAMED = new Set(["up", "down", "pageup", "pagedown", "home", "end", "escape", "backspace"])

/** A key as the panel names it, from what the terminal read; `undefined` for keys the panel has no use for. */
export const keyOf = (i: Terminal.UserInput): Key | undefined => {
  const k = i.key
  if (k.ctrl && k.name === "c") return "ctrl-c"
  if (k.ctrl && k.name === "d") return "q"
  if (NAMED.has(k.name)) return k.name
  if (k.name === "return" || k.name === "enter") return "enter"
  const text = Option.getOrUndefined(i.input)
  if (text !== undefined && !k.ctrl && !k.meta && [...text].length === 1 && text >= " " && text !== "\u007f")
    return text
  return undefined
}

/** NO_COLOR set to anything but the empty string turns colours off (no-color.org). */
const noColor = Config.string("NO_COLOR").pipe(
  Config.map((v) => v !== ""),
  Config.withDefault(false)
)

const messageOf = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure) && isSyncError(failure.value)) return failure.value.message
  return Cause.pretty(cause).split("\n")[0] ?? "failed"
}

/** Runs a panel command with the skill programs; every outcome, failure included, comes back as an event. */
const perform = (
  c: Exclude<Command, { _tag: "None" | "Quit" }>
): Effect.Effect<Event, never, SkillSync | SkillStore | Git> => {
  const run: Effect.Effect<Event, unknown, SkillSync | SkillStore | Git> =
    c._tag === "Load"
      ? SkillPanel.rows(c.fetch)
      : c._tag === "Sync"
        ? SkillPanel.syncRow(c.row, c.prefer)
        : SkillPanel.diffRow(c.row)
  return Effect.catchAllCause(run, (cause) =>
    Cause.isInterruptedOnly(cause) ? Effect.interrupt : Effect.succeed({ _tag: "Failed", message: messageOf(cause) })
  )
}

/** The panel: full screen until q or Esc (exit 0) or Ctrl-C (an interrupt, exit 130); refuses without a terminal. */
export const runPanel = Effect.fn("SkillUi.run")(function* () {
  const terminal = yield* Terminal.Terminal
  if (process.stdout.isTTY !== true || process.stdin.isTTY !== true)
    return yield* new NeedsTerminal({ command: "agentsync skill ui", instead: "agentsync skill status --json" })
  const color = !(yield* noColor)
  const status = yield* RunStatus
  return yield* Effect.scoped(
    Effect.gen(function* () {
      // The screen is restored when the scope closes (q, an error, an interrupt), and at process exit as a last resort.
      let shown = false
      const restore = () => {
        if (!shown) return
        shown = false
        try {
          fsSync.writeSync(1, leave)
        } catch {
          // stdout is gone: there is no screen left to restore.
        }
      }
      yield* Effect.acquireRelease(
        Effect.sync(() => {
          process.stdout.write(enter)
          shown = true
          process.once("exit", restore)
        }),
        () =>
          Effect.sync(() => {
            process.off("exit", restore)
            restore()
          })
      )
      const events = yield* Queue.unbounded<Event>()
      const input = yield* terminal.readInput
      yield* input.take.pipe(
        Effect.flatMap((i) => {
          const key = keyOf(i)
          return key === undefined ? Effect.void : events.offer({ _tag: "Key", key })
        }),
        Effect.forever,
        Effect.ignore,
        Effect.forkScoped
      )
      const onResize = () =>
        events.unsafeOffer({ _tag: "Resize", columns: process.stdout.columns, rows: process.stdout.rows })
      yield* Effect.acquireRelease(
        Effect.sync(() => process.stdout.on("resize", onResize)),
        () => Effect.sync(() => process.stdout.off("resize", onResize))
      )
      yield* events.offer({ _tag: "Tick" }).pipe(Effect.repeat(Schedule.spaced("100 millis")), Effect.forkScoped)

      let [state, command] = init({ columns: yield* terminal.columns, rows: yield* terminal.rows })
      let screen: ReadonlyArray<Line> | undefined
      let drawn: typeof state | undefined
      let running: Fiber.RuntimeFiber<void> | undefined
      for (;;) {
        if (command._tag === "Quit") {
          if (running !== undefined) yield* Fiber.interrupt(running)
          if (!command.interrupted) return
          // Ctrl-C in raw mode is a key, not a signal: raised as the signal, it ends the run as Ctrl-C does elsewhere.
          status.set("left the skill panel; what its actions completed stays")
          process.kill(process.pid, "SIGINT")
          return yield* Effect.never
        }
        if (command._tag !== "None")
          running = yield* perform(command).pipe(
            Effect.flatMap((e) => events.offer(e)),
            Effect.asVoid,
            Effect.forkScoped
          )
        if (state !== drawn) {
          const next = view(state, state.size)
          const bytes = frame(screen, next, color)
          if (bytes !== "") yield* terminal.display(bytes)
          screen = next
          drawn = state
        }
        const event = yield* events.take
        // A new size: every line is drawn again, over whatever the terminal's reflow left.
        if (event._tag === "Resize") screen = undefined
        ;[state, command] = update(state, event)
      }
    })
  )
})
