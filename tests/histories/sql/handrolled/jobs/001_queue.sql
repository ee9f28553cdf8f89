-- Jobs database, schema version 1 (kept in PRAGMA user_version).
CREATE TABLE IF NOT EXISTS queue_items (
    item_id INTEGER PRIMARY KEY AUTOINCREMENT, -- ordering and cursor paging
    batch_id TEXT NOT NULL,
    session_id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL DEFAULT 'pending', -- pending, running, done, failed, cancelled
    priority INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    created_at DATETIME NOT NULL DEFAULT(STRFTIME('%Y-%m-%d %H:%M:%f', 'NOW')),
    updated_at DATETIME NOT NULL DEFAULT(STRFTIME('%Y-%m-%d %H:%M:%f', 'NOW')), -- set by trigger
    started_at DATETIME, -- set by trigger
    finished_at DATETIME -- set by trigger
);

CREATE INDEX IF NOT EXISTS idx_queue_items_batch_id ON queue_items(batch_id);
CREATE INDEX IF NOT EXISTS idx_queue_items_priority ON queue_items(priority);
CREATE INDEX IF NOT EXISTS idx_queue_items_status ON queue_items(status);

CREATE TRIGGER IF NOT EXISTS tg_queue_items_finished_at
AFTER UPDATE OF status ON queue_items
FOR EACH ROW
WHEN
NEW.status = 'done'
OR NEW.status = 'failed'
OR NEW.status = 'cancelled'
BEGIN
UPDATE queue_items
SET finished_at = STRFTIME('%Y-%m-%d %H:%M:%f', 'NOW')
WHERE item_id = NEW.item_id;
END;

CREATE TRIGGER IF NOT EXISTS tg_queue_items_started_at
AFTER UPDATE OF status ON queue_items
FOR EACH ROW
WHEN NEW.status = 'running'
BEGIN
UPDATE queue_items
SET started_at = STRFTIME('%Y-%m-%d %H:%M:%f', 'NOW')
WHERE item_id = NEW.item_id;
END;

CREATE TRIGGER IF NOT EXISTS tg_queue_items_updated_at
AFTER UPDATE
ON queue_items FOR EACH ROW
BEGIN
    UPDATE queue_items SET updated_at = current_timestamp
        WHERE item_id = old.item_id;
END;

PRAGMA user_version = 1;
