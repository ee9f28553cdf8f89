-- A plugin's tools are pinned by hash: one row per (plugin, tool).
CREATE TABLE IF NOT EXISTS plugin_tool_pins (
    plugin TEXT NOT NULL,
    tool TEXT NOT NULL,
    digest TEXT NOT NULL,
    pinned_at TEXT NOT NULL DEFAULT (datetime('now')),
    checked_at TEXT NOT NULL DEFAULT (datetime('now')),
    PRIMARY KEY (plugin, tool)
);

-- Which plugin a turn called, when it called one.
ALTER TABLE turns ADD COLUMN plugin TEXT;
CREATE INDEX idx_turns_plugin ON turns(plugin);
