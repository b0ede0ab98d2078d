import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, FastCheck, Stream } from "effect"
import { type BodyLine, decodeBody, encodeBody } from "../../src/api/ndjson.js"

const read = (text: string): BodyLine<unknown> => {
  let value: { kind: string; rows?: unknown; item?: unknown }
  try {
    value = JSON.parse(text)
  } catch {
    return { kind: "bad", reason: "not JSON" }
  }
  return value.kind === "header" || value.kind === "end"
    ? (value as BodyLine<unknown>)
    : { kind: "item", item: value.item }
}
const bad = (line: number, reason: string) => ({ line, reason })

/** Bytes cut into chunks at arbitrary places, as a socket delivers them. */
const rechunk = (bytes: Uint8Array, cuts: ReadonlyArray<number>) => {
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)
  const parts: Array<Uint8Array> = []
  let from = 0
  for (const c of [...at, bytes.length]) {
    parts.push(bytes.subarray(from, c))
    from = c
  }
  return Stream.fromIterable(parts)
}

const encode = (batches: ReadonlyArray<ReadonlyArray<unknown>>) =>
  Stream.runCollect(encodeBody(Stream.fromIterable(batches), (item) => ({ kind: "row", item }))).pipe(
    Effect.map((chunks) => Buffer.concat(Chunk.toReadonlyArray(chunks)))
  )

const items = FastCheck.array(FastCheck.array(FastCheck.jsonValue({ maxDepth: 2 }), { maxLength: 5 }), { maxLength: 4 })

describe("the NDJSON codec shared by client and server", () => {
  it.effect.prop(
    "decoding what was encoded gives the items back, however the bytes are chunked",
    [items, FastCheck.array(FastCheck.nat(), { maxLength: 6 })],
    ([batches, cuts]) =>
      Effect.gen(function* () {
        const bytes = yield* encode(batches)
        const decoded = yield* Stream.runCollect(decodeBody(rechunk(bytes, cuts), read, bad))
        // JSON has no -0 and no undefined in arrays: compare the JSON forms.
        expect(JSON.stringify(Chunk.toReadonlyArray(decoded))).toBe(JSON.stringify(batches.flat()))
      }),
    { fastCheck: { numRuns: 15 } }
  )

  it.effect.prop(
    "a body cut anywhere before its end line is an error, never a short answer",
    [items, FastCheck.nat()],
    ([batches, cut]) =>
      Effect.gen(function* () {
        const bytes = yield* encode(batches)
        const lastLine = bytes.lastIndexOf(10, bytes.length - 2) + 1
        const truncated = bytes.subarray(0, cut % (lastLine + 1))
        const result = yield* Effect.either(Stream.runCollect(decodeBody(Stream.make(truncated), read, bad)))
        expect(Either.isLeft(result)).toBe(true)
      }),
    { fastCheck: { numRuns: 15 } }
  )

  it.effect("an end line whose count differs names its line", () =>
    Effect.gen(function* () {
      const body = new TextEncoder().encode('{"kind":"header"}\n{"kind":"row","item":1}\n{"kind":"end","rows":2}\n')
      const result = yield* Effect.either(Stream.runCollect(decodeBody(Stream.make(body), read, bad)))
      expect(result).toEqual(Either.left({ line: 3, reason: "end line says 2 rows, got 1" }))
    })
  )
})
