-- Soft deletion for the retention job, and a label on each row for
-- data classification (the safest label is the default).
ALTER TABLE turns ADD COLUMN deleted_at TEXT;
ALTER TABLE conversations ADD COLUMN deleted_at TEXT;
ALTER TABLE turns ADD COLUMN label TEXT NOT NULL DEFAULT 'internal';

CREATE INDEX IF NOT EXISTS idx_turns_deleted ON turns(deleted_at);
CREATE INDEX IF NOT EXISTS idx_conversations_deleted ON conversations(deleted_at);
CREATE INDEX IF NOT EXISTS idx_turns_label ON turns(label);
