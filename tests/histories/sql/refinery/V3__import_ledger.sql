-- Items imported from other assistants; re-running an import must not
-- duplicate them.
CREATE TABLE IF NOT EXISTS import_ledger (
    id INTEGER PRIMARY KEY,
    origin TEXT NOT NULL,
    kind TEXT NOT NULL,
    origin_id TEXT NOT NULL,
    outcome TEXT NOT NULL DEFAULT 'imported',
    imported_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    UNIQUE(origin, kind, origin_id)
);

CREATE INDEX idx_import_ledger_origin ON import_ledger(origin, kind);

-- Access tokens for the HTTP API; the hash is unique.
CREATE TABLE access_tokens (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL,
    scopes TEXT NOT NULL DEFAULT '[]',
    per_minute INTEGER NOT NULL DEFAULT 60,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
