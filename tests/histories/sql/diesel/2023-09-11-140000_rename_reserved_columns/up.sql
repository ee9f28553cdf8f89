-- `key` and `type` are awkward as column names in some backends.
ALTER TABLE accounts RENAME COLUMN key TO akey;
ALTER TABLE items RENAME COLUMN type TO atype;
ALTER TABLE memberships RENAME COLUMN key TO akey;
ALTER TABLE memberships RENAME COLUMN type TO atype;
