// A long text on stdout in pieces: the bytes `write(text + "\n")` writes, each piece taken before its buffer is used
// again, a reader that has gone ending it quietly and any other failure an IoError.
import { Writable } from "node:stream"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, FastCheck } from "effect"
import { writeText } from "../../src/cli/writeOut.js"
import { IoError } from "../../src/errors.js"

/**
 * A stream that takes each piece only a turn of the event loop after it is written (as a pipe that is not read at
 * once) and copies it then: a writer that filled its buffer again before the callback would show in the copy.
 */
const slowSink = () => {
  const taken: Array<Buffer> = []
  const out = new Writable({
    highWaterMark: 1,
    write(chunk: Buffer, _encoding, done) {
      setImmediate(() => {
        taken.push(Buffer.from(chunk))
        done()
      })
    }
  })
  return { out, bytes: () => Buffer.concat(taken) }
}

const failing = (code: string) =>
  new Writable({
    write(_chunk, _encoding, done) {
      done(Object.assign(new Error(`write ${code}`), { code }))
    }
  })

describe("writeText", () => {
  it.effect.prop(
    "writes the text's UTF-8 and a newline, whatever the piece size (surrogate pairs, lone ones, any plane)",
    [
      FastCheck.oneof(FastCheck.string({ unit: "binary", maxLength: 300 }), FastCheck.string({ maxLength: 300 })),
      FastCheck.integer({ min: 1, max: 40 })
    ],
    ([text, units]) =>
      Effect.gen(function* () {
        const sink = slowSink()
        yield* writeText(text, sink.out, units)
        expect(sink.bytes().equals(Buffer.from(`${text}\n`))).toBe(true)
      })
  )

  it.effect("a text longer than a piece, on a stream that takes its pieces late, arrives whole", () =>
    Effect.gen(function* () {
      const text = JSON.stringify(
        Array.from({ length: 3000 }, (_, i) => ({ path: `content/é/${i}-😀.md`, size: i })),
        null,
        2
      )
      const sink = slowSink()
      yield* writeText(text, sink.out)
      expect(sink.bytes().toString()).toBe(`${text}\n`)
    })
  )

  it.effect("a reader that has gone (EPIPE) ends it quietly, and the stream's error event ends no process", () =>
    Effect.gen(function* () {
      const out = failing("EPIPE")
      yield* writeText("x".repeat(200_000), out)
      // The stream emits the error too once destroyed: a listener takes it (else it would be thrown).
      yield* Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
      expect(out.destroyed).toBe(true)
      // Written to again (the process's last flush), it answers with an error and ends nothing either.
      yield* writeText("more", out)
    })
  )

  it.effect("leaves no listener on the stream once written, the error copy's tick past: a later failure is heard", () =>
    Effect.gen(function* () {
      const turn = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
      const sink = slowSink()
      const before = sink.out.listenerCount("error")
      yield* writeText("x".repeat(200), sink.out, 16)
      yield* turn
      expect(sink.out.listenerCount("error")).toBe(before)
      const out = failing("EPIPE")
      yield* writeText("x".repeat(200_000), out)
      yield* turn
      expect(out.destroyed).toBe(true)
      expect(out.listenerCount("error")).toBe(0)
    })
  )

  it.effect("any other failure (a full disk) is an IoError naming stdout", () =>
    Effect.gen(function* () {
      const result = yield* Effect.either(writeText("report", failing("ENOSPC")))
      expect(Either.isLeft(result) && result.left instanceof IoError).toBe(true)
      expect(Either.isLeft(result) && result.left.message).toBe("stdout: cannot write the output: write ENOSPC")
    })
  )
})
