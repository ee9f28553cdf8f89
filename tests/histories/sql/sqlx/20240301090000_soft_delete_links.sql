-- Deleting a link now only marks it; most queries look at live links only.
alter table links add column deleted_at integer;
alter table links add column note text default null;

-- Live links by time: a partial index, much smaller than the table.
create index if not exists idx_links_live_saved_at on links (saved_at)
where deleted_at is null;

-- The host filter compares lower(host): index the same expression.
create index if not exists idx_links_live_host on links (lower(host), saved_at desc)
where deleted_at is null;

-- Title search is case-insensitive and newest first.
create index if not exists idx_links_live_title on links (
    title collate nocase,
    saved_at desc
) where deleted_at is null;

-- The plain host index is covered by the expression index now.
drop index if exists idx_links_host;
