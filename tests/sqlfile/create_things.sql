-- Things, as an SQL file beside the migration that applies it.
CREATE TABLE things (
    id INTEGER PRIMARY KEY,
    label TEXT NOT NULL DEFAULT ''
);
CREATE INDEX things_by_label ON things (label);
