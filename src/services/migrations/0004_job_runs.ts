/** `job_runs`: one row per fire of a scheduled job, claimed by one runner; shared by the project and the server database. */
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"

// IF NOT EXISTS: the project and the tenant server both install this table, and may share one database, where
// a `jobs run` and a `serve --jobs` then coordinate through the same rows (their migrators take one lock, so the
// second to run finds the table and index made). The partial unique index keeps a
// job to one running row at a time across every runner; a claim that meets it (or the primary key) does nothing.
export default Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe(`
CREATE TABLE IF NOT EXISTS job_runs (
  job text NOT NULL,
  scheduled_at timestamptz NOT NULL,
  trigger text NOT NULL,
  status text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'timed_out', 'expired')),
  owner text NOT NULL,
  started_at timestamptz NOT NULL,
  lease_until timestamptz,
  finished_at timestamptz,
  duration_ms bigint,
  summary text,
  error text,
  PRIMARY KEY (job, scheduled_at)
);
CREATE UNIQUE INDEX IF NOT EXISTS job_runs_one_running ON job_runs (job) WHERE status = 'running';
`)
})
