/** The tenant server's schema, migrated with its own table so it can share a database with the project tables. */
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect, Layer } from "effect"
import { DatabaseError } from "../errors.js"
import jobRuns from "../services/migrations/0004_job_runs.js"
import { runMigrations } from "../services/migrations/run.js"
import { tenantDatabaseMigration, tenantSkillsAsIsMigration } from "./db/handlers.js"
import { deployMigration } from "./deploy/migration.js"

export const MIGRATIONS_TABLE = "agentsync_server_migrations"

const init = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE tenants (
    id text PRIMARY KEY,
    name text NOT NULL UNIQUE,
    head text,
    created_at timestamptz NOT NULL DEFAULT now()
  )`
  // Only a hash of the secret is kept; the id lets a lookup avoid comparing against every row.
  yield* sql`CREATE TABLE tokens (
    id text PRIMARY KEY,
    tenant_id text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    secret_sha256 bytea NOT NULL,
    label text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
  )`
  // Content-addressed per tenant, so a tenant can only reference bytes it has uploaded itself.
  yield* sql`CREATE TABLE blobs (
    tenant_id text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    sha256 text NOT NULL,
    size bigint NOT NULL,
    data bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, sha256)
  )`
  yield* sql`CREATE TABLE revisions (
    id text PRIMARY KEY,
    seq bigserial NOT NULL,
    tenant_id text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    parent text REFERENCES revisions(id),
    manifest jsonb NOT NULL,
    checksum text NOT NULL,
    files integer NOT NULL,
    author text NOT NULL,
    token_id text,
    idempotency_key text,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, idempotency_key)
  )`
  yield* sql`CREATE INDEX revisions_tenant_seq ON revisions (tenant_id, seq DESC)`
  yield* sql`ALTER TABLE tenants ADD CONSTRAINT tenants_head_fk FOREIGN KEY (head) REFERENCES revisions(id)`
})

/**
 * A blob stays pending (its upload's id in `upload_id`) until the revision that references it commits; a
 * refused upload deletes its pending blobs, and pending blobs older than any upload can run are collected.
 */
const pendingBlobs = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE blobs ADD COLUMN upload_id text`
  yield* sql`CREATE INDEX blobs_pending ON blobs (upload_id) WHERE upload_id IS NOT NULL`
})

/**
 * Tokens get a last use (written at most once a minute) and an optional expiry; a database import with an
 * idempotency key keeps its result, so a retried import answers with it instead of running again.
 */
