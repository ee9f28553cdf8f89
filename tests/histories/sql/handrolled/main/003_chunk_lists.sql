-- Chunk lists are shared between entries with the same content.
-- Note: in a WITHOUT ROWID table `id INTEGER PRIMARY KEY` is an ordinary
-- primary key, not an alias of the rowid: it is not filled in automatically.
CREATE TABLE IF NOT EXISTS chunk_lists (
    id INTEGER PRIMARY KEY,
    list_hash BLOB NOT NULL,
    body BLOB NOT NULL
) STRICT, WITHOUT ROWID
;
CREATE UNIQUE INDEX IF NOT EXISTS chunk_lists_hash ON chunk_lists (list_hash)
;

-- Individual chunks of local files, for lookup by hash. `offset` is a
-- keyword in SELECT but fine, unquoted, as a column name.
CREATE TABLE IF NOT EXISTS chunks (
    hash BLOB NOT NULL,
    list_hash BLOB NOT NULL,
    idx INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY(hash, list_hash, idx),
    FOREIGN KEY(list_hash) REFERENCES chunk_lists(list_hash) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED
) STRICT, WITHOUT ROWID
;
