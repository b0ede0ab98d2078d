/** The server's tenants and tokens in Postgres: creation, listing, revocation, rotation and bearer authentication. */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto"
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlError from "@effect/sql/SqlError"
import { Effect, Option, Redacted } from "effect"
import { IssuedToken, TenantCreated, TenantInfo, TokenInfo } from "../api/admin.js"
import { type Caller, NotFound } from "../api/common.js"
import { groups } from "../domain/text.js"
import { ApiError, InvalidInput } from "../errors.js"
import { type AdminOps, adminErrors } from "../services/AdminApi.js"
import { oneRow } from "../services/oneRow.js"

const sha256 = (data: string) => createHash("sha256").update(data).digest()

const slug = (name: string) =>
  name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 40) || "tenant"

/** The token a client presents: `ast_<id>_<secret>`. Only sha256(secret) is stored. */
export const parseToken = (token: string): { readonly id: string; readonly secret: string } | undefined => {
  const m = groups(/^ast_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/, token, 2)
  return m ? { id: m[0], secret: m[1] } : undefined
}

/** A token's last use is written at most this often (a busy token does not write on every request). */
const LAST_USE_GRANULARITY_SECONDS = 60

/** A caller, with its tenant's head files revision as read when the token was checked. */
export interface AuthenticatedCaller extends Caller {
  readonly head: string | null
}

interface TokenRow {
  readonly id: string
  readonly tenant_id: string
  readonly label: string
  readonly created_at: Date
  readonly last_used_at: Date | null
  readonly expires_at: Date | null
  readonly revoked_at: Date | null
}

const isoOf = (d: Date) => new Date(d).toISOString()
const iso = (d: Date | null) => (d === null ? null : isoOf(d))

const tokenInfo = (r: TokenRow) =>
  new TokenInfo({
    id: r.id,
    tenant_id: r.tenant_id,
    name: r.label,
    created_at: isoOf(r.created_at),
    last_used_at: iso(r.last_used_at),
    expires_at: iso(r.expires_at),
    revoked_at: iso(r.revoked_at)
  })

const storageFailure = (what: string) => (cause: SqlError.SqlError) =>
  Effect.logError(`storage: ${what} failed`, cause).pipe(
    Effect.zipRight(Effect.fail(new ApiError({ status: 500, reason: `storage error during ${what}` })))
  )

/** An expiry as given (ISO 8601), checked to be a time in the future. */
const expiryOf = (expiresAt: string | undefined): Effect.Effect<Date | null, InvalidInput> => {
  if (expiresAt === undefined) return Effect.succeed(null)
  const t = Date.parse(expiresAt)
  if (Number.isNaN(t))
    return Effect.fail(new InvalidInput({ field: "expires_at", reason: `not a time: ${JSON.stringify(expiresAt)}` }))
  if (t <= Date.now()) return Effect.fail(new InvalidInput({ field: "expires_at", reason: "is in the past" }))
  return Effect.succeed(new Date(t))
}

/** What the token check reads: the token's row, whether its last use is due to be written, its tenant's head. */
export interface TokenCheckRow {
  readonly tenant_id: string
  readonly secret_sha256: Uint8Array
  readonly label: string
  readonly stale: boolean
  readonly head: string | null
}

/**
 * The token check's one statement, as text and parameters: run by `Tenants.authenticate` through the SQL client and
 * by the no-change check (`notModified.ts`) on its own connections, so both check a token the same way.
 */
export const TOKEN_CHECK = {
  text: `SELECT k.tenant_id, k.secret_sha256, k.label, t.head,
      (k.last_used_at IS NULL OR k.last_used_at < now() - make_interval(secs => $2)) AS stale
    FROM tokens k LEFT JOIN tenants t ON t.id = k.tenant_id
    WHERE k.id = $1 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())`,
  params: (id: string): Array<unknown> => [id, LAST_USE_GRANULARITY_SECONDS]
} as const

/** Writing a token's last use (when the check found it stale). */
export const TOKEN_USED = {
  text: "UPDATE tokens SET last_used_at = now() WHERE id = $1",
  params: (id: string): Array<unknown> => [id]
} as const

