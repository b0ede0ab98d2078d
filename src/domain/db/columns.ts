/** The synced tables described once: each column's Postgres type and Schema, from which the export models, the row comparison and (in `stages/db/sql.ts`) every SQL column list are made. */
import { Record as R, type Schema } from "effect"
import { canonicalJson } from "../hash.js"
import { hasLoneSurrogate } from "../text.js"

/** A column's type as the tables declare it; it decides its SQL casts, its wire encoding and how two values compare. */
export type ColumnType = "text" | "text[]" | "boolean" | "integer" | "json" | "jsonb" | "timestamptz"

export interface Column<S extends Schema.Schema.Any = Schema.Schema.Any> {
  readonly type: ColumnType
  readonly schema: S
}

export const column = <S extends Schema.Schema.Any>(type: ColumnType, schema: S): Column<S> => ({ type, schema })

export interface TableSpec<C extends Record<string, Column> = Record<string, Column>> {
  /** The Postgres table. */
  readonly name: string
  /** Every column in the order exports, COPY and the staging tables use (`id` first, `created_at`, `updated_at` last). */
  readonly columns: C
}

/** The Schema fields of a table's columns. */
export type FieldsOf<C extends Record<string, Column>> = { readonly [K in keyof C]: C[K]["schema"] }

export const fieldsOf = <C extends Record<string, Column>>(columns: C): FieldsOf<C> =>
  R.map(columns, (c) => c.schema) as FieldsOf<C>

/** The names of a table's columns, in order. */
export const columnNames = (spec: TableSpec): ReadonlyArray<string> => Object.keys(spec.columns)

/** The columns an import compares and writes on update: all but the key and `created_at` (never overwritten). */
export const comparedColumns = (spec: TableSpec): ReadonlyArray<readonly [string, Column]> =>
  Object.entries(spec.columns).filter(([name]) => name !== "id" && name !== "created_at")

const sameTexts = (a: ReadonlyArray<string>, b: ReadonlyArray<string>) =>
  a.length === b.length && a.every((x, i) => x === b[i])

const TIMESTAMP = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?(Z|[+-]\d{2}:\d{2})$/

/** Microseconds since the epoch, or undefined when the text is not a valid timestamp. */
export const timestampMicros = (s: string): bigint | undefined => {
  const m = TIMESTAMP.exec(s)
  if (!m) return undefined
  const ms = Date.parse(`${m[1]}${m[3]}`)
  if (Number.isNaN(ms)) return undefined
  return BigInt(ms) * 1000n + BigInt((m[2] ?? "").padEnd(6, "0"))
}

/** Two timestamps denote the same instant. */
export const sameInstant = (a: string, b: string): boolean => timestampMicros(a) === timestampMicros(b)

/** Text Postgres can store: no NUL character, no lone surrogate (which would not survive UTF-8). */
export const storable = (s: string) => !s.includes("\u0000") && !hasLoneSurrogate(s)

/** Two values of a column equal as an import sees them: arrays element-wise, JSON canonically, timestamps by instant. */
const sameValue: Record<ColumnType, (a: never, b: never) => boolean> = {
  text: (a: string | null, b: string | null) => a === b,
  boolean: (a: boolean, b: boolean) => a === b,
  integer: (a: number, b: number) => a === b,
  "text[]": sameTexts,
  json: (a: unknown, b: unknown) => canonicalJson(a) === canonicalJson(b),
  jsonb: (a: unknown, b: unknown) => canonicalJson(a) === canonicalJson(b),
  timestamptz: sameInstant
}

/** Whether two rows of a table agree on every compared column (what an import would write, created_at excluded). */
export const sameRowOf =
  <C extends Record<string, Column>>(spec: TableSpec<C>) =>
  (a: Schema.Struct.Type<FieldsOf<C>>, b: Schema.Struct.Type<FieldsOf<C>>): boolean => {
    const x = a as Record<string, never>
    const y = b as Record<string, never>
    for (const [name, c] of comparedColumns(spec))
      if (!sameValue[c.type](x[name] as never, y[name] as never)) return false
    return true
  }
