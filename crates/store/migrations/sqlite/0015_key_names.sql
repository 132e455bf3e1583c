-- Keys get a name the admin chose (optional) and the time they were last used, so that
-- the console can tell "the CI key" from "the labelling script" and show the keys no one
-- uses any more. last_used_at is written at most once a minute per key (the server keeps
-- the last write in memory), never once per request.
ALTER TABLE api_keys ADD COLUMN name TEXT;
ALTER TABLE api_keys ADD COLUMN last_used_at INTEGER;
