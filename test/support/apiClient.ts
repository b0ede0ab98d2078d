/** Test support: calls through the file API client (`SyncApiClient`) as Effects, for tests on `@effect/vitest`. */
import { Effect } from "effect"
import { layer as clientLayer, SyncApiClient, type SyncApiOptions } from "../../src/services/SyncApi.js"

/** `f` on a client made from `options`. */
export const withClient = <A, E>(
  options: SyncApiOptions,
  f: (c: typeof SyncApiClient.Service) => Effect.Effect<A, E>
) => Effect.flatMap(SyncApiClient, f).pipe(Effect.provide(clientLayer(options)))

/** `withClient`, its failure as a value. */
export const withClientEither = <A, E>(
  options: SyncApiOptions,
  f: (c: typeof SyncApiClient.Service) => Effect.Effect<A, E>
) => Effect.either(withClient(options, f))
