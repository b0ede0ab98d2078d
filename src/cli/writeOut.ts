/** A long text on stdout (a --json report of thousands of files): written in pieces through one reused buffer. */
import type { Writable } from "node:stream"
import { Effect } from "effect"
import { IoError } from "../errors.js"

/** UTF-16 units a piece holds; its UTF-8 bytes are at most three times as many. */
export const PIECE_UNITS = 64 * 1024

/** Whether a write's failure says the reader has gone: `| head` stops reading, a pipe closed. */
const readerGone = (e: Error) => {
  const code = (e as { readonly code?: unknown }).code
  return code === "EPIPE" || code === "ERR_STREAM_DESTROYED"
}

/**
 * A failed write's error reaches its callback, which acts on it, and is emitted on the stream too: this listener
 * takes that second copy, which with no listener would end the process (`console.log` holds one of its own while
 * it writes). It is on the stream only while `writeText` writes, and until the turn after (the copy is emitted in a
 * tick after the callback): a later write's failure is not swallowed.
 */
const secondCopy = () => {}

/**
 * Writes `text` and a newline to `out`, byte for byte what `out.write(text + "\n")` writes, without making either
 * whole: joining them flattens a fresh string of the text's size, and encoding it a fresh buffer of its bytes, and on
 * a 2 MB report each cost more than `JSON.stringify` itself (the first touch of fresh pages). Each piece is a view of
 * the text encoded into one buffer, written before the next is made (which is also the stream's backpressure: at
 * most one piece is pending, on a pipe or file that takes it at once or one that does not); a surrogate pair is
 * never split between pieces. A reader that has gone (EPIPE) ends the writing quietly, as `console.log`'s did: what
 * the run did stands, and its exit code says so. Any other failure (a full disk under `> file`) is an IoError.
 */
export const writeText = (
  text: string,
  out: Writable = process.stdout,
  units = PIECE_UNITS
): Effect.Effect<void, IoError> =>
  Effect.acquireUseRelease(
    Effect.sync(() => out.on("error", secondCopy)),
    () => pieces(text, out, units),
    () => Effect.sync(() => void setImmediate(() => out.off("error", secondCopy)))
  )

/** The writing itself: `text` and its newline through one buffer, a piece at a time. */
const pieces = (text: string, out: Writable, units: number): Effect.Effect<void, IoError> =>
  Effect.suspend(() => {
    const buffer = Buffer.allocUnsafe(Math.max(units, 2) * 3 + 1)
    let at = 0
    /** The next piece in `buffer`, the newline after the text's last; undefined once all is written. */
    const next = (): Buffer | undefined => {
      if (at > text.length) return undefined
      let end = Math.min(at + units, text.length)
      // A high surrogate last: it goes in the next piece with its pair, or, alone in this one, takes its pair in
      // (a lone one encodes the same either way).
      const last = text.charCodeAt(end - 1)
      if (end < text.length && last >= 0xd800 && last <= 0xdbff) end += end - 1 > at ? -1 : 1
      let length = buffer.write(text.slice(at, end), 0)
      at = end
      if (at === text.length) {
        buffer[length++] = 0x0a
        at++
      }
      return buffer.subarray(0, length)
    }
    return Effect.async<void, IoError>((resume) => {
      const step = (e?: Error | null) => {
        if (e !== undefined && e !== null)
          return resume(
            readerGone(e)
              ? Effect.void
              : Effect.fail(new IoError({ path: "stdout", reason: `cannot write the output: ${e.message}`, cause: e }))
          )
        const piece = next()
        if (piece === undefined) return resume(Effect.void)
        out.write(piece, step)
      }
      step()
    })
  })
