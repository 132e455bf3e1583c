-- Quality control: gold items, gold tasks, and each reviewer's record per project.

ALTER TABLE items ADD COLUMN gold_label TEXT;
CREATE INDEX items_gold ON items (project_id, id) WHERE gold_label IS NOT NULL;

ALTER TABLE tasks ADD COLUMN gold BOOLEAN NOT NULL DEFAULT false;

CREATE TABLE reviewer_quality (
    project_id   BIGINT  NOT NULL,
    reviewer_id  BIGINT  NOT NULL,
    gold_answers INTEGER NOT NULL DEFAULT 0,
    gold_correct INTEGER NOT NULL DEFAULT 0,
    held_at      BIGINT,
    held_reason  TEXT,
    PRIMARY KEY (project_id, reviewer_id)
);
