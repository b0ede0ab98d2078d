/** Pace of a transfer: a body that moves slower than the minimum rate is cut, on the client and the server alike. */
import { Duration, Effect, Stream } from "effect"
import type { TransferLimits } from "../domain/caps.js"

/** The pace of one body: count its bytes as they pass, and guard the effect that moves it. */
export interface Pace<E2> {
  /** The body, its bytes counted (no fiber, no queue: a chunk costs one addition). */
  readonly count: <E, R>(body: Stream.Stream<Uint8Array, E, R>) => Stream.Stream<Uint8Array, E, R>
  /**
   * The effect that moves the body, failing with `slow(why)` as soon as fewer than `minBytesPerSecond` ×
   * `windowMs` bytes of it passed in one window, while it has not ended (an answer being computed after it is
   * not counted). One watchdog fiber for the whole transfer.
   */
  readonly guard: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | E2, R>
}

/** A pace for one transfer; a minimum rate or window of 0 turns the check off. */
export const pace = <E2>(limits: TransferLimits, slow: (why: string) => E2): Pace<E2> => {
  const minBytes = (limits.minBytesPerSecond * limits.windowMs) / 1000
  if (minBytes <= 0) return { count: (body) => body, guard: (effect) => effect }
  let bytes = 0
  let ended = false
  const watchdog = Effect.gen(function* () {
    let last = 0
    for (;;) {
      yield* Effect.sleep(Duration.millis(limits.windowMs))
      if (ended) return yield* Effect.never
      if (bytes - last < minBytes) {
        return yield* Effect.fail(
          slow(
            `${bytes - last} bytes in ${limits.windowMs / 1000} s, below the minimum of ${limits.minBytesPerSecond} bytes/s`
          )
        )
      }
      last = bytes
    }
  })
  return {
    count: (body) =>
      body.pipe(
        Stream.mapChunks((chunk) => {
          for (const c of chunk) bytes += c.length
          return chunk
        }),
        Stream.ensuring(
          Effect.sync(() => {
            ended = true
          })
        )
      ),
    guard: (effect) => Effect.raceFirst(effect, watchdog)
  }
}
