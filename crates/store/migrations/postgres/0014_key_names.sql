-- Keys get a name the admin chose (optional) and the time they were last used, so that
-- the console can tell "the CI key" from "the labelling script" and show the keys no one
-- uses any more. last_used_at is written at most once a minute per key (the server keeps
-- the last write in memory), never once per request.
ALTER TABLE api_keys ADD COLUMN name TEXT;
ALTER TABLE api_keys ADD COLUMN last_used_at BIGINT;

-- A policy keeps the key order its author wrote (`name` next to `when`): jsonb reorders
-- an object's keys (by length, then bytes), json keeps the text as given. Nothing queries
-- inside a policy, so nothing needs jsonb's operators.
ALTER TABLE projects ALTER COLUMN policy TYPE JSON USING policy::text::json;
ALTER TABLE policies ALTER COLUMN policy TYPE JSON USING policy::text::json;
