-- Every progress report a reader's devices send, kept as history; the view
-- below gives the latest one per link and reader.
-- reader_id and link_id carry no declared type (affinity BLOB/none), the way
-- some apps write join tables.
create table reads (
    link_id not null references links (id) on delete cascade,
    reader_id not null,
    percent integer not null,
    device text,
    read_at TIMESTAMP not null default CURRENT_TIMESTAMP
);

create index reads_link_reader on reads (link_id, reader_id);

create view if not exists latest_progress as
with ranked as (
    select
        link_id
      , reader_id
      , percent
      , read_at
      , row_number() over (partition by link_id, reader_id order by read_at desc) as rn
    from reads
)
select link_id, reader_id, percent, read_at
from ranked
where rn = 1;
