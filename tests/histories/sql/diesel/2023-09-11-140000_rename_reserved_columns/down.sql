ALTER TABLE memberships RENAME COLUMN atype TO type;
ALTER TABLE memberships RENAME COLUMN akey TO key;
ALTER TABLE items RENAME COLUMN atype TO type;
ALTER TABLE accounts RENAME COLUMN akey TO key;
