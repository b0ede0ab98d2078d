/** The project tables: agents, skills, content (+ sources), access rules (role and user rules apart), users, sessions, contexts. */
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"

// A row edited by hand (a plain UPDATE that leaves version_hash alone) gets an empty hash, so the next diff
// recomputes it from the fields instead of trusting a stale one.
const staleHashTrigger = (table: string) => `
CREATE TRIGGER ${table}_stale_hash BEFORE UPDATE ON ${table}
  FOR EACH ROW EXECUTE FUNCTION agentsync_stale_hash();
`

export default Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe(`
CREATE TABLE users (
  id text PRIMARY KEY,
  name text NOT NULL UNIQUE,
  email text NOT NULL UNIQUE,
  display_name text NOT NULL DEFAULT '',
  roles text[] NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE user_sessions (
  id text PRIMARY KEY,
  user_id text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE user_contexts (
  id text PRIMARY KEY,
  user_id text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  session_id text REFERENCES user_sessions(id) ON DELETE SET NULL,
  name text NOT NULL,
  data jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE skills (
  id text PRIMARY KEY,
  name text NOT NULL,
  description text NOT NULL,
  enabled boolean NOT NULL,
  tags text[] NOT NULL,
  category text NOT NULL,
  assigned_agents text[] NOT NULL,
  instructions text NOT NULL,
  version_hash text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
-- settings is json, not jsonb: json keeps the keys in their written order, so a rendered config.yaml
-- comes back byte for byte.
CREATE TABLE agents (
  id text PRIMARY KEY,
  name text NOT NULL,
  display_name text NOT NULL,
  description text NOT NULL,
  enabled boolean NOT NULL,
  tags text[] NOT NULL,
  settings json NOT NULL,
  system_prompt text NOT NULL,
  version_hash text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
-- How a content source lays its files out, so that writing into an empty directory reproduces the tree.
CREATE TABLE content_sources (
  source text PRIMARY KEY,
  layout text NOT NULL CHECK (layout IN ('flat', 'directory')),
  declared boolean NOT NULL DEFAULT false,
  description text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
-- content_updated_at is the front matter's updated_at, kept as written; updated_at is the row's.
CREATE TABLE contents (
  source text NOT NULL,
  slug text NOT NULL,
  title text NOT NULL,
  kind text NOT NULL,
  description text NOT NULL,
  author text NOT NULL,
  keywords text[] NOT NULL,
  image text,
  public boolean NOT NULL,
  tags text[] NOT NULL,
  published_at text,
  content_updated_at text,
  body text NOT NULL,
  version_hash text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (source, slug)
);
-- Role rules come from access-control/config.yaml; position keeps the file's order.
CREATE TABLE access_rules (
  entity_type text NOT NULL,
  entity_id text NOT NULL,
  access text NOT NULL CHECK (access IN ('allow', 'deny')),
  roles text[] NOT NULL,
  justification text,
  position integer NOT NULL DEFAULT 0,
  version_hash text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (entity_type, entity_id, access)
);
-- Rules granted to one user: managed in the database only, never touched by a local sync.
CREATE TABLE user_access_rules (
  entity_type text NOT NULL,
  entity_id text NOT NULL,
  user_id text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  access text NOT NULL CHECK (access IN ('allow', 'deny')),
  justification text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (entity_type, entity_id, user_id)
);
CREATE INDEX user_access_rules_user ON user_access_rules (user_id);

CREATE FUNCTION agentsync_stale_hash() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.version_hash = OLD.version_hash
     AND (to_jsonb(NEW) - 'updated_at' - 'created_at' - 'position')
         IS DISTINCT FROM (to_jsonb(OLD) - 'updated_at' - 'created_at' - 'position') THEN
    NEW.version_hash := '';
    NEW.updated_at := now();
  END IF;
  RETURN NEW;
END
$$;
${["agents", "skills", "contents", "access_rules"].map(staleHashTrigger).join("")}
`)
})
