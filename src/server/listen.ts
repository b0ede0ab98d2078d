/** Running the tenant server as a process: listening (start-up errors named), the access log, and a bounded graceful stop. */
import { createServer } from "node:http"
import { Console, Duration, Effect, Layer, Schedule } from "effect"
import { causeErrnoCode } from "../errno.js"
import { ListenFailed } from "../errors.js"
import * as AccessLog from "./accessLog.js"
import * as Server from "./http.js"

export interface ListenOptions {
  readonly host: string
  readonly port: number
  /** How long a stop waits for requests in flight before it cuts them. */
  readonly shutdownTimeout: Duration.Duration
  /** Where access lines go (default: stderr). */
  readonly accessLog?: (line: AccessLog.AccessLine) => void
}

const advice: Record<string, string> = {
  EADDRINUSE: "the port is in use; stop what holds it or choose another port (--port or PORT)",
  EADDRNOTAVAIL: "no network interface of this machine has that address (--host or HOST)",
  ENOTFOUND: "the host name does not resolve (--host or HOST)",
  EAI_AGAIN: "the host name could not be resolved now (--host or HOST)",
  EACCES: "permission denied (ports below 1024 need privileges; choose another with --port or PORT)"
}

/** The system error code down a cause chain. */
const codeOf = (cause: unknown): string => causeErrnoCode(cause) ?? "UNKNOWN"

const messageOf = (cause: unknown): string => {
  let c: unknown = cause
  for (let i = 0; i < 5 && c instanceof Error; i++) {
    if (c.cause === undefined) return c.message
    c = c.cause
  }
  return String(c)
}

export const addressOf = (host: string, port: number) => `${host.includes(":") ? `[${host}]` : host}:${port}`

/**
 * The server listening on `options`, over the database in context, until the scope closes. Closing it stops
 * accepting connections, waits up to `shutdownTimeout` for the requests in flight, cuts what is left, and says
 * which happened on stderr.
 */
export const listen = (options: ListenOptions) =>
  Effect.gen(function* () {
    const address = addressOf(options.host, options.port)
    if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) {
      return yield* new ListenFailed({ address, code: "ERR_SOCKET_BAD_PORT", reason: "a port is 0 to 65535" })
    }
    const node = createServer()
    const log = AccessLog.make(options.accessLog ?? AccessLog.toStderr)
    const context = yield* Layer.build(
      Server.layer({ host: options.host, port: options.port, server: node, accessLog: log })
    ).pipe(
      Effect.catchTag("ServeError", (e) => {
        const code = codeOf(e.cause)
        return Effect.fail(
          new ListenFailed({ address, code, reason: advice[code] ?? messageOf(e.cause), cause: e.cause })
        )
      })
    )
    // Registered after the server's own release, so it runs first: requests finish while the database is still up.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        const waiting = log.inFlight()
        node.close()
        node.closeIdleConnections()
        if (waiting > 0) {
          yield* Console.error(
            `agentsync serve: stopping: waiting up to ${Duration.format(options.shutdownTimeout)} for ${waiting} request(s) in flight`
          )
        }
        // A deadline, not a timeout: a finalizer is uninterruptible, so a timeout could not stop the wait.
        const deadline = Date.now() + Duration.toMillis(options.shutdownTimeout)
        yield* Effect.sync(log.inFlight).pipe(
          Effect.repeat({ schedule: Schedule.spaced("20 millis"), until: (n) => n === 0 || Date.now() >= deadline })
        )
        const cut = log.inFlight()
        node.closeAllConnections()
        // The requests' lines before the line that says how the stop went.
        AccessLog.flushStderr()
        yield* Console.error(
          cut === 0
            ? "agentsync serve: stopped: every request finished"
            : `agentsync serve: stopped: ${cut} request(s) cut after ${Duration.format(options.shutdownTimeout)}`
        )
      })
    )
    return context
  })
