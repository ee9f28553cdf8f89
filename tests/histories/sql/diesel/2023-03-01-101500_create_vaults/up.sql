CREATE TABLE accounts (
  uuid          TEXT     NOT NULL PRIMARY KEY,
  created_at    DATETIME NOT NULL,
  updated_at    DATETIME NOT NULL,
  email         TEXT     NOT NULL UNIQUE,
  display_name  TEXT     NOT NULL,
  key           TEXT     NOT NULL,
  enabled       BOOLEAN  NOT NULL DEFAULT TRUE,
  hint          TEXT
);

-- items refers to folders, which is created after it: SQLite resolves
-- REFERENCES when rows are written, not when the table is created.
CREATE TABLE items (
  uuid         TEXT     NOT NULL PRIMARY KEY,
  created_at   DATETIME NOT NULL,
  updated_at   DATETIME NOT NULL,
  account_uuid TEXT     NOT NULL REFERENCES accounts (uuid),
  folder_uuid  TEXT REFERENCES folders (uuid),
  type         INTEGER  NOT NULL,
  title        TEXT     NOT NULL,
  data         TEXT     NOT NULL,
  favorite     BOOLEAN  NOT NULL
);

CREATE TABLE folders (
  uuid         TEXT     NOT NULL PRIMARY KEY,
  created_at   DATETIME NOT NULL,
  updated_at   DATETIME NOT NULL,
  account_uuid TEXT     NOT NULL REFERENCES accounts (uuid),
  title        TEXT     NOT NULL
);
