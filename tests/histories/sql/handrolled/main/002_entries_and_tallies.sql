-- Every file entry announced by any device. seq is our own sequence.
CREATE TABLE IF NOT EXISTS entries (
    device_idx INTEGER NOT NULL,
    seq INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    remote_seq INTEGER, -- null for local entries
    name TEXT NOT NULL COLLATE BINARY,
    kind INTEGER NOT NULL,
    modified INTEGER NOT NULL, -- unix nanos
    size INTEGER NOT NULL,
    flags INTEGER NOT NULL,
    chunk_list_hash BLOB, -- null for empty files
    FOREIGN KEY(device_idx) REFERENCES devices(idx) ON DELETE CASCADE
) STRICT
;
-- The encoded entry, kept apart to keep entries rows small.
CREATE TABLE IF NOT EXISTS entry_blobs (
    seq INTEGER NOT NULL PRIMARY KEY,
    encoded BLOB NOT NULL,
    FOREIGN KEY(seq) REFERENCES entries(seq) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED
) STRICT
;
CREATE UNIQUE INDEX IF NOT EXISTS entries_remote_seq ON entries (device_idx, remote_seq)
    WHERE remote_seq IS NOT NULL
;
CREATE UNIQUE INDEX IF NOT EXISTS entries_device_name ON entries (device_idx, name)
;
CREATE INDEX IF NOT EXISTS entries_chunk_list ON entries (chunk_list_hash, device_idx) WHERE chunk_list_hash IS NOT NULL
;

-- Counts and sizes per device, kind and flags, kept by triggers.
CREATE TABLE IF NOT EXISTS tallies (
    device_idx INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    flags INTEGER NOT NULL,
    count INTEGER NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY(device_idx, kind, flags),
    FOREIGN KEY(device_idx) REFERENCES devices(idx) ON DELETE CASCADE
) STRICT, WITHOUT ROWID
;

--- triggers

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
