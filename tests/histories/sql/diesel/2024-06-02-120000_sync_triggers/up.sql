-- Peer-to-peer sync: every change bumps a logical clock, and deletes become
-- tombstones so they can be replicated.
ALTER TABLE items ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
ALTER TABLE items ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE folders ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
ALTER TABLE folders ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;

CREATE INDEX IF NOT EXISTS idx_items_revision ON items(revision);
CREATE INDEX IF NOT EXISTS idx_folders_revision ON folders(revision);

CREATE TABLE IF NOT EXISTS sync_clock (
  name  TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
INSERT OR IGNORE INTO sync_clock(name, value) VALUES ('lamport', 0);

-- Stamp local edits only: a replicated row arrives with its revision set.
CREATE TRIGGER IF NOT EXISTS items_stamp_update AFTER UPDATE ON items
WHEN NEW.revision = OLD.revision
BEGIN
  UPDATE sync_clock SET value = value + 1 WHERE name = 'lamport';
  UPDATE items
     SET revision = (SELECT value FROM sync_clock WHERE name = 'lamport')
   WHERE uuid = NEW.uuid;
END;

-- A delete becomes a tombstone and the DELETE itself is skipped.
CREATE TRIGGER IF NOT EXISTS items_tombstone BEFORE DELETE ON items
BEGIN
  UPDATE sync_clock SET value = value + 1 WHERE name = 'lamport';
  UPDATE items
     SET deleted = 1,
         revision = (SELECT value FROM sync_clock WHERE name = 'lamport')
   WHERE uuid = OLD.uuid;
  SELECT RAISE(IGNORE);
END;

-- Tombstoning a folder tombstones its items.
CREATE TRIGGER IF NOT EXISTS folders_tombstone_items
AFTER UPDATE OF deleted ON folders
WHEN NEW.deleted = 1
BEGIN
  UPDATE items SET deleted = 1 WHERE folder_uuid = NEW.uuid AND deleted = 0;
END;
