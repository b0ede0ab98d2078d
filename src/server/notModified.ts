/**
 * The no-change check answered before the HTTP framework: a conditional GET of the head manifest whose token holds
 * and whose tag names the head is a 304 from the one authenticating query; every other request, and this one when
 * anything differs, goes to the framework unchanged, which answers it (errors included) as before.
 */
import type { IncomingMessage, Server as NodeServer, ServerResponse } from "node:http"
import { Effect, Exit, Option, Redacted, Runtime } from "effect"
import { CLOUD_PREFIX, etagMatches, FilesRoutes, manifestEtag, SYNC_PREFIX } from "../api/index.js"
import type { AccessLog } from "./accessLog.js"
import { Tenants } from "./tenants.js"

const DIRECT = `${SYNC_PREFIX}${FilesRoutes.manifest}`
const RELAY_TENANT = /^[a-z0-9][a-z0-9-]{0,63}$/

/**
 * Whether a request is exactly the no-change check this path answers, and for which family: `null` for the direct
 * one, the tenant named in the path for the relay one. No query, no body, both headers present; anything else
 * (a revision asked for, HEAD, a tenant id the API would not accept) is the framework's.
 */
export const conditionalManifest = (request: IncomingMessage): { readonly relayTenant: string | null } | undefined => {
  const { method, url, headers } = request
  if (method !== "GET" || url === undefined) return undefined
  if (typeof headers["if-none-match"] !== "string" || typeof headers.authorization !== "string") return undefined
  if (headers["transfer-encoding"] !== undefined || (headers["content-length"] ?? "0") !== "0") return undefined
  if (url === DIRECT) return { relayTenant: null }
  if (!url.startsWith(`${CLOUD_PREFIX}/`) || !url.endsWith(FilesRoutes.manifest)) return undefined
  const tenant = url.slice(CLOUD_PREFIX.length + 1, url.length - FilesRoutes.manifest.length)
  return RELAY_TENANT.test(tenant) ? { relayTenant: tenant } : undefined
}

/** The framework reads the bearer token as the header after `Bearer ` (HttpApiSecurity.bearer): the same here. */
const BEARER = "Bearer ".length

/**
 * Puts the check in front of `node`'s request listeners (the framework's among them) until the scope closes. The
 * token is checked on every request by `Tenants.authenticate`, the framework's own check (no cache: a revoked token
 * is refused at once); the answer carries the headers the framework's 304 carries; the access log writes the same
 * line and counts the request in flight until it is answered or handed on.
 */
export const install = (node: NodeServer, log: AccessLog | undefined) =>
  Effect.gen(function* () {
    const tenants = yield* Tenants
    const runCallback = Runtime.runCallback(yield* Effect.runtime<never>())
    const emit = node.emit
    const handle = (
      check: { readonly relayTenant: string | null },
      request: IncomingMessage,
      response: ServerResponse,
      next: () => void
    ): void => {
      const entry = log?.begin("GET", request.url!)
      let aborted = false
      response.once("close", () => {
        if (response.writableEnded) return
        aborted = true
        entry?.finish(499, null, null, true)
      })
      const ifNoneMatch = request.headers["if-none-match"]!
      const token = Redacted.make(request.headers.authorization!.slice(BEARER))
      runCallback(tenants.authenticate(token), {
        onExit: (exit) => {
          if (aborted) return
          const caller = Exit.isSuccess(exit) ? Option.getOrUndefined(exit.value) : undefined
          if (
            caller !== undefined &&
            caller.head !== null &&
            (check.relayTenant === null || check.relayTenant === caller.tenantId) &&
            etagMatches(ifNoneMatch, caller.head)
          ) {
            response.writeHead(304, { etag: manifestEtag(caller.head) })
            response.end()
            entry?.finish(304, 0, caller.tenantId)
            return
          }
          // Counted by the framework's log from here on: handed over after it has begun counting.
          next()
          entry?.handOff()
        }
      })
    }
    const fronted: NodeServer["emit"] = function (this: NodeServer, event: string | symbol, ...args: Array<unknown>) {
      const request = args[0] as IncomingMessage
      const check = event === "request" ? conditionalManifest(request) : undefined
      if (check === undefined) return Reflect.apply(emit, this, [event, ...args])
      handle(check, request, args[1] as ServerResponse, () => void Reflect.apply(emit, this, [event, ...args]))
      return true
    }
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        node.emit = fronted
      }),
      () =>
        Effect.sync(() => {
          node.emit = emit
        })
    )
  })
