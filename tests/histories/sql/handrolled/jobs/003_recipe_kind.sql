-- The kind of recipe is searched on too. ALTER TABLE can add only VIRTUAL
-- generated columns (not STORED ones).
ALTER TABLE recipes ADD COLUMN kind TEXT GENERATED ALWAYS AS (json_extract(body, '$.meta.kind')) VIRTUAL;
CREATE INDEX IF NOT EXISTS idx_recipes_kind ON recipes(kind);

-- Runs now refer to recipes by id: queue_items no longer keeps a copy of the body.
ALTER TABLE queue_items DROP COLUMN recipe_body;

PRAGMA user_version = 3;
