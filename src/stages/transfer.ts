/** Pace of a transfer: a body that moves slower than the minimum rate is cut, on the client and the server alike. */
import { Duration, Effect, Stream } from "effect"
import type { TransferLimits } from "../domain/caps.js"

/**
 * The stream, failing with `slow(why)` as soon as fewer than `minBytesPerSecond` × `windowMs` bytes have
 * passed through it in one window (a body that trickles, or stalls, is cut instead of holding the run). The
 * clock runs only while the stream is pulled; a minimum rate or window of 0 turns the check off.
 */
export const paced = <E, R, E2>(
  stream: Stream.Stream<Uint8Array, E, R>,
  limits: TransferLimits,
  slow: (why: string) => E2
): Stream.Stream<Uint8Array, E | E2, R> => {
  const minBytes = (limits.minBytesPerSecond * limits.windowMs) / 1000
  if (minBytes <= 0) return stream
  return Stream.suspend(() => {
    let count = 0
    const watchdog = Effect.gen(function* () {
      let last = 0
      for (;;) {
        yield* Effect.sleep(Duration.millis(limits.windowMs))
        if (count - last < minBytes) {
          return yield* Effect.fail(
            slow(`${count - last} bytes in ${limits.windowMs / 1000} s, below the minimum of ${limits.minBytesPerSecond} bytes/s`)
          )
        }
        last = count
      }
    })
    return stream.pipe(
      Stream.mapChunks((chunk) => {
        for (const c of chunk) count += c.length
        return chunk
      }),
      Stream.interruptWhen(watchdog)
    )
  })
}