const tokenLifecycle = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE tokens ADD COLUMN IF NOT EXISTS last_used_at timestamptz, ADD COLUMN IF NOT EXISTS expires_at timestamptz`
  yield* sql`CREATE TABLE IF NOT EXISTS database_imports (
    tenant_id text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    idempotency_key text NOT NULL,
    result jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, idempotency_key)
  )`
})

/**
 * Blob bytes are compressed in storage with lz4 where the server has it (PostgreSQL 14 and later, built with
 * lz4), not the default pglz: it keeps most of the space saving at a fraction of the CPU, which pglz spent
 * on every upload (about a third of the database's work on a 100 MiB first push). Blobs already stored keep
 * their compression; a server without lz4 keeps pglz.
 */
const blobCompression = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const lz4 = yield* sql<{ lz4: boolean }>`
    SELECT 'lz4' = ANY(enumvals) AS lz4 FROM pg_settings WHERE name = 'default_toast_compression'`
  if (lz4[0]?.lz4 === true) yield* sql`ALTER TABLE blobs ALTER COLUMN data SET COMPRESSION lz4`
})

/**
 * A revision stores its delta against its parent (rows set, paths deleted) instead of its whole manifest, but for
 * the first of a tenant and one in every few (see server/files/tree.ts): a one-file push wrote and read back the
 * whole tree as jsonb, most of its time. `depth` and `chain` say how far back the last whole manifest is, and the
 * counts `files revisions` shows are kept with the revision. Rows stored before keep their whole manifest.
 */
const revisionDeltas = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  // Idempotent, as the two before it: a server whose migration records were set back runs it again.
  yield* sql`ALTER TABLE revisions
    ALTER COLUMN manifest DROP NOT NULL,
    ADD COLUMN IF NOT EXISTS delta jsonb,
    ADD COLUMN IF NOT EXISTS depth integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS chain integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS added integer,
    ADD COLUMN IF NOT EXISTS changed integer,
    ADD COLUMN IF NOT EXISTS deleted integer`
  // The check is added only where it is missing: run again after migration 11, this form would refuse the rows
  // stored whole as text (which 11's own form of the check allows).
  const checked = yield* sql`
    SELECT 1 FROM pg_constraint WHERE conname = 'revisions_manifest_or_delta' AND conrelid = 'revisions'::regclass`
  if (checked.length === 0)
    yield* sql`ALTER TABLE revisions ADD CONSTRAINT revisions_manifest_or_delta
      CHECK ((manifest IS NULL) <> (delta IS NULL) AND (delta IS NULL OR parent IS NOT NULL))`
})

/**
 * A blob is pending while the upload that wrote it runs: `written_by` names that upload and `uploads` holds a row
 * for each upload running. The upload's commit deletes its row, which makes every blob it wrote permanent at once
 * (the commit had rewritten each blob row to clear `upload_id`: a new version of each of 100,000 rows on a first
 * push). `upload_id` keeps its meaning for rows an older server wrote (pending while set), which is why the new
 * mark is a column of its own: an older server that still runs beside this one clears `upload_id` on commit and
 * collects rows by it, and so never deletes a blob this server made permanent. `written_by` has no index: a blob is
 * looked up by its hash, and the rows of an upload refused or abandoned are found by their hashes or their tenant.
 */
const runningUploads = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE IF NOT EXISTS uploads (
    id text PRIMARY KEY,
    tenant_id text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now()
  )`
  yield* sql`ALTER TABLE blobs ADD COLUMN IF NOT EXISTS written_by text`
  // A server of this storage (pending by `uploads`, whole manifests as text: migration 11) writes `storage` 2 with
  // each revision. An older one writes none, and would take this server's pending blobs for permanent ones: the
  // check refuses its revisions (NOT VALID: the rows stored before keep NULL), so during an upgrade an older server
  // still answers what it can read, and its pushes fail and store nothing.
  yield* sql`ALTER TABLE revisions ADD COLUMN IF NOT EXISTS storage smallint`
  yield* sql`ALTER TABLE revisions DROP CONSTRAINT IF EXISTS revisions_storage,
    ADD CONSTRAINT revisions_storage CHECK (storage IS NOT NULL) NOT VALID`
})

/**
 * A revision's whole manifest is stored as JSON text (`manifest_text`, lz4 where the server has it), not jsonb: the
 * server writes and reads it whole and never queries inside it, and jsonb's input parse was most of a first push's
 * revision insert (700 ms of the database's CPU for 100,000 rows, against under 100 ms as text). Rows stored before
 * keep their jsonb `manifest`; a revision has exactly one of the three forms.
 */
const manifestText = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE revisions
    ADD COLUMN IF NOT EXISTS manifest_text text,
    DROP CONSTRAINT IF EXISTS revisions_manifest_or_delta,
    ADD CONSTRAINT revisions_manifest_or_delta
      CHECK (num_nonnulls(manifest, manifest_text, delta) = 1 AND (delta IS NULL OR parent IS NOT NULL))`
  const lz4 = yield* sql<{ lz4: boolean }>`
    SELECT 'lz4' = ANY(enumvals) AS lz4 FROM pg_settings WHERE name = 'default_toast_compression'`
  if (lz4[0]?.lz4 === true) yield* sql`ALTER TABLE revisions ALTER COLUMN manifest_text SET COMPRESSION lz4`
})

export const migrations = {
  "1_files": init,
  "2_tenant_database": tenantDatabaseMigration,
  "3_pending_blobs": pendingBlobs,
  "4_deploy": deployMigration,
  "5_job_runs": jobRuns,
  "6_tenant_skills_as_is": tenantSkillsAsIsMigration,
  "7_tokens_and_import_keys": tokenLifecycle,
  "8_blob_compression": blobCompression,
  "9_revision_deltas": revisionDeltas,
  "10_running_uploads": runningUploads,
  "11_manifest_text": manifestText,
  // The tenants' skills get `mode` (project migration 0005): the same migration as 6, which adds what is missing.
  "12_tenant_skills_mode": tenantSkillsAsIsMigration
}

/** Runs the server migrations; servers started together on a fresh database serialise (`runMigrations`). */
export const migrate = runMigrations(MIGRATIONS_TABLE, migrations).pipe(
  Effect.mapError((cause) => new DatabaseError({ reason: `server migrations failed: ${cause.message}`, cause }))
)

export const layer: Layer.Layer<never, DatabaseError, SqlClient.SqlClient> = Layer.effectDiscard(migrate)
