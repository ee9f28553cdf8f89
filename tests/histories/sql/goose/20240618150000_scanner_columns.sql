-- +goose Up
-- Episodes now belong to feeds through tags; the old feed_id column goes.
drop index if exists episode_feed_id;
alter table episode
    drop column feed_id;
alter table episode
    add column missing boolean default false not null;
alter table episode
    add column tags jsonb default '{}' not null;
alter table library
    add column full_scan_running boolean default false not null;
create index if not exists episode_missing
    on episode (missing);

-- +goose Down
drop index if exists episode_missing;
alter table library
    drop column full_scan_running;
alter table episode
    drop column tags;
alter table episode
    drop column missing;
alter table episode
    add column feed_id varchar(255) default '' not null;
create index episode_feed_id
    on episode (feed_id);
