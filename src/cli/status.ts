/** `agentsync status`: one screen of how every part of the project stands; the exit code says it for scripts. */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Duration, Effect } from "effect"
import type { PartStatus, StatusReport } from "../programs/status.js"
import { ExitWith, emit, table } from "./output.js"
import { withProgram } from "./program.js"

/** The exit code when no part differs but one could not be asked (documented in the help and README). */
export const CANNOT_TELL_EXIT = 4

const timeout = Options.integer("timeout").pipe(
  Options.withDescription("seconds each part may take before it says 'cannot tell'"),
  Options.withDefault(20)
)

const stateText = (p: PartStatus) =>
  p.state === "in-step"
    ? "in step"
    : p.state === "changes"
      ? `${p.changes} change${p.changes === 1 ? "" : "s"}`
      : p.state === "cannot-tell"
        ? "cannot tell"
        : "not configured"

const human = (r: StatusReport) => () =>
  [
    table(
      ["part", "state", "details"],
      r.parts.map((p) => [p.part, stateText(p), p.detail])
    ),
    summary(r)
  ].join("\n")

/** The line under the table: what differs, else which parts were compared (none configured is not "in step"). */
export const summary = (r: StatusReport): string => {
  const named = (state: PartStatus["state"]) => r.parts.filter((p) => p.state === state).map((p) => p.part)
  const unconfigured = named("not-configured")
  if (!r.in_step) {
    const cannot = named("cannot-tell").length
    return `${named("changes").length} part(s) differ${cannot > 0 ? `, ${cannot} cannot tell` : ""}`
  }
  const inStep = named("in-step")
  if (inStep.length === 0) return "nothing to compare yet: no part is configured (each line says what sets it up)"
  return unconfigured.length === 0
    ? "all in step"
    : `in step: ${inStep.join(", ")}; not configured: ${unconfigured.join(", ")}`
}

/** 0 all in step, 1 something differs, 4 nothing known to differ but a part could not tell. */
export const exitOf = (r: StatusReport) =>
  r.parts.some((p) => p.state === "changes") ? 1 : r.parts.some((p) => p.state === "cannot-tell") ? CANNOT_TELL_EXIT : 0

export const status = Command.make("status", { timeout }, (o) =>
  Effect.gen(function* () {
    const r = yield* withProgram(
      () => import("../programs/status.js"),
      (program) => program.status({ timeout: Duration.seconds(Math.max(1, o.timeout)) })
    )
    const code = exitOf(r)
    yield* emit(r, human(r))
    if (code !== 0) return yield* new ExitWith({ code })
  })
).pipe(
  Command.withDescription(
    "how each part stands: files vs the remote head, tree vs database, database vs cloud, skills, server (exit 0 in step, 1 differs, 4 cannot tell)"
  )
)
