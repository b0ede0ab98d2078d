/** The database area of the tenant API: the tenant's synced tables exported and imported as NDJSON, and direct-mode info. */
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import { Schema } from "effect"
import { SYNC_TABLES } from "../domain/db/tables.js"
import { PartialImport } from "../errors.js"
import { described, InvalidInputWire, tenantGroups } from "./common.js"
import { IDEMPOTENCY_HEADER, IdempotencyHeaders } from "./files.js"
import { NDJSON } from "./ndjson.js"

export { NDJSON } from "./ndjson.js"

/** The route suffixes, shared by both families and by the streaming client. */
export const DatabaseRoutes = {
  info: "/database",
  export: "/database/export",
  import: "/database/import"
} as const

export const TableCounts = Schema.Struct({
  users: Schema.NonNegativeInt,
  skills: Schema.NonNegativeInt,
  contexts: Schema.NonNegativeInt
})

/** How to reach the tenant's copy of the synced tables directly, when the server offers it, and their sizes. */
export class DatabaseInfo extends Schema.Class<DatabaseInfo>("DatabaseInfo")({
  /** A Postgres URL for direct sync; null when the server does not expose its database (use the API transport). */
  url: Schema.NullOr(Schema.Redacted(Schema.String)),
  /** The Postgres schema holding this tenant's tables. */
  schema: Schema.String,
  counts: TableCounts
}) {}

export const TableImportReportSchema = Schema.Struct({
  table: Schema.Literal(...SYNC_TABLES),
  total: Schema.NonNegativeInt,
  inserted: Schema.NonNegativeInt,
  updated: Schema.NonNegativeInt,
  unchanged: Schema.NonNegativeInt,
  skipped: Schema.NonNegativeInt,
  skips: Schema.Array(Schema.Struct({ id: Schema.String, reason: Schema.String })),
  session_cleared: Schema.NonNegativeInt,
  committed: Schema.Boolean
})

export class ImportResult extends Schema.Class<ImportResult>("ImportResult")({
  dry_run: Schema.Boolean,
  tables: Schema.Array(TableImportReportSchema)
}) {}

/** An import that committed some tables before one failed: the error class itself, answered with status 500. */
export const PartialImportWire = PartialImport.annotations({
  identifier: "PartialImport",
  ...HttpApiSchema.annotations({
    status: 500,
    description: "Some tables were committed before one failed: `completed` of `total`; run the import again."
  })
})

const Ndjson = HttpApiSchema.Text({ contentType: NDJSON })
const ExportParams = Schema.Struct({
  table: Schema.Literal(...SYNC_TABLES),
  digests: Schema.optional(Schema.Literal("true"))
})

/** With `digests=true` the export carries, instead of rows, each id with the md5 digest of its compared columns. */
export const DigestLine = Schema.Struct({
  kind: Schema.Literal("digest"),
  id: Schema.String,
  digest: Schema.String.pipe(Schema.pattern(/^[0-9a-f]{32}$/))
})
const ImportParams = Schema.Struct({ dry_run: Schema.optional(Schema.Literal("true", "false")) })

const database = tenantGroups(
  {
    sync: "database",
    cloud: "cloudDatabase",
    description: "The tenant's copy of the synced tables (users, skills, contexts), exported and imported as NDJSON."
  },
  [
    HttpApiEndpoint.get("info", DatabaseRoutes.info)
      .addSuccess(DatabaseInfo)
      .pipe(
        described(
          "Database info",
          "Counts of the tenant's synced tables, and a Postgres URL for direct sync when the server exposes one."
        )
      ),
    HttpApiEndpoint.get("export", DatabaseRoutes.export)
      .setUrlParams(ExportParams)
      .addSuccess(Ndjson)
      .pipe(
        described(
          "Export a table",
          'One table as NDJSON: a header line, then one `{kind, row}` line per row in id order (with digests=true, one `{kind: "digest", id, digest}` line per row), then an end line with the count.'
        )
      ),
    HttpApiEndpoint.post("import", DatabaseRoutes.import)
      .setUrlParams(ImportParams)
      .setHeaders(IdempotencyHeaders)
      .setPayload(Ndjson)
      .addSuccess(ImportResult)
      .addError(InvalidInputWire)
      .addError(PartialImportWire)
      .pipe(
        described(
          "Import rows",
          `NDJSON body: a header line, then rows of users, skills and contexts, then an end line. The whole body is validated first; a malformed body is rejected (400) naming the offending lines and ids, and nothing is written. With dry_run=true nothing is committed. A retry with the same \`${IDEMPOTENCY_HEADER}\` answers with the committed import's result instead of running it again.`
        )
      )
  ]
)

export class SyncDatabaseGroup extends database.sync {}
export class CloudDatabaseGroup extends database.cloud {}
