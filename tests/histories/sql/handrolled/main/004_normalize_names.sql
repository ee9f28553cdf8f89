-- Names repeat across devices: move them to a table of their own and
-- rebuild entries to point at it. The runner turns foreign keys off around
-- migrations, so dropping the old entries does not cascade into entry_blobs.

CREATE TABLE IF NOT EXISTS entry_names (
    idx INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE COLLATE BINARY
) STRICT
;

INSERT INTO entry_names (idx, name) SELECT DISTINCT null, name FROM entries
;

DROP TABLE IF EXISTS entries_v4
;

CREATE TABLE entries_v4 (
    device_idx INTEGER NOT NULL,
    seq INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    remote_seq INTEGER,
    name_idx INTEGER NOT NULL, -- changed
    kind INTEGER NOT NULL,
    modified INTEGER NOT NULL,
    size INTEGER NOT NULL,
    flags INTEGER NOT NULL,
    chunk_list_hash BLOB,
    FOREIGN KEY(device_idx) REFERENCES devices(idx) ON DELETE CASCADE,
    FOREIGN KEY(name_idx) REFERENCES entry_names(idx) -- added
) STRICT
;

INSERT INTO entries_v4
    SELECT e.device_idx, e.seq, e.remote_seq, n.idx AS name_idx, e.kind, e.modified, e.size, e.flags, e.chunk_list_hash
    FROM entries e
    INNER JOIN entry_names n ON n.name = e.name
;

DROP TABLE entries
;

ALTER TABLE entries_v4 RENAME TO entries
;

-- Dropping the table dropped its indexes and triggers: make them again.
CREATE UNIQUE INDEX IF NOT EXISTS entries_remote_seq ON entries (device_idx, remote_seq)
    WHERE remote_seq IS NOT NULL
;
CREATE UNIQUE INDEX IF NOT EXISTS entries_device_name ON entries (device_idx, name_idx)
;
CREATE INDEX IF NOT EXISTS entries_chunk_list ON entries (chunk_list_hash, device_idx) WHERE chunk_list_hash IS NOT NULL
;
CREATE TRIGGER IF NOT EXISTS tallies_insert AFTER INSERT ON entries
BEGIN
    INSERT INTO tallies (device_idx, kind, flags, count, size)
        VALUES (NEW.device_idx, NEW.kind, NEW.flags, 1, NEW.size)
        ON CONFLICT DO UPDATE SET count = count + 1, size = size + NEW.size;
END
;
CREATE TRIGGER IF NOT EXISTS tallies_delete AFTER DELETE ON entries
BEGIN
    UPDATE tallies SET count = count - 1, size = size - OLD.size
        WHERE device_idx = OLD.device_idx AND kind = OLD.kind AND flags = OLD.flags;
END
;
CREATE TRIGGER IF NOT EXISTS tallies_update AFTER UPDATE OF flags ON entries
WHEN NEW.flags != OLD.flags
BEGIN
    INSERT INTO tallies (device_idx, kind, flags, count, size)
        VALUES (NEW.device_idx, NEW.kind, NEW.flags, 1, NEW.size)
        ON CONFLICT DO UPDATE SET count = count + 1, size = size + NEW.size;
    UPDATE tallies SET count = count - 1, size = size - OLD.size
        WHERE device_idx = OLD.device_idx AND kind = OLD.kind AND flags = OLD.flags;
END
;
