-- Devices can be grouped; a group member row goes when its device goes.
CREATE TABLE IF NOT EXISTS devices (
    device_id TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    public_key TEXT NOT NULL,
    paired_at TEXT NOT NULL,
    last_seen TEXT
);

CREATE TABLE IF NOT EXISTS device_groups (
    group_name TEXT NOT NULL,
    device_id TEXT NOT NULL,
    joined_at TEXT NOT NULL,
    PRIMARY KEY (group_name, device_id),
    FOREIGN KEY (device_id) REFERENCES devices(device_id) ON DELETE CASCADE
);

-- UI state per conversation; NULL columns spelled out the way some do.
ALTER TABLE conversations ADD COLUMN pinned BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE conversations ADD COLUMN icon TEXT NULL;

-- Keep a record of what was removed.
CREATE TABLE IF NOT EXISTS removed_conversations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL,
    removed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TRIGGER IF NOT EXISTS conversations_ad AFTER DELETE ON conversations BEGIN
    INSERT INTO removed_conversations(conversation_id) VALUES (old.id);
END;
