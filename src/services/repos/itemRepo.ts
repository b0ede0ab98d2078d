/** The one repository of a table of id-keyed items (agents, skills): batched reads, upserts and deletes with the canonical hash. */
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect, type Schema } from "effect"
import {
  batched,
  type Column,
  collect,
  dbError,
  decodeRow,
  deleteStatement,
  modeStatement,
  upsertStatement
} from "./shared.js"

/** A table of items: its name, the item's Schema and hash, and its columns (every field of the item, in order). */
export interface ItemTable<A extends { readonly id: string }, I> {
  readonly table: string
  /** The span prefix (`AgentsRepo` gives `AgentsRepo.list`). */
  readonly service: string
  readonly schema: Schema.Schema<A, I>
  readonly hash: (item: A) => string
  readonly columns: ReadonlyArray<readonly [name: keyof A & string, type: string]>
}

/** A repository's methods over the SqlClient in context; `version_hash` is stored beside the columns. */
export const itemRepo = <A extends { readonly id: string }, I>(t: ItemTable<A, I>) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const columns: ReadonlyArray<Column> = [...t.columns, ["version_hash", "text"]]
    const UPSERT = upsertStatement(t.table, columns, ["id"])
    const DELETE = deleteStatement(t.table, [["id", "text"]])
    const SET_MODES = modeStatement(t.table, [["id", "text"]])
    const SELECT = `SELECT ${columns.map(([name]) => name).join(", ")} FROM ${t.table} ORDER BY id`
    const toRow = (item: A): Record<string, unknown> => {
      const row: Record<string, unknown> = {}
      for (const [name] of t.columns) row[name] = item[name]
      row["version_hash"] = t.hash(item)
      return row
    }
    const list = Effect.fn(`${t.service}.list`)(function* () {
      const rows = yield* sql
        .unsafe<Record<string, unknown>>(SELECT)
        .pipe(Effect.mapError(dbError(`cannot read ${t.table}`)))
      return collect(
        rows,
        (r) => String(r["id"]),
        ({ version_hash: _, ...fields }, key) => decodeRow(t.schema, key, fields),
        t.hash
      )
    })
    const upsert = Effect.fn(`${t.service}.upsert`)((items: ReadonlyArray<A>) =>
      batched(sql, UPSERT, items.map(toRow), `cannot write ${t.table}`)
    )
    const remove = Effect.fn(`${t.service}.remove`)((ids: ReadonlyArray<string>) =>
      batched(
        sql,
        DELETE,
        ids.map((id) => ({ id })),
        `cannot delete ${t.table}`
      )
    )
    /** Sets the mode of each item's file, nothing else of its row. */
    const setModes = Effect.fn(`${t.service}.setModes`)(
      (modes: ReadonlyArray<{ readonly key: string; readonly mode: number }>) =>
        batched(
          sql,
          SET_MODES,
          modes.map((m) => ({ id: m.key, mode: m.mode })),
          `cannot write ${t.table}`
        )
    )
    return { list, upsert, remove, setModes } as const
  })
