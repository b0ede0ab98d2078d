/** Contents remember the SHA-256 of the file bytes they were last synced with, so an unchanged file needs no parse. */
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"

// file_sha256 is only true while the row is as that sync left it: an update that changes a synced field
// without setting file_sha256 in the same statement clears it (and blanks a stale version_hash, as before).
export default Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe(`
ALTER TABLE contents ADD COLUMN file_sha256 text;

CREATE FUNCTION agentsync_stale_content() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (to_jsonb(NEW) - 'updated_at' - 'created_at' - 'version_hash' - 'file_sha256')
     IS DISTINCT FROM (to_jsonb(OLD) - 'updated_at' - 'created_at' - 'version_hash' - 'file_sha256') THEN
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
DROP TRIGGER contents_stale_hash ON contents;
CREATE TRIGGER contents_stale_hash BEFORE UPDATE ON contents
  FOR EACH ROW EXECUTE FUNCTION agentsync_stale_content();
`)
})
