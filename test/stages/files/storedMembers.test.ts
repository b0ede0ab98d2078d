// Stored gzip members (level 0, what a loopback link carries) are made one by one as the consumer pulls them, on its
// own fiber: the same bytes as `storedMember` of each element, each element handed back once its member is made, and
// no fiber, queue or signal per member (they cost three times the members' own CPU); the elements are read one ahead,
// so that the upstream's reads go on while the consumer waits.
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Deferred, Effect, type Exit, FastCheck, type Fiber, Stream, Supervisor } from "effect"
import { gzip, LOOPBACK_LEVEL, storedMember } from "../../../src/stages/files/compress.js"

/** Counts the fibers started under it. */
class Forks extends Supervisor.AbstractSupervisor<number> {
  started = 0
  get value() {
    return Effect.sync(() => this.started)
  }
  override onStart() {
    this.started++
  }
  override onEnd(_exit: Exit.Exit<unknown, unknown>, _fiber: Fiber.RuntimeFiber<unknown, unknown>) {}
}

// Around a stored block's 65,535 bytes: none, one, two blocks.
const element = FastCheck.tuple(FastCheck.nat(140_000), FastCheck.nat(255)).map(([n, b]): Uint8Array => {
  const bytes = Buffer.alloc(n, b)
  if (n > 0) bytes[n - 1] = b ^ 0xff
  return bytes
})

describe("stored gzip members", () => {
  it.effect.prop(
    "are storedMember of each element in order, each element handed back once its member is made, one fiber whatever their number",
    [FastCheck.array(element, { maxLength: 12 })],
    ([elements]) =>
      Effect.gen(function* () {
        const events: Array<string> = []
        const forks = new Forks()
        const members = yield* Stream.runCollect(
          gzip(Stream.fromIterable(elements), LOOPBACK_LEVEL, (chunk) => {
            events.push(`consumed ${elements.indexOf(chunk)}`)
          }).pipe(Stream.tap(() => Effect.sync(() => events.push("member"))))
        ).pipe(Effect.supervised(forks))
        // What running such a stream forks with no gzip at all: the gzip adds two (the read ahead's), not one a member.
        const bare = new Forks()
        yield* Stream.runCollect(Stream.fromIterable(elements).pipe(Stream.tap(() => Effect.void))).pipe(
          Effect.supervised(bare)
        )
        const expected = elements.map((e) => Buffer.from(storedMember(e)!))
        const made = Chunk.toArray(members)
        expect(made.length).toBe(expected.length)
        made.forEach((m, i) => {
          expect(Buffer.from(m).equals(expected[i]!)).toBe(true)
        })
        // Each element is handed back right after its member is made, before the next is made.
        expect(events).toEqual(elements.flatMap((_, i) => [`consumed ${i}`, "member"]))
        expect(forks.started).toBe(bare.started + 2)
      }),
    { fastCheck: { numRuns: 30 } }
  )

  it.live("read the next element while the consumer still holds the member before it", () =>
    Effect.gen(function* () {
      // The second element's read completes `readAhead`; the consumer waits for it with the first member in hand, as
      // the response's writer waits for its socket to drain. Made strictly on demand, the read never comes.
      const readAhead = yield* Deferred.make<void>()
      const elements = [Buffer.alloc(10, 1), Buffer.alloc(10, 2), Buffer.alloc(10, 3)]
      const upstream = Stream.fromIterable(elements).pipe(
        Stream.tap((e) => (e === elements[1] ? Deferred.succeed(readAhead, undefined) : Effect.void))
      )
      let first = true
      const members = yield* gzip(upstream, LOOPBACK_LEVEL).pipe(
        Stream.tap(() => {
          if (!first) return Effect.void
          first = false
          return Deferred.await(readAhead).pipe(Effect.timeout("2 seconds"))
        }),
        Stream.runCollect
      )
      expect(Chunk.size(members)).toBe(3)
    })
  )
})
