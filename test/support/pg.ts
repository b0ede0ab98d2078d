/** Test support: a fresh, empty database on the throwaway PostgreSQL server that `scripts/with-postgres.mjs` started. */
import { randomBytes } from "node:crypto"
import { Effect } from "effect"
import pg from "pg"

export const adminUrl = (): string => {
  const url = process.env["AGENTSYNC_TEST_PG_URL"]
  if (!url)
    throw new Error("AGENTSYNC_TEST_PG_URL is not set: run the tests through `npm test` (scripts/with-postgres.mjs)")
  return url
}

/** Creates an empty database and returns its URL; each test file gets its own, so files run in parallel. */
export const freshDatabase = async (prefix = "t"): Promise<string> => {
  const name = `${prefix}_${randomBytes(6).toString("hex")}`
  const client = new pg.Client({ connectionString: adminUrl() })
  await client.connect()
  try {
    await client.query(`CREATE DATABASE "${name}"`)
  } finally {
    await client.end()
  }
  const url = new URL(adminUrl())
  url.pathname = `/${name}`
  return url.toString()
}

/** Drops a database made by `freshDatabase`, closing what is still connected to it. */
export const dropDatabase = async (url: string): Promise<void> => {
  const name = decodeURIComponent(new URL(url).pathname.slice(1))
  const client = new pg.Client({ connectionString: adminUrl() })
  await client.connect()
  try {
    await client.query(`DROP DATABASE IF EXISTS "${name.replaceAll('"', '""')}" WITH (FORCE)`)
  } finally {
    await client.end()
  }
}

/** A fresh, empty database for the enclosing scope (`it.scoped`, `it.layer`): dropped when the scope closes. */
export const scopedDatabase = (prefix = "t") =>
  Effect.acquireRelease(
    Effect.promise(() => freshDatabase(prefix)),
    (url) => Effect.promise(() => dropDatabase(url))
  )

/** Runs one statement with plain node-postgres on its own connection (independent of the code under test). */
export const query = async <R extends object = Record<string, unknown>>(
  url: string,
  text: string,
  params: ReadonlyArray<unknown> = []
) => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query(text, params as Array<unknown>)).rows as Array<R>
  } finally {
    await client.end()
  }
}

/** `query` as an Effect, for tests on `@effect/vitest`. */
export const sqlRows = <R extends object = Record<string, unknown>>(
  url: string,
  text: string,
  params: ReadonlyArray<unknown> = []
) => Effect.promise(() => query<R>(url, text, params))
