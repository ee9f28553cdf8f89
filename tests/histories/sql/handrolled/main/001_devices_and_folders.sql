-- Catalog database, schema version 1.
-- The runner applies main/NNN_*.sql files in order and records NNN.

-- Devices known to this node, mapped to small integers.
CREATE TABLE IF NOT EXISTS devices (
    idx INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL UNIQUE COLLATE BINARY,
    label TEXT
) STRICT
;

-- Shared folders; each may later get a database file of its own.
CREATE TABLE IF NOT EXISTS folders (
    idx INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    folder_key TEXT NOT NULL UNIQUE COLLATE BINARY,
    db_file TEXT COLLATE BINARY -- null until split out
) STRICT
;
-- db_file is unique once set
CREATE UNIQUE INDEX IF NOT EXISTS folders_db_file ON folders (db_file) WHERE db_file IS NOT NULL
;
