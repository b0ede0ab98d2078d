/** `agentsync skill ui`: the command, its panel's code loaded only when it runs. */
import * as Command from "@effect/cli/Command"
import { Effect } from "effect"
import { ProgressReporter, silentProgress } from "../../services/Progress.js"

export const ui = Command.make("ui", {}, () =>
  Effect.flatMap(
    Effect.promise(() => import("./run.js")),
    // The panel draws its own screen: the steps it runs report no progress lines over it.
    (Panel) => Effect.provideService(Panel.runPanel(), ProgressReporter, silentProgress)
  )
).pipe(
  Command.withDescription(
    "a full-screen panel of every unit and tool: sync (s), diff (d), settle a conflict (h/r), fetch (u), filter (/); needs a terminal (scripts: skill status --json)"
  )
)
