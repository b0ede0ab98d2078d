/** The tenant server's access log (one JSON line per request on stderr) and its count of requests in flight. */

import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpBody from "@effect/platform/HttpBody"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Exit, FiberRef, Option, Stream } from "effect"

/** The tenant a request's bearer token resolved to, set by authentication for the log line. */
export const currentTenant = FiberRef.unsafeMake<string | null>(null)

/** What one line says. Never a header or a query string: a token cannot reach the log. */
export interface AccessLine {
  readonly time: string
  readonly method: string
  readonly route: string
  readonly tenant: string | null
  readonly status: number
  /** Body bytes sent; null when the body's size is unknown (a raw body). */
  readonly bytes: number | null
  readonly duration_ms: number
  /** Set when the client went away or the body broke off before its end. */
  readonly aborted?: true
}

const pathOf = (url: string) => {
  const q = url.search(/[?#]/)
  return q === -1 ? url : url.slice(0, q)
}

/** What wraps every request. */
export type Middleware = (app: HttpApp.Default) => HttpApp.Default<never, HttpServerRequest.HttpServerRequest>

/** One request's place in the log: counted in flight from its start until it is finished or handed off. */
export interface Entry {
  /** Writes its line and stops counting it (once; later calls do nothing). */
  readonly finish: (status: number, bytes: number | null, tenant: string | null, aborted?: boolean) => void
  /** Stops counting it without a line: the request went on to a handler that logs it itself. */
  readonly handOff: () => void
}

/** What the server needs of an access log: the middleware around the app, the count, and an entry per request. */
export interface AccessLog {
  readonly middleware: Middleware
  readonly inFlight: () => number
  /** A request answered outside the middleware (the no-change check) logs through this, the same line. */
  readonly begin: (method: string, url: string) => Entry
}

/** The response with its streamed body counted: the line is written when the body ends, or is cut off. */
const counted = (
  response: HttpServerResponse.HttpServerResponse,
  body: HttpBody.Stream,
  finish: (status: number, bytes: number, aborted: boolean) => Effect.Effect<void>
) => {
  let sent = 0
  const stream = body.stream.pipe(
    Stream.tap((chunk) =>
      Effect.sync(() => {
        sent += chunk.length
      })
    ),
    Stream.onDone(() => finish(response.status, sent, false)),
    Stream.ensuring(Effect.suspend(() => finish(response.status, sent, true)))
  )
  return HttpServerResponse.setBody(
    response,
    HttpBody.stream(stream, body.contentType, Option.getOrUndefined(Option.fromNullable(body.contentLength)))
  )
}

/** The middleware: counts requests in flight and writes one line each through `write` when its body has gone. */
export const make = (write: (line: AccessLine) => void): AccessLog => {
  let inFlight = 0
  const begin = (method: string, url: string): Entry => {
    const started = performance.now()
    inFlight++
    let done = false
    const end = () => {
      if (done) return false
      done = true
      inFlight--
      return true
    }
    return {
      finish: (status, bytes, tenant, aborted = false) => {
        if (!end()) return
        write({
          time: new Date().toISOString(),
          method,
          route: pathOf(url),
          tenant,
          status,
          bytes,
          duration_ms: Math.round((performance.now() - started) * 10) / 10,
          ...(aborted ? { aborted: true as const } : {})
        })
      },
      handOff: () => void end()
    }
  }
  const middleware = HttpMiddleware.make((app) =>
    Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const entry = begin(request.method, request.url)
      let tenant: string | null = null
      const finish = (status: number, bytes: number | null, aborted: boolean) =>
        Effect.sync(() => entry.finish(status, bytes, tenant, aborted))
      // The framework sends the answer inside `app` (a middleware gets it back once it has gone out), so a
      // streamed body is counted through the last handler before sending, and logged when it ends there.
      yield* HttpApp.appendPreResponseHandler((_request, response) =>
        Effect.map(FiberRef.get(currentTenant), (t) => {
          tenant = t
          return response.body._tag === "Stream" ? counted(response, response.body, finish) : response
        })
      )
      const exit = yield* Effect.exit(app).pipe(Effect.onInterrupt(() => finish(499, null, true)))
      tenant = yield* FiberRef.get(currentTenant)
      const response = Exit.isSuccess(exit) ? exit.value : HttpServerError.causeResponseStripped(exit.cause)[0]
      const body = response.body
      // Written already when a streamed body ended (this line then does nothing).
      const bytes =
        body._tag === "Uint8Array" ? body.body.length : body._tag === "Empty" ? 0 : body._tag === "Stream" ? 0 : null
      yield* finish(response.status, bytes, false)
      return yield* exit
    })
  )
  return { middleware, inFlight: () => inFlight, begin }
}

// Lines held for one write: those of one turn of the event loop, up to this many characters.
const HOLD_CHARS = 64 * 1024
let held = ""
let exitHooked = false

/** Writes the lines held, if any. */
export const flushStderr = () => {
  if (held === "") return
  const out = held
  held = ""
  process.stderr.write(out)
}

/**
 * The default writer: the line as JSON on stderr. The lines of one turn of the event loop go out in one write at
 * its end (each write to a pipe is a system call, synchronous on Linux: one per request was a tenth of the no-change
 * check's CPU under load); a line held when the process exits is written then.
 */
export const toStderr = (line: AccessLine) => {
  if (held === "") {
    setImmediate(flushStderr)
    if (!exitHooked) {
      exitHooked = true
      process.on("exit", flushStderr)
    }
  }
  held += `${JSON.stringify({ log: "access", ...line })}\n`
  if (held.length >= HOLD_CHARS) flushStderr()
}
