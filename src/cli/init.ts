/** `agentsync init [DIR]`: a new project (agentsync.yaml and a services/ skeleton), never over an existing one. */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import { Effect, Option } from "effect"
import { emit } from "./output.js"

const dir = Args.directory({ name: "DIR" }).pipe(
  Args.withDescription("the project root to create (default: the working directory)"),
  Args.optional
)

export const init = Command.make("init", { dir }, (o) =>
  Effect.gen(function* () {
    const { Init } = yield* Effect.promise(() => import("../programs/init.js"))
    const r = yield* Init.run(Option.getOrElse(o.dir, () => ".")).pipe(Effect.provide(Init.Default))
    yield* emit(r, () =>
      [
        `created a project in ${r.root}:`,
        ...r.files.map((f) => `  ${f}`),
        "next: agentsync validate, then agentsync local sync --to-db"
      ].join("\n")
    )
  })
).pipe(Command.withDescription("create agentsync.yaml and a services/ tree with one example of each kind"))
