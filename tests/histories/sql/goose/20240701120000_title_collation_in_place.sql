-- +goose Up
-- Titles arrive with trailing blanks from some feeds. Switch the order/sort
-- columns of episode from NOCASE to RTRIM without rebuilding the table, by
-- editing the stored CREATE TABLE text, then recreate the indexes that use
-- the collation. (A project does this with an application-defined collation;
-- RTRIM is built in, so the sqlite3 shell can replay this file.)
PRAGMA writable_schema = ON;
UPDATE sqlite_master
SET sql = replace(sql, 'collate NOCASE', 'collate RTRIM')
WHERE type = 'table' AND name = 'episode';
PRAGMA writable_schema = OFF;

drop index if exists episode_order_title;
create index episode_order_title
    on episode (order_title collate RTRIM);

drop index if exists episode_sort_title;
create index episode_sort_title
    on episode (coalesce(nullif(sort_title,''),order_title) collate RTRIM);

-- +goose Down
PRAGMA writable_schema = ON;
UPDATE sqlite_master
SET sql = replace(sql, 'collate RTRIM', 'collate NOCASE')
WHERE type = 'table' AND name = 'episode';
PRAGMA writable_schema = OFF;

drop index if exists episode_order_title;
create index episode_order_title
    on episode (order_title);

drop index if exists episode_sort_title;
create index episode_sort_title
    on episode (coalesce(nullif(sort_title,''),order_title) collate NOCASE);
