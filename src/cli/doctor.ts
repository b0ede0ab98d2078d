/** `agentsync doctor`: what a project needs, checked one by one, each problem with what to do about it. */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Duration, Effect } from "effect"
import type { DoctorReport } from "../programs/doctor.js"
import { ExitWith, emit } from "./output.js"
import { globals } from "./root.js"

const timeout = Options.integer("timeout").pipe(
  Options.withDescription("seconds each check may take before it fails"),
  Options.withDefault(10)
)

const MARK = { ok: "ok  ", warn: "warn", fail: "FAIL", skip: "skip" } as const

const human = (r: DoctorReport) => () =>
  [
    ...r.checks.flatMap((c) => [
      `${MARK[c.state]}  ${c.check}: ${c.detail}`,
      ...(c.fix === undefined ? [] : [`      fix: ${c.fix}`])
    ]),
    r.ok ? "no problem found" : `${r.checks.filter((c) => c.state === "fail").length} check(s) failed`
  ].join("\n")

export const doctor = Command.make("doctor", { timeout }, (o) =>
  Effect.gen(function* () {
    const g = yield* globals
    const { Doctor } = yield* Effect.promise(() => import("../programs/doctor.js"))
    const r = yield* Doctor.doctor({ services: g.services, timeout: Duration.seconds(Math.max(1, o.timeout)) }).pipe(
      Effect.provide(Doctor.Default)
    )
    yield* emit(r, human(r))
    if (!r.ok) return yield* new ExitWith({ code: 1 })
  })
).pipe(
  Command.withDescription(
    "check the configuration, services path, token, server, cloud database, embedded database lock, git and tool homes; each problem with its fix (exit 1 when one fails)"
  )
)
