-- Quality control: gold items, gold tasks, and each reviewer's record per project.

-- A gold item has a known label; it is never decided, resolved or fed to the label feed.
ALTER TABLE items ADD COLUMN gold_label TEXT;
CREATE INDEX items_gold ON items (project_id, id) WHERE gold_label IS NOT NULL;

-- A gold task is made at claim time for one reviewer; it looks like any review task.
ALTER TABLE tasks ADD COLUMN gold INTEGER NOT NULL DEFAULT 0;

CREATE TABLE reviewer_quality (
    project_id   INTEGER NOT NULL,
    reviewer_id  INTEGER NOT NULL,
    gold_answers INTEGER NOT NULL DEFAULT 0,
    gold_correct INTEGER NOT NULL DEFAULT 0,
    held_at      INTEGER,                      -- set: the reviewer may not claim here
    held_reason  TEXT,
    PRIMARY KEY (project_id, reviewer_id)
) WITHOUT ROWID;
