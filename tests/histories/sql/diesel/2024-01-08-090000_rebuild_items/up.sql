-- Give items real foreign-key actions and a range check on atype. SQLite
-- cannot add constraints to a table, so rebuild it (create new, copy, drop,
-- rename, re-index), keeping only rows whose parents exist.
PRAGMA foreign_keys = OFF;

CREATE TABLE items_new (
  uuid         TEXT     NOT NULL PRIMARY KEY,
  created_at   DATETIME NOT NULL,
  updated_at   DATETIME NOT NULL,
  account_uuid TEXT     NOT NULL,
  folder_uuid  TEXT,
  atype        INTEGER  NOT NULL CHECK (atype BETWEEN 1 AND 5),
  title        TEXT     NOT NULL,
  data         TEXT     NOT NULL,
  favorite     BOOLEAN  NOT NULL,
  CONSTRAINT "items_account_fkey" FOREIGN KEY ("account_uuid") REFERENCES "accounts" ("uuid") ON DELETE CASCADE ON UPDATE CASCADE,
  CONSTRAINT "items_folder_fkey" FOREIGN KEY ("folder_uuid") REFERENCES "folders" ("uuid") ON DELETE RESTRICT ON UPDATE CASCADE
);

INSERT INTO items_new (
  uuid, created_at, updated_at, account_uuid, folder_uuid,
  atype, title, data, favorite
)
SELECT
  i.uuid, i.created_at, i.updated_at, i.account_uuid, i.folder_uuid,
  i.atype, i.title, i.data, i.favorite
FROM items i
WHERE EXISTS (SELECT 1 FROM accounts WHERE uuid = i.account_uuid);

DROP TABLE items;

ALTER TABLE items_new RENAME TO items;

CREATE INDEX idx_items_account_uuid ON items(account_uuid);
CREATE INDEX idx_items_folder_uuid ON items(folder_uuid);

PRAGMA foreign_key_check;
PRAGMA foreign_keys = ON;
