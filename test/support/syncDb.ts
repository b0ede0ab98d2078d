/** Test support for database sync: migrated databases, scoped clients, and loading a known state into a database. */
import { Reactivity } from "@effect/experimental"
import { PgClient } from "@effect/sql-pg"
import { Effect, Option, Redacted } from "effect"
import pg from "pg"
import type { TargetState } from "../../src/domain/db/importPlan.js"
import type { ContextExport, SkillExport, UserExport } from "../../src/domain/db/tables.js"
import { Database } from "../../src/services/ProjectDatabase.js"
import { freshDatabase } from "./pg.js"

/** A fresh database with the project migrations applied. */
export const migratedDatabase = async (prefix = "sync"): Promise<string> => {
  const url = await freshDatabase(prefix)
  await Effect.runPromise(
    Database.runProjectMigrations().pipe(
      Effect.provide(Database.layer({ url: Option.some(Redacted.make(url)), dataDir: "" })),
      Effect.scoped
    )
  )
  return url
}

/** A client on `url` for as long as the scope is open. */
export const clientOf = (url: string) =>
  PgClient.make({ url: Redacted.make(url), maxConnections: 4 }).pipe(Effect.provide(Reactivity.layer))

import { query } from "./pg.js"

export { query }

/** A database by URL (a connection of its own for the call) or an open node-postgres client (reused across calls). */
export type Db = string | pg.ClientBase

/** Runs `f` on `db`: an open client as it is, a URL on a connection opened and closed around it. */
const onClient = async <A>(db: Db, f: (client: pg.ClientBase) => Promise<A>): Promise<A> => {
  if (typeof db !== "string") return f(db)
  const client = new pg.Client({ connectionString: db })
  await client.connect()
  try {
    return await f(client)
  } finally {
    await client.end()
  }
}

/** A node-postgres client on `url`, for a test that loads and reads many states (connecting is most of a small call's time). */
export const connect = async (url: string): Promise<pg.Client> => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  return client
}

/** Replaces the synced tables' contents with `state` (sessions belong to the first user, as the schema demands one). */
export const loadState = (db: Db, state: TargetState) =>
  onClient(db, async (client) => {
    const owner = state.users[0]?.id
    await client.query("BEGIN")
    await client.query("DELETE FROM user_contexts; DELETE FROM user_sessions; DELETE FROM skills; DELETE FROM users")
    await client.query("INSERT INTO users SELECT * FROM json_populate_recordset(null::users, $1::json)", [
      JSON.stringify(state.users)
    ])
    if (owner !== undefined) {
      await client.query("INSERT INTO user_sessions (id, user_id) SELECT unnest($1::text[]), $2", [
        state.sessionIds,
        owner
      ])
    }
    await client.query("INSERT INTO skills SELECT * FROM json_populate_recordset(null::skills, $1::json)", [
      JSON.stringify(state.skills)
    ])
    await client.query(
      "INSERT INTO user_contexts SELECT * FROM json_populate_recordset(null::user_contexts, $1::json)",
      [JSON.stringify(state.contexts)]
    )
    await client.query("COMMIT")
  })

const TS = (c: string) => `to_char(${c} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS ${c}`

/** The synced tables' contents, read with plain node-postgres, ids in code-point order. */
export const readState = (db: Db): Promise<TargetState> =>
  onClient(db, async (client) => {
    const rows = async <R>(text: string) => (await client.query(text)).rows as Array<R>
    const users = await rows<UserExport>(
      `SELECT id, name, email, display_name, roles, ${TS("created_at")}, ${TS("updated_at")} FROM users ORDER BY id COLLATE "C"`
    )
    const skills = await rows<SkillExport>(
      `SELECT id, name, description, enabled, tags, category, assigned_agents, instructions, form, original, extra, mode, version_hash, ${TS("created_at")}, ${TS("updated_at")}
         FROM skills ORDER BY id COLLATE "C"`
    )
    const contexts = await rows<ContextExport>(
      `SELECT id, user_id, session_id, name, data, ${TS("created_at")}, ${TS("updated_at")} FROM user_contexts ORDER BY id COLLATE "C"`
    )
    const sessions = await rows<{ id: string }>(`SELECT id FROM user_sessions ORDER BY id COLLATE "C"`)
    return { users, skills, contexts, sessionIds: sessions.map((s) => s.id) }
  })

/** Deterministic rows for volume tests: `n` users, each with `perUser` contexts. */
export const seedVolume = async (url: string, users: number, contextsPerUser: number, prefix = "") => {
  await query(
    url,
    `INSERT INTO users (id, name, email, display_name, roles, created_at, updated_at)
       SELECT '${prefix}u' || lpad(i::text, 6, '0'), '${prefix}user' || i, '${prefix}user' || i || '@example.com', 'User ' || i,
              ARRAY['member', 'r' || (i % 3)], '2025-01-01T00:00:00Z', '2025-01-02T00:00:00Z'
         FROM generate_series(1, ${users}) i;
     INSERT INTO user_contexts (id, user_id, session_id, name, data, created_at, updated_at)
       SELECT '${prefix}c' || lpad(i::text, 7, '0'), '${prefix}u' || lpad((1 + i % ${users})::text, 6, '0'), NULL, 'context ' || i,
              jsonb_build_object('i', i, 'tags', jsonb_build_array('a', 'b'), 'note', repeat('x', 40)),
              '2025-01-01T00:00:00Z', '2025-01-03T00:00:00Z'
         FROM generate_series(1, ${users * contextsPerUser}) i;`
  )
}
