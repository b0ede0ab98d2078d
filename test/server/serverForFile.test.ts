import { Redacted } from "effect"
import { describe, expect, it } from "vitest"
import { adminUrl, query } from "../support/pg.js"
import { serverForFile } from "./support.js"

let seen: string | undefined
const exists = async (url: string) =>
  (
    await query(adminUrl(), "SELECT 1 FROM pg_database WHERE datname = $1", [
      decodeURIComponent(new URL(url).pathname.slice(1))
    ])
  ).length === 1

describe("a server for the tests of a block", () => {
  const server = serverForFile("serverforfile")
  it("answers on loopback over a database of its own", async () => {
    const t = await server.createTenant("first")
    expect(Redacted.value(t.token)).toMatch(/^ast_/)
    expect((await fetch(`${server.url}/livez`)).status).toBe(200)
    seen = server.databaseUrl
    expect(await exists(seen)).toBe(true)
  })
})

describe("after the block", () => {
  it("its database is dropped", async () => {
    expect(seen).toBeDefined()
    expect(await exists(seen!)).toBe(false)
  })
})
