/** Items keep their own file's mode (its executable bit), as the files beside them already do. */
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"

// 420 is 0644, 493 is 0755: what `keptMode` makes of any mode. Rows stored before are 0644, as every item file was
// written then. A mode is compared on its own, never through the hash (see domain/hash.ts): the stale-hash triggers
// leave a mode-only update alone, so a `chmod +x` synced to the database keeps the row's hash and file hash trusted.
export default Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe(`
ALTER TABLE agents ADD COLUMN mode integer NOT NULL DEFAULT 420 CHECK (mode IN (420, 493));
ALTER TABLE skills ADD COLUMN mode integer NOT NULL DEFAULT 420 CHECK (mode IN (420, 493));
ALTER TABLE contents ADD COLUMN mode integer NOT NULL DEFAULT 420 CHECK (mode IN (420, 493));

CREATE OR REPLACE FUNCTION agentsync_stale_hash() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.version_hash = OLD.version_hash
     AND (to_jsonb(NEW) - 'updated_at' - 'created_at' - 'position' - 'mode')
         IS DISTINCT FROM (to_jsonb(OLD) - 'updated_at' - 'created_at' - 'position' - 'mode') THEN
    NEW.version_hash := '';
    NEW.updated_at := now();
  END IF;
  RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION agentsync_stale_content() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (to_jsonb(NEW) - 'updated_at' - 'created_at' - 'version_hash' - 'file_sha256' - 'mode')
     IS DISTINCT FROM (to_jsonb(OLD) - 'updated_at' - 'created_at' - 'version_hash' - 'file_sha256' - 'mode') THEN
    IF NEW.version_hash = OLD.version_hash THEN
      NEW.version_hash := '';
      NEW.updated_at := now();
    END IF;
    IF NEW.file_sha256 IS NOT DISTINCT FROM OLD.file_sha256 THEN
      NEW.file_sha256 := NULL;
    END IF;
  END IF;
  RETURN NEW;
END
$$;
`)
})
