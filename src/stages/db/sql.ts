/** The SQL column lists of the synced tables, generated from their one description (`TABLES` in domain/db/tables.ts). */
import { type ColumnType, columnNames, comparedColumns, type TableSpec } from "../../domain/db/columns.js"

/** `id, name, …`: every column in table order (the order of COPY, staging tables and INSERT). */
export const columnList = (spec: TableSpec): string => columnNames(spec).join(", ")

const TO_CHAR = (c: string) => `to_char(${c} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`

/** The SELECT list of an export: timestamps as canonical UTC text (six fractional digits), the rest as stored. */
export const selectList = (spec: TableSpec): string =>
  Object.entries(spec.columns)
    .map(([name, c]) => (c.type === "timestamptz" ? `${TO_CHAR(name)} AS ${name}` : name))
    .join(", ")

/** `ROW(…)` of the compared columns, whose text form Postgres prints canonically (json compared as jsonb). */
export const digestRow = (spec: TableSpec): string =>
  `ROW(${comparedColumns(spec)
    .map(([name, c]) => (c.type === "timestamptz" ? TO_CHAR(name) : c.type === "json" ? `${name}::jsonb` : name))
    .join(", ")})`

const SQL_TYPE: Record<ColumnType, string> = {
  text: "text",
  "text[]": "text[]",
  boolean: "boolean",
  integer: "integer",
  json: "json",
  jsonb: "jsonb",
  timestamptz: "timestamptz"
}

/** How `information_schema.columns` names each type (arrays as `element[]`). */
const INFORMATION_SCHEMA_TYPE: Record<ColumnType, string> = { ...SQL_TYPE, timestamptz: "timestamp with time zone" }

/** Each column with the type `information_schema.columns` reports for it (the schema check's expectation). */
export const informationSchemaTypes = (spec: TableSpec): Record<string, string> =>
  Object.fromEntries(Object.entries(spec.columns).map(([name, c]) => [name, INFORMATION_SCHEMA_TYPE[c.type]]))

/** The staging table's column definitions for the bulk path. */
export const stagingColumns = (spec: TableSpec): string =>
  Object.entries(spec.columns)
    .map(([name, c]) => `${name} ${SQL_TYPE[c.type]}`)
    .join(", ")

/**
 * Rows of a chunk as a source: each column one array parameter. Arrays and JSON travel as text (an array literal,
 * JSON text) and are cast where the statement uses them (`typedSource`).
 */
export const chunkSource = (spec: TableSpec): string => {
  const params = Object.values(spec.columns).map(
    (c, i) =>
      `$${i + 1}::${c.type === "boolean" || c.type === "integer" || c.type === "timestamptz" ? c.type : "text"}[]`
  )
  return `SELECT * FROM unnest(${params.join(", ")}) AS s(${columnList(spec)})`
}

/** The value a chunk carries for a column: text arrays as Postgres array literals, JSON as its text. */
const encodeValue: Record<ColumnType, (v: never) => unknown> = {
  text: (v: string | null) => v,
  boolean: (v: boolean) => v,
  integer: (v: number) => v,
  timestamptz: (v: string) => v,
  "text[]": (v: ReadonlyArray<string>) => pgTextArray(v),
  json: (v: unknown) => JSON.stringify(v),
  jsonb: (v: unknown) => JSON.stringify(v)
}

/** The column arrays of a chunk, in the order of `chunkSource`'s parameters. */
export const chunkParams = (spec: TableSpec, rows: ReadonlyArray<object>): Array<ReadonlyArray<unknown>> =>
  Object.entries(spec.columns).map(([name, c]) => {
    const encode = encodeValue[c.type]
    return rows.map((r) => encode((r as Record<string, never>)[name] as never))
  })

/** A Postgres array literal for a text array, so that an array of arrays travels as one text[] parameter. */
export const pgTextArray = (items: ReadonlyArray<string>): string =>
  `{${items.map((s) => `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`).join(",")}}`

const cast = (type: ColumnType) => (type === "text[]" || type === "json" || type === "jsonb" ? `::${type}` : "")

/** `s.id, s.roles::text[] AS roles, …`: the source's columns with their types (the chunk source sends text). */
export const typedSource = (spec: TableSpec, omit: ReadonlyArray<string> = []): string =>
  Object.entries(spec.columns)
    .filter(([name]) => !omit.includes(name))
    .map(([name, c]) => (cast(c.type) === "" ? `s.${name}` : `s.${name}${cast(c.type)} AS ${name}`))
    .join(", ")

/** The compared columns as a row value, each as `expr(name, type)`, json compared as jsonb. */
export const comparedTuple = (spec: TableSpec, expr: (name: string, type: ColumnType) => string): string =>
  `(${comparedColumns(spec)
    .map(([name, c]) => (c.type === "json" ? `${expr(name, c.type)}::jsonb` : expr(name, c.type)))
    .join(", ")})`

/** The target row (`x.`) against the typed source row (`s.`). */
export const targetDiffers = (spec: TableSpec): string =>
  `${comparedTuple(spec, (n) => `x.${n}`)} IS DISTINCT FROM ${comparedTuple(spec, (n, t) => `s.${n}${cast(t)}`)}`

/**
 * The upsert of the rows a classifying statement decided to write (`act` with `action` insert or update): every
 * compared column overwritten, `created_at` kept; one row returned per row written.
 */
export const upsertActed = (target: string, spec: TableSpec): string => {
  const set = comparedColumns(spec)
    .map(([name]) => `${name} = EXCLUDED.${name}`)
    .join(", ")
  return `INSERT INTO ${target} AS t (${columnList(spec)})
  SELECT ${columnList(spec)} FROM act WHERE action IN ('insert', 'update')
  ON CONFLICT (id) DO UPDATE SET ${set}
  RETURNING 1`
}
