/** The database area of the tenant API: the tenant's synced tables exported and imported as NDJSON, and direct-mode info. */
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"
import { SYNC_TABLES } from "../domain/dbExport.js"
import { PartialImport } from "../errors.js"
import { Authentication, Forbidden, InvalidInputWire, NotFound, ServerErrorWire, TenantPath } from "./common.js"
import { CLOUD_PREFIX, SYNC_PREFIX } from "./files.js"

export const NDJSON = "application/x-ndjson"

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
export const PartialImportWire = PartialImport.annotations(HttpApiSchema.annotations({ status: 500 }))

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

const describe = {
  info: "Counts of the tenant's synced tables, and a Postgres URL for direct sync when the server exposes one.",
  export:
    'One table as NDJSON: a header line, then one `{kind, row}` line per row in id order (with digests=true, one `{kind: "digest", id, digest}` line per row), then an end line with the count.',
  import:
    "NDJSON body: a header line, then rows of users, skills and contexts. The whole body is validated first; a malformed body is rejected (400) naming the offending lines and ids, and nothing is written."
}

/** Direct sync: `{origin}/api/v1/sync/database…`, the tenant is the token's. */
export class SyncDatabaseGroup extends HttpApiGroup.make("database")
  .add(
    HttpApiEndpoint.get("info", DatabaseRoutes.info)
      .addSuccess(DatabaseInfo)
      .annotate(OpenApi.Description, describe.info)
  )
  .add(
    HttpApiEndpoint.get("export", DatabaseRoutes.export)
      .setUrlParams(ExportParams)
      .addSuccess(Ndjson)
      .annotate(OpenApi.Description, describe.export)
  )
  .add(
    HttpApiEndpoint.post("import", DatabaseRoutes.import)
      .setUrlParams(ImportParams)
      .setPayload(Ndjson)
      .addSuccess(ImportResult)
      .addError(InvalidInputWire)
      .addError(PartialImportWire)
      .annotate(OpenApi.Description, describe.import)
  )
  .addError(NotFound)
  .addError(ServerErrorWire)
  .middleware(Authentication)
  .prefix(SYNC_PREFIX)
  .annotate(
    OpenApi.Description,
    "Database sync of the tenant's users, skills and contexts; the tenant is the bearer token's."
  ) {}

/** Cloud relay: `{api}/api/v1/cloud/tenants/{tenantId}/database…`, the tenant in the URL must be the token's. */
export class CloudDatabaseGroup extends HttpApiGroup.make("cloudDatabase")
  .add(HttpApiEndpoint.get("info", `/:tenantId${DatabaseRoutes.info}`).setPath(TenantPath).addSuccess(DatabaseInfo))
  .add(
    HttpApiEndpoint.get("export", `/:tenantId${DatabaseRoutes.export}`)
      .setPath(TenantPath)
      .setUrlParams(ExportParams)
      .addSuccess(Ndjson)
  )
  .add(
    HttpApiEndpoint.post("import", `/:tenantId${DatabaseRoutes.import}`)
      .setPath(TenantPath)
      .setUrlParams(ImportParams)
      .setPayload(Ndjson)
      .addSuccess(ImportResult)
      .addError(InvalidInputWire)
      .addError(PartialImportWire)
  )
  .addError(Forbidden)
  .addError(NotFound)
  .addError(ServerErrorWire)
  .middleware(Authentication)
  .prefix(CLOUD_PREFIX)
  .annotate(
    OpenApi.Description,
    "Database sync through the cloud relay; the tenant in the path must be the token's."
  ) {}