/**
 * The caller a presented token and its row resolve to, and whether its last use is to be written; undefined when
 * the token is malformed, unknown, revoked, expired or its secret differs. The secret is compared in constant time,
 * against a dummy when there is no row, so timing does not tell ids apart.
 */
export const checkToken = (
  parsed: { readonly id: string; readonly secret: string } | undefined,
  row: TokenCheckRow | undefined
): { readonly caller: AuthenticatedCaller; readonly stale: boolean } | undefined => {
  const presented = sha256(parsed?.secret ?? "")
  const stored = row ? Buffer.from(row.secret_sha256) : sha256("\0no-such-token")
  const equal = stored.length === presented.length && timingSafeEqual(stored, presented)
  if (!row || !equal || parsed === undefined) return undefined
  return {
    caller: { tenantId: row.tenant_id, tokenId: parsed.id, label: row.label, head: row.head },
    stale: row.stale
  }
}

export class Tenants extends Effect.Service<Tenants>()("agentsync/server/Tenants", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient

    const tokenRow = (id: string) =>
      Effect.flatMap(
        sql<TokenRow>`SELECT id, tenant_id, label, created_at, last_used_at, expires_at, revoked_at
          FROM tokens WHERE id = ${id}`,
        ([row]) => (row ? Effect.succeed(row) : Effect.fail(new NotFound({ reason: `no token ${id}` })))
      )

    const issue = (tenantId: string, name: string, expiresAt: Date | null, replaced: string | null) =>
      Effect.gen(function* () {
        const id = randomBytes(8).toString("hex")
        const secret = randomBytes(32).toString("base64url")
        const row = yield* oneRow(
          yield* sql<TokenRow>`
          INSERT INTO tokens (id, tenant_id, secret_sha256, label, expires_at)
          VALUES (${id}, ${tenantId}, ${sha256(secret)}, ${name}, ${expiresAt})
          RETURNING id, tenant_id, label, created_at, last_used_at, expires_at, revoked_at`,
          "an insert into tokens"
        )
        return new IssuedToken({ info: tokenInfo(row), token: Redacted.make(`ast_${id}_${secret}`), replaced })
      })

    const tenantInfo = (r: { id: string; name: string; created_at: Date; active_tokens: number }) =>
      new TenantInfo({ id: r.id, name: r.name, created_at: isoOf(r.created_at), active_tokens: r.active_tokens })

    const listTenants = Effect.fn("Tenants.listTenants")(function* () {
      const rows = yield* sql<{ id: string; name: string; created_at: Date; active_tokens: number }>`
        SELECT t.id, t.name, t.created_at,
          (SELECT count(*)::int FROM tokens k WHERE k.tenant_id = t.id AND k.revoked_at IS NULL
             AND (k.expires_at IS NULL OR k.expires_at > now())) AS active_tokens
        FROM tenants t ORDER BY t.created_at, t.id`.pipe(Effect.catchAll(storageFailure("listing tenants")))
      return rows.map(tenantInfo)
    })

    const createTenant = Effect.fn("Tenants.createTenant")(function* (name: string, tokenName = "admin") {
      if (name.trim() === "") return yield* new InvalidInput({ field: "name", reason: "is empty" })
      const tenantId = `${slug(name)}-${randomBytes(4).toString("hex")}`
      return yield* sql
        .withTransaction(
          Effect.gen(function* () {
            const row = yield* oneRow(
              yield* sql<{ id: string; name: string; created_at: Date }>`
              INSERT INTO tenants (id, name) VALUES (${tenantId}, ${name}) RETURNING id, name, created_at`,
              "an insert into tenants"
            )
            const token = yield* issue(tenantId, tokenName, null, null)
            return new TenantCreated({ tenant: tenantInfo({ ...row, active_tokens: 1 }), token })
          })
        )
        .pipe(
          Effect.catchTag(
            "SqlError",
            (e): Effect.Effect<never, InvalidInput | ApiError> =>
              /unique|duplicate/i.test(String(e.cause))
                ? Effect.fail(
                    new InvalidInput({ field: "name", reason: `a tenant named ${JSON.stringify(name)} exists` })
                  )
                : storageFailure("creating a tenant")(e)
          )
        )
    })

    const createToken = Effect.fn("Tenants.createToken")(function* (
      tenantId: string,
      name: string,
      expiresAt?: string
    ) {
      const expiry = yield* expiryOf(expiresAt)
      const known = yield* sql`SELECT 1 FROM tenants WHERE id = ${tenantId}`.pipe(
        Effect.catchAll(storageFailure("creating a token"))
      )
      if (known.length === 0) return yield* new NotFound({ reason: `no tenant ${tenantId}` })
      return yield* issue(tenantId, name, expiry, null).pipe(Effect.catchAll(storageFailure("creating a token")))
    })

    const listTokens = Effect.fn("Tenants.listTokens")(function* (tenantId?: string) {
      const rows = yield* sql<TokenRow>`
        SELECT id, tenant_id, label, created_at, last_used_at, expires_at, revoked_at FROM tokens
        ${tenantId === undefined ? sql`` : sql`WHERE tenant_id = ${tenantId}`}
        ORDER BY tenant_id, created_at, id`.pipe(Effect.catchAll(storageFailure("listing tokens")))
      return rows.map(tokenInfo)
    })

    const revokeToken = Effect.fn("Tenants.revokeToken")(function* (id: string) {
      yield* sql`UPDATE tokens SET revoked_at = now() WHERE id = ${id} AND revoked_at IS NULL`.pipe(
        Effect.catchAll(storageFailure("revoking a token"))
      )
      return tokenInfo(yield* tokenRow(id).pipe(Effect.catchTag("SqlError", storageFailure("revoking a token"))))
    })

    const rotateToken = Effect.fn("Tenants.rotateToken")(function* (id: string) {
      return yield* sql
        .withTransaction(
          Effect.gen(function* () {
            const old = yield* tokenRow(id)
            if (old.revoked_at !== null)
              return yield* new InvalidInput({ field: "token", reason: `${id} is revoked: create a new one instead` })
            yield* sql`UPDATE tokens SET revoked_at = now() WHERE id = ${id}`
            return yield* issue(old.tenant_id, old.label, old.expires_at, id)
          })
        )
        .pipe(Effect.catchTag("SqlError", storageFailure("rotating a token")))
    })

    /**
     * Resolves a bearer token to its caller, from the database on every request (so a revocation holds at once on
     * every server); hashes are compared in constant time, and the last use is written at most once a minute.
     * The same statement reads the tenant's head files revision, so that a no-change check needs no other.
     */
    const authenticate = Effect.fn("Tenants.authenticate")(function* (token: Redacted.Redacted<string>) {
      const parsed = parseToken(Redacted.value(token).trim())
      const rows = parsed ? yield* sql.unsafe<TokenCheckRow>(TOKEN_CHECK.text, TOKEN_CHECK.params(parsed.id)) : []
      const checked = checkToken(parsed, rows[0])
      if (checked === undefined) return Option.none<AuthenticatedCaller>()
      if (checked.stale) yield* sql.unsafe(TOKEN_USED.text, TOKEN_USED.params(checked.caller.tokenId))
      return Option.some(checked.caller)
    })

    return { createTenant, listTenants, createToken, listTokens, revokeToken, rotateToken, authenticate } as const
  })
}) {}

/** The store as the command line's admin operations, for a database no server holds. */
export const adminOps = (tenants: Tenants): AdminOps => {
  const e = adminErrors
  return {
    createTenant: (name) => e(tenants.createTenant(name)),
    listTenants: () => e(tenants.listTenants()),
    createToken: (tenantId, name, expiresAt) => e(tenants.createToken(tenantId, name, expiresAt)),
    listTokens: (tenantId) => e(tenants.listTokens(tenantId)),
    revokeToken: (id) => e(tenants.revokeToken(id)),
    rotateToken: (id) => e(tenants.rotateToken(id))
  }
}
