-- Saved recipes are JSON documents; the columns we search on are generated
-- from the document. recipe_id is unique, so other tables can refer to it.
CREATE TABLE IF NOT EXISTS recipes (
    body TEXT NOT NULL CHECK (json_valid(body)),
    recipe_id TEXT GENERATED ALWAYS AS (json_extract(body, '$.id')) VIRTUAL NOT NULL UNIQUE,
    title TEXT GENERATED ALWAYS AS (json_extract(body, '$.title')) STORED,
    created_at DATETIME NOT NULL DEFAULT(STRFTIME('%Y-%m-%d %H:%M:%f', 'NOW')),
    opened_at DATETIME
);

CREATE INDEX IF NOT EXISTS idx_recipes_title ON recipes(title);

-- A run of a recipe; the queue item may be cleaned up before the run is.
CREATE TABLE IF NOT EXISTS recipe_runs (
    run_id INTEGER PRIMARY KEY,
    recipe_id TEXT NOT NULL,
    item_id INTEGER,
    started_at DATETIME NOT NULL DEFAULT(STRFTIME('%Y-%m-%d %H:%M:%f', 'NOW')),
    FOREIGN KEY (recipe_id) REFERENCES recipes (recipe_id) ON DELETE CASCADE,
    FOREIGN KEY (item_id) REFERENCES queue_items (item_id) ON DELETE SET NULL
);

CREATE INDEX IF NOT EXISTS idx_recipe_runs_recipe_id ON recipe_runs(recipe_id);

-- Items record the recipe they came from, when they came from one.
ALTER TABLE queue_items ADD COLUMN recipe_body TEXT;

PRAGMA user_version = 2;
