-- Links a reader saved for later. One row per save: saving the same URL
-- again at another time is a new row, saving it twice in the same second is not.
create table if not exists links (
    id text primary key,
    saved_at integer not null,
    url text not null,
    title text not null,
    host text not null,
    archived integer not null default 0,

    unique (url, saved_at)
);

create index if not exists idx_links_saved_at on links (saved_at);
create index if not exists idx_links_host on links (host);
