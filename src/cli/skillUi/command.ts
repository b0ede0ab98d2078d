/** `agentsync skill ui`: the command, its panel's code loaded only when it runs. */
import * as Command from "@effect/cli/Command"
import { Effect } from "effect"

export const ui = Command.make("ui", {}, () =>
  Effect.flatMap(
    Effect.promise(() => import("./run.js")),
    (Panel) => Panel.runPanel()
  )
).pipe(
  Command.withDescription(
    "a full-screen panel of every unit and tool: sync (s), diff (d), settle a conflict (h/r), fetch (u), filter (/); needs a terminal (scripts: skill status --json)"
  )
)
