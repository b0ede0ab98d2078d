import pg from "pg"
import { describe, expect, it } from "vitest"
import { freshDatabase } from "./support/pg.js"

describe("test harness", () => {
  it("gives each test file a real, empty PostgreSQL database", async () => {
    const url = await freshDatabase()
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    const { rows } = await client.query(
      "select current_database() as db, count(*)::int as n from pg_tables where schemaname = 'public'"
    )
    await client.end()
    expect(rows[0].db).toMatch(/^t_[0-9a-f]{12}$/)
    expect(rows[0].n).toBe(0)
  })
})
