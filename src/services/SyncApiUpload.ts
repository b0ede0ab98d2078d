/** An upload's POST on node:http: the body written as the socket drains, each chunk handed back once the socket has written it. */
import * as http from "node:http"
import * as https from "node:https"
import { Deferred, Effect, Stream } from "effect"
import { describe, type Transient, transient } from "./Transport.js"

/** An answer to a streamed POST: its status, headers and the start of its body as text. */
export interface PostAnswer {
  readonly status: number
  readonly headers: http.IncomingHttpHeaders
  readonly text: string
}

// At most this much of an answer is kept (an upload's result, or an error page).
const MAX_ANSWER_BYTES = 1024 * 1024

/**
 * POSTs `body` to `url`, pulling its next chunk only while the socket takes more (a slow server never makes this
 * side buffer the archive), and calls `written` with each chunk once the socket has written it: until then the
 * kernel may still be reading its bytes, so a pool must not hand the chunk out again before. An answer that comes
 * before the body has all gone ends the call (the rest is not sent). A transport failure, or an answer cut short,
 * is `Transient`; the body's own failure is its own. The request is torn down whenever the call ends otherwise
 * than with a whole answer, an interruption included.
 */
export const postStream = <E>(
  url: string,
  headers: Readonly<Record<string, string>>,
  body: Stream.Stream<Uint8Array, E>,
  written?: (chunk: Uint8Array) => void
): Effect.Effect<PostAnswer, E | Transient> =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const request = (url.startsWith("https:") ? https : http).request(url, {
        method: "POST",
        headers: { ...headers }
      })
      return { request, answered: false }
    }),
    (call) =>
      Effect.gen(function* () {
        const { request } = call
        // Any failure of the request before its answer is whole: no connection, a reset, an answer cut short.
        const broken = yield* Deferred.make<never, Transient>()
        let status = 0
        const fail = (e: unknown) =>
          Deferred.unsafeDone(
            broken,
            Effect.fail(
              status === 0 ? transient(0, describe(e), true) : transient(status, `answer cut short: ${describe(e)}`)
            )
          )
        request.on("error", fail)
        const write = (chunk: Uint8Array) =>
          Effect.async<void>((resume) => {
            const more = request.write(chunk, (e) => {
              if (e === null || e === undefined) written?.(chunk)
            })
            if (more) return resume(Effect.void)
            const drained = () => resume(Effect.void)
            request.once("drain", drained)
            return Effect.sync(() => request.off("drain", drained))
          })
        const send = Stream.runForEach(body, write).pipe(
          Effect.zipRight(Effect.async<void>((resume) => void request.end(() => resume(Effect.void))))
        )
        const answer = Effect.async<PostAnswer>((resume) => {
          request.once("response", (response) => {
            status = response.statusCode ?? 0
            const parts: Array<Buffer> = []
            let size = 0
            response.on("data", (chunk: Buffer) => {
              if (size < MAX_ANSWER_BYTES) parts.push(chunk)
              size += chunk.length
            })
            response.once("end", () => {
              call.answered = true
              const text = Buffer.concat(parts).subarray(0, MAX_ANSWER_BYTES).toString("utf8")
              resume(Effect.succeed({ status, headers: response.headers, text }))
            })
            response.once("error", fail)
            response.once("close", () => {
              if (!call.answered) fail(new Error("connection closed"))
            })
          })
        })
        // The answer, unless the body or the connection fails first (sending ends only in a failure here).
        return yield* Effect.raceFirst(
          Effect.raceFirst(answer, Effect.zipRight(send, Effect.never)),
          Deferred.await(broken)
        )
      }),
    (call) =>
      Effect.sync(() => {
        if (!call.answered) call.request.destroy()
      })
  )
