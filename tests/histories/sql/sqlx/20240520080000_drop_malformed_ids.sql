-- Ids are ULIDs (26 characters) from now on; rows minted by an old client
-- with other ids cannot be decoded and are dropped. A data-only migration.
delete from reads where link_id in (select id from links where length(id) <> 26);
delete from links where length(id) <> 26 or id glob '*[^0-9A-Z]*';

create unique index if not exists idx_reads_once on reads (link_id, reader_id, read_at);
