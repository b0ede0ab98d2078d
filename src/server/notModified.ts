/**
 * The no-change check answered before the HTTP framework: a conditional GET of the head manifest whose token holds
 * and whose tag names the head is a 304 from the one authenticating query, run on the check's own connections; every other request, and this one when
 * anything differs, goes to the framework unchanged, which answers it (errors included) as before.
 */
import { IncomingMessage, type Server as NodeServer, ServerResponse } from "node:http"
import { Effect, Option } from "effect"
import type * as Pg from "pg"
import { CLOUD_PREFIX, etagMatches, FilesRoutes, manifestEtag, SYNC_PREFIX } from "../api/index.js"
import type { AccessLog } from "./accessLog.js"
import { sidePool } from "./sidePool.js"
import {
  type AuthenticatedCaller,
  checkToken,
  parseToken,
  TOKEN_CHECK,
  TOKEN_USED,
  type TokenCheckRow
} from "./tenants.js"

const DIRECT = `${SYNC_PREFIX}${FilesRoutes.manifest}`
const RELAY_TENANT = /^[a-z0-9][a-z0-9-]{0,63}$/

/** A request this path answers: what it asks, as checked. */
export interface ConditionalManifest {
  /** `null` for the direct family, the tenant named in the path for the relay one. */
  readonly relayTenant: string | null
  readonly url: string
  readonly ifNoneMatch: string
  readonly authorization: string
}

/**
 * Whether a request is exactly the no-change check this path answers, and for which family. No query, no body, both
 * headers present; anything else (a revision asked for, HEAD, a tenant id the API would not accept) is the
 * framework's.
 */
export const conditionalManifest = (request: IncomingMessage): ConditionalManifest | undefined => {
  const { method, url, headers } = request
  const ifNoneMatch = headers["if-none-match"]
  const authorization = headers.authorization
  if (method !== "GET" || url === undefined) return undefined
  if (typeof ifNoneMatch !== "string" || typeof authorization !== "string") return undefined
  if (headers["transfer-encoding"] !== undefined || (headers["content-length"] ?? "0") !== "0") return undefined
  if (url === DIRECT) return { relayTenant: null, url, ifNoneMatch, authorization }
  if (!url.startsWith(`${CLOUD_PREFIX}/`) || !url.endsWith(FilesRoutes.manifest)) return undefined
  const tenant = url.slice(CLOUD_PREFIX.length + 1, url.length - FilesRoutes.manifest.length)
  return RELAY_TENANT.test(tenant) ? { relayTenant: tenant, url, ifNoneMatch, authorization } : undefined
}

/** The framework reads the bearer token as the header after `Bearer ` (HttpApiSecurity.bearer): the same here. */
const BEARER = "Bearer ".length

/** Connections of the check's own pool: a few, beside the server's. */
const CHECK_CONNECTIONS = 8

/**
 * The check's own small pool, on the server's database (the configuration of its `PgClient`): the token check's one
 * statement straight on `pg`, without a fiber, a span or a statement compiled per request, and never queued behind
 * the uploads holding the server's connections. None for a single-session database (the embedded one), which can
 * take no second connection: there the framework answers every request.
 */
const checkPool = sidePool({ max: CHECK_CONNECTIONS, applicationName: "agentsync-check" })

/**
 * The token check's statements, named: each connection of the pool prepares them once and then only binds and runs
 * them, where an unnamed statement is parsed and planned by PostgreSQL on every request (as much of its CPU per
 * check as running it). The same text as `Tenants.authenticate`'s.
 */
const CHECK_STATEMENT = "agentsync_token_check"
const USED_STATEMENT = "agentsync_token_used"

/**
 * The caller of a token, by the token check's statement on `pool` (its last use written first when due, as
 * `Tenants.authenticate` does); undefined when the token does not hold or the database does not answer (then the
 * framework answers the request, the error included).
 */
const authenticate = (pool: Pg.Pool, token: string, done: (caller: AuthenticatedCaller | undefined) => void): void => {
  const parsed = parseToken(token.trim())
  if (parsed === undefined) {
    done(undefined)
    return
  }
  const check = { name: CHECK_STATEMENT, text: TOKEN_CHECK.text, values: TOKEN_CHECK.params(parsed.id) }
  pool.query<TokenCheckRow>(check, (error, result) => {
    const checked = error ? undefined : checkToken(parsed, result.rows[0])
    if (!checked?.stale) {
      done(checked?.caller)
      return
    }
    const used = { name: USED_STATEMENT, text: TOKEN_USED.text, values: TOKEN_USED.params(parsed.id) }
    pool.query(used, (e) => done(e ? undefined : checked.caller))
  })
}

/**
 * Puts the check in front of `node`'s request listeners (the framework's among them) until the scope closes, when the
 * server's database is PostgreSQL through `PgClient`. The token is checked on every request by the token check's
 * statement (`TOKEN_CHECK`, the one `Tenants.authenticate` runs; no cache: a revoked token is refused at once, and
 * the head is read in the same statement, so a moved head is seen by every server at once); the answer carries the
 * headers the framework's 304 carries; the access log writes the same line and counts the request in flight until
 * it is answered or handed on. `caps` are the headers every manifest answer carries (`manifestCapsHeaders`). A database error hands the request on: the framework answers it as it would.
 */
export const install = (node: NodeServer, log: AccessLog | undefined, caps: Record<string, string>) =>
  Effect.gen(function* () {
    const found = yield* checkPool
    if (Option.isNone(found)) return
    const pool = found.value
    const emit = node.emit
    const handle = (check: ConditionalManifest, response: ServerResponse, next: () => void): void => {
      const entry = log?.begin("GET", check.url)
      let aborted = false
      response.once("close", () => {
        if (response.writableEnded) return
        aborted = true
        entry?.finish(499, null, null, true)
      })
      authenticate(pool, check.authorization.slice(BEARER), (caller) => {
        if (aborted) return
        if (
          caller !== undefined &&
          caller.head !== null &&
          (check.relayTenant === null || check.relayTenant === caller.tenantId) &&
          etagMatches(check.ifNoneMatch, caller.head)
        ) {
          response.writeHead(304, { etag: manifestEtag(caller.head), ...caps })
          response.end()
          entry?.finish(304, 0, caller.tenantId)
          return
        }
        // Counted by the framework's log from here on: handed over after it has begun counting.
        next()
        entry?.handOff()
      })
    }
    const fronted: NodeServer["emit"] = function (this: NodeServer, event: string | symbol, ...args: Array<unknown>) {
      const [request, response] = args
      if (event === "request" && request instanceof IncomingMessage && response instanceof ServerResponse) {
        const check = conditionalManifest(request)
        if (check !== undefined) {
          handle(check, response, () => void Reflect.apply(emit, this, [event, ...args]))
          return true
        }
      }
      return Reflect.apply(emit, this, [event, ...args])
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
