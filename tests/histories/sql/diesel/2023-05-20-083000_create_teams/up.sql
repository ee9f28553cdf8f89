CREATE TABLE teams (
  uuid          TEXT NOT NULL PRIMARY KEY,
  name          TEXT NOT NULL,
  billing_email TEXT NOT NULL
);

CREATE TABLE team_items (
  team_uuid TEXT NOT NULL REFERENCES teams (uuid),
  item_uuid TEXT NOT NULL REFERENCES items (uuid),
  PRIMARY KEY (team_uuid, item_uuid)
);

CREATE TABLE memberships (
  uuid          TEXT    NOT NULL PRIMARY KEY,
  account_uuid  TEXT    NOT NULL REFERENCES accounts (uuid),
  team_uuid     TEXT    NOT NULL REFERENCES teams (uuid),

  key           TEXT    NOT NULL,
  status        INTEGER NOT NULL,
  type          INTEGER NOT NULL,
  external_id   TEXT NULL,
  invited_by    TEXT DEFAULT NULL,
  can_manage    BOOLEAN NOT NULL DEFAULT FALSE,
  seat_share    REAL    NOT NULL DEFAULT 0 CHECK (seat_share >= 0 AND seat_share <= 100),

  UNIQUE (account_uuid, team_uuid)
);

-- Single sign-on identities, one per account; gone with the account.
CREATE TABLE sso_identities (
  account_uuid CHAR(36)  NOT NULL PRIMARY KEY,
  subject      TEXT      NOT NULL UNIQUE,
  created_at   TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,

  FOREIGN KEY(account_uuid) REFERENCES accounts(uuid) ON UPDATE CASCADE ON DELETE CASCADE
);

-- An audit log; the redundant UNIQUE on the key is as written in the wild.
CREATE TABLE audit_events (
  uuid        TEXT     NOT NULL PRIMARY KEY,
  event_type  INTEGER  NOT NULL,
  account_uuid TEXT,
  team_uuid   TEXT,
  item_uuid   TEXT,
  ip_address  TEXT,
  event_date  DATETIME NOT NULL,
  UNIQUE (uuid)
);
