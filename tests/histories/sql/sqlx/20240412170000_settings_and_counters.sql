-- Small key/value settings, stamped with unix seconds.
create table if not exists settings (
    key text not null primary key,
    value text not null,
    updated_at integer not null default (strftime('%s', 'now'))
);

-- Same default, written the way a formatter lays it out.
create table
  tags (
    link_id text not null,
    tag text not null,
    added_at integer not null default (strftime ('%s', 'now'))
  );

create unique index idx_tags_link_tag on tags (link_id, tag);

-- Exactly one row: the sync cursor.
create table sync_state (
    id integer primary key check (id = 0),
    cursor integer not null,
    server_key text
);

insert into sync_state (id, cursor, server_key) values (0, 0, null);

-- Per-host totals, kept up to date by a trigger (an upsert).
create table if not exists host_totals (
    id integer primary key autoincrement,
    host text unique,
    total int,
    first_seen int not null default (unixepoch())
);

drop trigger if exists trg_links_host_total;
create trigger trg_links_host_total
  after insert on links
begin
  insert into host_totals (host, total)
  values (new.host, 1)
  on conflict(host) do update set total = total + 1;
end;
