-- +goose Up
CREATE TABLE artwork (
  digest TEXT PRIMARY KEY,
  mime TEXT NOT NULL,
  width INTEGER NOT NULL DEFAULT 0,
  height INTEGER NOT NULL DEFAULT 0,
  byte_size INTEGER NOT NULL DEFAULT 0,
  fetched_at datetime NOT NULL DEFAULT (datetime(current_timestamp, 'localtime')),
  created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE item_artwork (
  item_kind TEXT NOT NULL,
  item_id TEXT NOT NULL,
  role TEXT NOT NULL DEFAULT 'cover',
  digest TEXT NOT NULL DEFAULT '',
  tried_at TIMESTAMP,
  PRIMARY KEY (item_kind, item_id, role)
) WITHOUT ROWID;
CREATE INDEX ix_item_artwork_digest ON item_artwork(digest);

CREATE TABLE artwork_jobs (
  item_kind TEXT NOT NULL,
  item_id TEXT NOT NULL,
  role TEXT NOT NULL DEFAULT 'cover',
  urgency INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  not_before TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  queued_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (item_kind, item_id, role)
) WITHOUT ROWID;
-- Drained most urgent first, then oldest: match that order, and cover not_before.
CREATE INDEX ix_artwork_jobs_drain ON artwork_jobs(urgency DESC, queued_at, not_before);

-- +goose Down
DROP TABLE artwork_jobs;
DROP TABLE item_artwork;
DROP TABLE artwork;
