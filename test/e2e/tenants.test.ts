// `agentsync tenant` and `agentsync token` while `agentsync serve` runs: through the admin API on the embedded
// database (one process holds it) and on PostgreSQL with two replicas, where a revoked token is refused at once by both.
import type { ChildProcess } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { agentsync, ensureBuilt, startServe } from "../support/cli.js"
import { freshDatabase, query } from "../support/pg.js"

const ADMIN = "e2e-admin-token-0123456789abcdef"
const temps: Array<string> = []
const children: Array<ChildProcess> = []
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "agentsync-e2e-tenants-"))
  temps.push(d)
  return d
}

const serve = async (env: Record<string, string>, cwd: string) => {
  const s = await startServe(env, cwd)
  children.push(s.child)
  return s.url
}

/** `agentsync --json ARGS` against a server's admin API; the parsed stdout, with the exit code checked. */
const admin = async (url: string, args: ReadonlyArray<string>, cwd: string) => {
  const r = await agentsync(["--json", ...args], {
    cwd,
    env: { AGENTSYNC_SERVER_URL: url, AGENTSYNC_ADMIN_TOKEN: ADMIN }
  })
  expect(r.code, r.stderr).toBe(0)
  return JSON.parse(r.stdout)
}

const manifestStatus = (url: string, token: string) =>
  fetch(`${url}/api/v1/sync/files/manifest`, { headers: { authorization: `Bearer ${token}` } }).then(async (r) => {
    await r.arrayBuffer()
    return r.status
  })

beforeAll(() => ensureBuilt())

afterAll(() => {
  for (const c of children) c.kill("SIGKILL")
  for (const d of temps) rmSync(d, { recursive: true, force: true })
})

describe("on the embedded database, while the server runs", () => {
  let dir: string
  let url: string
  beforeAll(async () => {
    dir = tempDir()
    url = await serve({ AGENTSYNC_ADMIN_TOKEN: ADMIN }, dir)
  }, 120_000)

  it("without a server URL the held database is named, with what to do (exit 2)", async () => {
    const r = await agentsync(["tenant", "create", "Acme"], { cwd: dir })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain("held by a running server")
    expect(r.stderr).toContain("AGENTSYNC_ADMIN_TOKEN")
  }, 60_000)

  it("tenant create|list and token create|list|rotate|revoke work through the server", async () => {
    const created = await admin(url, ["tenant", "create", "Acme"], dir)
    expect(created.token).toMatch(/^ast_[0-9a-f]{16}_/)
    expect(await manifestStatus(url, created.token)).toBe(200)

    const tenants = await admin(url, ["tenant", "list"], dir)
    expect(tenants).toContainEqual(expect.objectContaining({ id: created.tenant_id, name: "Acme", active_tokens: 1 }))

    const ci = await admin(url, ["token", "create", created.tenant_id, "--name", "ci", "--expires-in", "30 days"], dir)
    expect(ci).toMatchObject({ tenant_id: created.tenant_id, name: "ci", revoked_at: null })
    expect(Date.parse(ci.expires_at) - Date.now()).toBeGreaterThan(29 * 86_400_000)
    expect(await manifestStatus(url, ci.token)).toBe(200)

    const listed = await admin(url, ["token", "list", "--tenant", created.tenant_id], dir)
    expect(listed.map((t: { name: string }) => t.name).sort()).toEqual(["admin", "ci"])
    const ciListed = listed.find((t: { id: string }) => t.id === ci.id)
    expect(ciListed.last_used_at).not.toBeNull()
    expect(JSON.stringify(listed)).not.toContain(ci.token.slice(21))

    const rotated = await admin(url, ["token", "rotate", ci.id], dir)
    expect(rotated).toMatchObject({ name: "ci", replaced: ci.id, expires_at: ci.expires_at })
    expect(await manifestStatus(url, ci.token)).toBe(401)
    expect(await manifestStatus(url, rotated.token)).toBe(200)

    const revoked = await admin(url, ["token", "revoke", rotated.id], dir)
    expect(revoked.revoked_at).not.toBeNull()
    expect(await manifestStatus(url, rotated.token)).toBe(401)
    expect(await manifestStatus(url, created.token)).toBe(200)
  }, 120_000)

  it("a wrong admin token is refused and named as such (exit 1); an unknown token id is named", async () => {
    const wrong = await agentsync(["tenant", "list"], {
      cwd: dir,
      env: { AGENTSYNC_SERVER_URL: url, AGENTSYNC_ADMIN_TOKEN: "not-the-admin-token-at-all-000" }
    })
    expect(wrong.code).toBe(1)
    expect(wrong.stderr).toContain("wrong admin token")
    const unknown = await agentsync(["token", "revoke", "0000000000000000"], {
      cwd: dir,
      env: { AGENTSYNC_SERVER_URL: url, AGENTSYNC_ADMIN_TOKEN: ADMIN }
    })
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain("no token 0000000000000000")
  }, 60_000)
})

