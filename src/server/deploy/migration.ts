/** Server migration for deploys: the tenants' releases and their deploy locks. */
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"

export const deployMigration = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE releases (
    id text PRIMARY KEY,
    tenant_id text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    number integer NOT NULL,
    kind text NOT NULL CHECK (kind IN ('deploy', 'rollback')),
    image text NOT NULL,
    digest text NOT NULL,
    tag text,
    source_sha text,
    dirty boolean,
    rollback_of integer,
    status text NOT NULL CHECK (status IN ('pending', 'hook', 'checking', 'active', 'failed', 'superseded')),
    reason text,
    reactivated integer,
    who text NOT NULL,
    message text NOT NULL DEFAULT '',
    health_path text,
    health_timeout_seconds integer,
    idempotency_key text,
    log text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, number),
    UNIQUE (tenant_id, idempotency_key)
  )`
  // At most one active release per tenant: superseding and activating happen in one transaction, in that order.
  yield* sql`CREATE UNIQUE INDEX releases_one_active ON releases (tenant_id) WHERE status = 'active'`
  // One row per tenant. It is held while its lease runs, or while the release started under it is running
  // (with a fresh heartbeat): a killed client or server never leaves a tenant locked for longer than a lease.
  yield* sql`CREATE TABLE deploy_locks (
    tenant_id text PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    id text NOT NULL,
    holder text NOT NULL,
    message text NOT NULL DEFAULT '',
    who text NOT NULL,
    acquired_at timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    release_id text REFERENCES releases(id)
  )`
})
