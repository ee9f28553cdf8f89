PRAGMA foreign_keys = OFF;

CREATE TABLE items_old (
  uuid         TEXT     NOT NULL PRIMARY KEY,
  created_at   DATETIME NOT NULL,
  updated_at   DATETIME NOT NULL,
  account_uuid TEXT     NOT NULL REFERENCES accounts (uuid),
  folder_uuid  TEXT REFERENCES folders (uuid),
  atype        INTEGER  NOT NULL,
  title        TEXT     NOT NULL,
  data         TEXT     NOT NULL,
  favorite     BOOLEAN  NOT NULL
);

INSERT INTO items_old SELECT * FROM items;
DROP TABLE items;
ALTER TABLE items_old RENAME TO items;

PRAGMA foreign_keys = ON;
