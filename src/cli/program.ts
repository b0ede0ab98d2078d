/** Running a command's program: its code imported only now (a lazy chunk of the bundle), the project's configuration read and provided once. */
import { Effect } from "effect"
import { CurrentConfig, type SyncConfig } from "../config.js"
import { projectConfig, type TreeCheck } from "./root.js"

/**
 * Imports a program's modules, reads the project's configuration (and checks its `services/` tree when `tree`),
 * and runs `program` with that configuration as `CurrentConfig`: the one place a command provides it.
 */
export const withProgram = <M, A, E, R>(
  load: () => Promise<M>,
  program: (modules: M, config: SyncConfig) => Effect.Effect<A, E, R>,
  options: { readonly tree?: TreeCheck } = {}
) =>
  Effect.gen(function* () {
    const config = yield* projectConfig(undefined, options)
    const modules = yield* Effect.promise(load)
    return yield* program(modules, config).pipe(Effect.provideService(CurrentConfig, config))
  })