describe("on PostgreSQL with two replicas", () => {
  let databaseUrl: string
  let one: string
  let two: string
  let dir: string
  beforeAll(async () => {
    databaseUrl = await freshDatabase("e2etenants")
    dir = tempDir()
    ;[one, two] = await Promise.all([
      serve({ DATABASE_URL: databaseUrl, AGENTSYNC_ADMIN_TOKEN: ADMIN }, dir),
      serve({ DATABASE_URL: databaseUrl, AGENTSYNC_ADMIN_TOKEN: ADMIN }, dir)
    ])
  }, 120_000)

  it("a token revoked through one replica is refused by the other on its next request", async () => {
    const created = await admin(one, ["tenant", "create", "Globex"], dir)
    const t = await admin(two, ["token", "create", created.tenant_id, "--name", "laptop"], dir)
    expect(await manifestStatus(one, t.token)).toBe(200)
    expect(await manifestStatus(two, t.token)).toBe(200)
    await admin(one, ["token", "revoke", t.id], dir)
    expect(await manifestStatus(two, t.token)).toBe(401)
    expect(await manifestStatus(one, t.token)).toBe(401)
  }, 60_000)

  it("the database directly (no server URL) works beside running servers, and an expired token is refused", async () => {
    const r = await agentsync(["--json", "tenant", "create", "Initech"], {
      cwd: dir,
      env: { DATABASE_URL: databaseUrl }
    })
    expect(r.code, r.stderr).toBe(0)
    const created = JSON.parse(r.stdout)
    expect(await manifestStatus(two, created.token)).toBe(200)
    await query(databaseUrl, "UPDATE tokens SET expires_at = now() - interval '1 second' WHERE id = $1", [
      created.token_id
    ])
    expect(await manifestStatus(one, created.token)).toBe(401)
    const list = await agentsync(["--json", "token", "list", "--tenant", created.tenant_id], {
      cwd: dir,
      env: { DATABASE_URL: databaseUrl }
    })
    expect(JSON.parse(list.stdout)[0].expires_at).not.toBeNull()
  }, 60_000)

  it("serve refuses a short admin token at start (exit 2), naming the variable, never its value", async () => {
    const r = await agentsync(["serve", "--port", "0"], {
      cwd: dir,
      env: { DATABASE_URL: databaseUrl, AGENTSYNC_ADMIN_TOKEN: "short-secret" }
    })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain("AGENTSYNC_ADMIN_TOKEN")
    expect(r.stderr).not.toContain("short-secret")
  }, 60_000)

  it("without AGENTSYNC_ADMIN_TOKEN on the server, the admin API is off and says how to turn it on", async () => {
    const url = await serve({ DATABASE_URL: databaseUrl }, dir)
    const r = await agentsync(["tenant", "list"], {
      cwd: dir,
      env: { AGENTSYNC_SERVER_URL: url, AGENTSYNC_ADMIN_TOKEN: ADMIN }
    })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain("the admin API is off on this server")
  }, 60_000)
})
