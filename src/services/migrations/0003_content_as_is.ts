/** Items keep what they were read from: path, front-matter format and text, extra fields; files beside them are stored by content. */
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"

// `extra` is json, not jsonb, so fields keep their written order. `head`/`original` hold the text before a
// body (front matter and fences) or a whole config.yaml, so an unchanged item is written back byte for byte.
// The hash of every item now covers its new fields: stored hashes are blanked and recomputed on the next run,
// and every content row forgets its file hash so that its file is compared once more.
export default Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe(`
ALTER TABLE contents
  ADD COLUMN path text,
  ADD COLUMN format text NOT NULL DEFAULT 'yaml' CHECK (format IN ('yaml', 'toml', 'json', 'none')),
  ADD COLUMN head text,
  ADD COLUMN extra json NOT NULL DEFAULT '{}',
  ADD COLUMN published_on timestamptz,
  ADD COLUMN content_updated_on timestamptz;
UPDATE contents c SET
  path = c.slug || CASE WHEN EXISTS (SELECT 1 FROM content_sources s WHERE s.source = c.source AND s.layout = 'directory')
    THEN '/index.md' ELSE '.md' END,
  version_hash = '',
  file_sha256 = NULL;
ALTER TABLE contents ALTER COLUMN path SET NOT NULL;
-- A row inserted by hand without a path gets the one its source's layout gives a new item.
CREATE FUNCTION agentsync_content_path() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.path IS NULL THEN
    NEW.path := NEW.slug || CASE WHEN EXISTS (SELECT 1 FROM content_sources s WHERE s.source = NEW.source AND s.layout = 'directory')
      THEN '/index.md' ELSE '.md' END;
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER contents_path BEFORE INSERT ON contents FOR EACH ROW EXECUTE FUNCTION agentsync_content_path();

ALTER TABLE content_sources ADD COLUMN original text;

ALTER TABLE agents
  ADD COLUMN form text NOT NULL DEFAULT 'folder' CHECK (form IN ('folder', 'file')),
  ADD COLUMN original text,
  ADD COLUMN extra json NOT NULL DEFAULT '{}';
UPDATE agents SET version_hash = '';
ALTER TABLE skills
  ADD COLUMN form text NOT NULL DEFAULT 'folder' CHECK (form IN ('folder', 'file')),
  ADD COLUMN original text,
  ADD COLUMN extra json NOT NULL DEFAULT '{}';
UPDATE skills SET version_hash = '';

-- Files beside items (images of a page bundle, a skill's scripts): one row per path, bytes stored once per digest.
CREATE TABLE item_blobs (
  sha256 text PRIMARY KEY,
  size bigint NOT NULL,
  bytes bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE item_files (
  path text PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('agents', 'skills', 'content')),
  owner text,
  sha256 text NOT NULL REFERENCES item_blobs (sha256),
  mode integer NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX item_files_owner ON item_files (kind, owner);
`)
})
